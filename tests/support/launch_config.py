"""The one launch configuration the suites share (cluster ``bk``, family ``bk-agent``);
a test names only what it changes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fargate_stack.domain.launch import LaunchConfig

BASE = LaunchConfig(
    stack_key="fargate-prod",
    queue_key="fargate",
    cluster="bk",
    task_definition="bk-agent",
    container_name="agent",
    default_cpu=1024,
    default_memory=2048,
    subnets=["subnet-1"],
    security_groups=["sg-1"],
    assign_public_ip=False,
)


def launch_config(**changes: Any) -> LaunchConfig:
    return replace(BASE, **changes)
