"""moto accounts for the adapter tests: a Fargate cluster, the agent's task definition and a
launch configuration in that account's network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fargate_stack.domain.launch import LaunchConfig
from tests.support.launch_config import launch_config as shared_launch_config

# Fake credentials in us-east-1: what every moto-backed test runs with.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


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


def create_agent_cluster(ecs: Any) -> None:
    """The cluster and task definition the launcher's RunTask names."""
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
