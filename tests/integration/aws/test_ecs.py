"""The ECS adapter: RunTask against moto, and the answers moto cannot give (failures,
throttling, conflicts) through botocore's Stubber on a real client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from fargate_stack.aws.ecs import EcsTasks
from fargate_stack.domain.launch import Capacity, LaunchConfig, LaunchSpec, build_launch_spec
from fargate_stack.errors import (
    AlreadyLaunchedError,
    CapacityUnavailableError,
    PermanentError,
    TransientError,
)

JOB = "01890f2c-5b5e-4d7e-9a51-0e4c1f0b9a77"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        ec2 = boto3.client("ec2", region_name="us-east-1")
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
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
        yield {"ecs": ecs, "subnet": subnet, "sg": sg}


def launch_spec(subnet: str = "subnet-1", sg: str = "sg-1") -> LaunchSpec:
    config = LaunchConfig(
        stack_key="fargate-prod",
        queue_key="fargate",
        cluster="bk",
        task_definition="bk-agent",
        container_name="agent",
        default_cpu=1024,
        default_memory=2048,
        subnets=[subnet],
        security_groups=[sg],
        assign_public_ip=False,
    )
    return build_launch_spec(
        config,
        job_uuid=JOB,
        agent_query_rules=["queue=fargate"],
        job_env={},
        capacity=Capacity.SPOT,
    )


def test_run_task_starts_a_task_with_the_specified_parameters(aws: dict[str, Any]) -> None:
    ecs = aws["ecs"]
    tasks = EcsTasks(ecs)
    arn = tasks.run(launch_spec(aws["subnet"], aws["sg"]))
    (task,) = ecs.describe_tasks(cluster="bk", tasks=[arn], include=["TAGS"])["tasks"]
    assert task["startedBy"] == "fargate-prod"
    assert task["group"] == f"buildkite-job:{JOB}"
    env = task["overrides"]["containerOverrides"][0]["environment"]
    assert {"name": "BUILDKITE_AGENT_ACQUIRE_JOB", "value": JOB} in env
    assert {"key": "buildkite:job", "value": JOB} in task["tags"]
    assert tasks.count_in_flight(cluster="bk", started_by="fargate-prod") == 1
    assert tasks.count_in_flight(cluster="bk", started_by="another-stack") == 0


def stubbed() -> tuple[EcsTasks, Stubber]:
    client = boto3.client("ecs", region_name="us-east-1")
    return EcsTasks(client), Stubber(client)


def test_capacity_failures_are_their_own_transient_error() -> None:
    tasks, stub = stubbed()
    with stub:
        stub.add_response(
            "run_task",
            {
                "tasks": [],
                "failures": [
                    {"reason": "Capacity is unavailable at this time. Please try again later"}
                ],
            },
        )
        with pytest.raises(CapacityUnavailableError, match="Capacity is unavailable"):
            tasks.run(launch_spec())


def test_other_failures_are_transient() -> None:
    tasks, stub = stubbed()
    with stub:
        stub.add_response("run_task", {"tasks": [], "failures": [{"reason": "AGENT"}]})
        with pytest.raises(TransientError, match="AGENT") as caught:
            tasks.run(launch_spec())
    assert not isinstance(caught.value, CapacityUnavailableError)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ThrottlingException", TransientError),
        ("ServerException", TransientError),
        ("ClientException", PermanentError),
        ("InvalidParameterException", PermanentError),
        ("AccessDeniedException", PermanentError),
    ],
)
def test_error_codes_are_classified(code: str, error: type[Exception]) -> None:
    tasks, stub = stubbed()
    with stub:
        stub.add_client_error("run_task", service_error_code=code, service_message="nope")
        with pytest.raises(error, match=code):
            tasks.run(launch_spec())


def test_conflict_means_the_job_already_has_a_task() -> None:
    tasks, stub = stubbed()
    existing = "arn:aws:ecs:us-east-1:123456789012:task/bk/abc"
    with stub:
        stub.add_client_error(
            "run_task",
            service_error_code="ConflictException",
            modeled_fields={"resourceIds": [existing]},
        )
        with pytest.raises(AlreadyLaunchedError) as caught:
            tasks.run(launch_spec())
    assert caught.value.task_arn == existing


def test_find_task_of_job_finds_running_and_stopped_tasks(aws: dict[str, Any]) -> None:
    ecs = aws["ecs"]
    tasks = EcsTasks(ecs)
    group = f"buildkite-job:{JOB}"
    assert tasks.find_task_of_job(cluster="bk", started_by="fargate-prod", group=group) is None
    arn = tasks.run(launch_spec(aws["subnet"], aws["sg"]))
    assert tasks.find_task_of_job(cluster="bk", started_by="fargate-prod", group=group) == arn
    assert tasks.find_task_of_job(cluster="bk", started_by="other", group=group) is None
    ecs.stop_task(cluster="bk", task=arn, reason="test")
    assert tasks.find_task_of_job(cluster="bk", started_by="fargate-prod", group=group) == arn
