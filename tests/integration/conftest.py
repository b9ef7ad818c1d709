"""Shared by the integration suites: nothing may reach real AWS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fargate_stack.domain.launch import LaunchConfig
from local.aws_world import model_ecs_client_tokens
from tests.launch_config import launch_config as shared_launch_config

# moto ignores RunTask's client token; the suites run against ECS's documented behaviour,
# the same model the local world's moto server runs (local/aws_world.py).
model_ecs_client_tokens()


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials in us-east-1 and no endpoint override: boto3 talks only to moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@dataclass(frozen=True)
class MotoEcs:
    """A moto account with a Fargate cluster and the agent's task definition."""

    ecs: Any
    subnet: str
    security_group: str


def launch_config(
    stack_key: str, subnet: str = "subnet-1", security_group: str = "sg-1"
) -> LaunchConfig:
    """The shared configuration (tests/launch_config.py) in a moto account's network."""
    return shared_launch_config(
        stack_key=stack_key, subnets=[subnet], security_groups=[security_group]
    )


@pytest.fixture
def moto_ecs(fake_aws_env: None) -> Iterator[MotoEcs]:
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        ec2 = boto3.client("ec2", region_name="us-east-1")
        ecs.create_cluster(clusterName="bk", capacityProviders=["FARGATE", "FARGATE_SPOT"])
        ecs.register_task_definition(
            family="bk-agent",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="1024",
            memory="2048",
            # moto needs container-level memory (a moto gap; Fargate does not).
            containerDefinitions=[{"name": "agent", "image": "buildkite/agent:3", "memory": 2048}],
        )
        yield MotoEcs(
            ecs=ecs,
            subnet=ec2.describe_subnets()["Subnets"][0]["SubnetId"],
            security_group=ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"],
        )
