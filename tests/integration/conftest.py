"""Shared by the integration suites: nothing may reach real AWS."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from local.aws_world import (
    model_dynamodb_atomic_writes,
    model_ecs_client_tokens,
    model_ecs_task_lifecycle,
)
from tests.support.aws import FAKE_AWS_ENV, MotoEcs, create_agent_cluster

# moto ignores RunTask's client token; the suites run against ECS's documented behaviour,
# the same model the local world's moto server runs (local/aws_world.py).
model_ecs_client_tokens()
# moto's conditional writes are not atomic under threads (docs/reference/tooling.md §3.4).
model_dynamodb_atomic_writes()


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials in us-east-1 and no endpoint override: boto3 talks only to moto."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_ecs(fake_aws_env: None) -> Iterator[MotoEcs]:
    with mock_aws():
        # ECS's task lifecycle as the local world's moto has it (the simulated Fargate
        # reports each task's status; tasks start PROVISIONING).
        model_ecs_task_lifecycle()
        ecs = boto3.client("ecs", region_name="us-east-1")
        ec2 = boto3.client("ec2", region_name="us-east-1")
        create_agent_cluster(ecs)
        yield MotoEcs(
            ecs=ecs,
            subnet=ec2.describe_subnets()["Subnets"][0]["SubnetId"],
            security_group=ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"],
        )
