"""The ECS adapter: RunTask against moto, and the answers moto cannot give (failures,
throttling, conflicts) through botocore's Stubber on a real client."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from fargate_stack.aws.ecs import RUN_TASK_ERRORS, EcsTasks
from fargate_stack.domain.launch import Capacity, LaunchSpec, build_launch_spec
from fargate_stack.domain.starting_tasks import LaunchedTask
from fargate_stack.errors import (
    AlreadyLaunchedError,
    CapacityUnavailableError,
    PermanentError,
    TransientError,
)
from tests.support.aws import MotoEcs, launch_config

JOB = "01890f2c-5b5e-4d7e-9a51-0e4c1f0b9a77"


def launch_spec(
    subnet: str = "subnet-1", sg: str = "sg-1", job_env: dict[str, str] | None = None
) -> LaunchSpec:
    config = launch_config("fargate-prod", subnet, sg)
    return build_launch_spec(
        config,
        job_uuid=JOB,
        agent_query_rules=["queue=fargate"],
        job_env=job_env or {},
        capacity=Capacity.SPOT,
    )


def test_run_task_starts_a_task_with_the_specified_parameters(moto_ecs: MotoEcs) -> None:
    ecs = moto_ecs.ecs
    tasks = EcsTasks(ecs)
    arn = tasks.run(launch_spec(moto_ecs.subnet, moto_ecs.security_group)).arn
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


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [
        # docs/reference/aws.md §H.4: EC2 throttling behind the security-group lookup
        (
            "InvalidParameterException",
            "Error retrieving security group information for [sg-1]: Request limit exceeded.",
            TransientError,
        ),
        # docs/reference/aws.md §H.3: the service-linked role not assumable (yet)
        (
            "InvalidParameterException",
            "Unable to assume the service linked role. Please verify that the ECS service "
            "linked role exists.",
            TransientError,
        ),
        ("ClientException", "Rate exceeded", TransientError),
        # A security group that does not exist stays a permanent refusal
        (
            "InvalidParameterException",
            "Error retrieving security group information for [sg-1]: The security group "
            "'sg-1' does not exist",
            PermanentError,
        ),
    ],
)
def test_errors_are_classified_by_message_before_code(
    code: str, message: str, error: type[Exception]
) -> None:
    # Given ECS answers a code that is usually permanent, with a message that says otherwise
    tasks, stub = stubbed()
    with stub:
        stub.add_client_error("run_task", service_error_code=code, service_message=message)
        # When the launcher runs the task, then the message decides retry or fail-back
        with pytest.raises(error, match=code) as caught:
            tasks.run(launch_spec())
    assert type(caught.value) is error


def test_every_classification_rule_names_its_source() -> None:
    for rule in RUN_TASK_ERRORS:
        assert rule.source.startswith(("https://", "docs/reference/")), rule


def test_the_fargate_vcpu_quota_is_a_capacity_failure() -> None:
    tasks, stub = stubbed()
    with stub:
        reason = "You've reached the limit on the number of vCPUs you can run concurrently"
        stub.add_response("run_task", {"tasks": [], "failures": [{"reason": reason}]})
        with pytest.raises(CapacityUnavailableError, match="vCPUs"):
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


def test_a_repeated_run_task_answers_the_first_task_and_when_it_was_created(
    moto_ecs: MotoEcs,
) -> None:
    """ECS's client token (modelled on moto): what makes a redelivery after a crash safe."""
    tasks = EcsTasks(moto_ecs.ecs)
    spec = launch_spec(moto_ecs.subnet, moto_ecs.security_group)
    first = tasks.run(spec)
    again = tasks.run(spec)
    assert again == first
    assert first.created_at is not None
    assert tasks.count_in_flight(cluster="bk", started_by="fargate-prod") == 1


def test_the_same_token_with_another_request_names_the_first_task(moto_ecs: MotoEcs) -> None:
    tasks = EcsTasks(moto_ecs.ecs)
    first = tasks.run(launch_spec(moto_ecs.subnet, moto_ecs.security_group))
    other = launch_spec(
        moto_ecs.subnet, moto_ecs.security_group, job_env={"BUILDKITE_PIPELINE_SLUG": "other"}
    )
    with pytest.raises(AlreadyLaunchedError) as caught:
        tasks.run(other)
    assert caught.value.task_arn == first.arn


# ------------------------------------------------ per-pipeline task roles (PipelineTaskRoles)

PIPELINE = "0c8f1ab4-4a53-4a9f-bb6c-5d0e0d4a1c11"
PIPELINE_ROLE = "arn:aws:iam::123456789012:role/buildkite-pipeline/web"


def role_spec(subnet: str = "subnet-1", sg: str = "sg-1", pipeline: str = PIPELINE) -> LaunchSpec:
    config = replace(
        launch_config("fargate-prod", subnet, sg), pipeline_task_roles={PIPELINE: PIPELINE_ROLE}
    )
    return build_launch_spec(
        config,
        job_uuid=JOB,
        agent_query_rules=["queue=fargate"],
        job_env={},
        capacity=Capacity.SPOT,
        pipeline_uuid=pipeline,
    )


def test_run_task_carries_the_pipelines_task_role(moto_ecs: MotoEcs) -> None:
    ecs = moto_ecs.ecs
    arn = EcsTasks(ecs).run(role_spec(moto_ecs.subnet, moto_ecs.security_group)).arn
    (task,) = ecs.describe_tasks(cluster="bk", tasks=[arn])["tasks"]
    assert task["overrides"]["taskRoleArn"] == PIPELINE_ROLE


def test_an_unmapped_pipeline_runs_without_a_role_override(moto_ecs: MotoEcs) -> None:
    ecs = moto_ecs.ecs
    spec = role_spec(moto_ecs.subnet, moto_ecs.security_group, pipeline=str(uuid.uuid4()))
    arn = EcsTasks(ecs).run(spec).arn
    (task,) = ecs.describe_tasks(cluster="bk", tasks=[arn])["tasks"]
    assert "taskRoleArn" not in task["overrides"]


# The texts of docs/reference/aws.md §H.46.
PASS_ROLE_DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/launcher/fn is not authorized to perform: "
    f"iam:PassRole on resource: {PIPELINE_ROLE} because no identity-based policy allows the "
    "iam:PassRole action"
)
NOT_ASSUMABLE = (
    f"ECS was unable to assume the role '{PIPELINE_ROLE}' that was provided for this task. "
    "Please verify that the role being passed has the proper trust relationship and "
    "permissions and that your IAM user has permissions to pass this role."
)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AccessDeniedException", PASS_ROLE_DENIED),
        ("ClientException", NOT_ASSUMABLE),
        ("InvalidParameterException", NOT_ASSUMABLE),
    ],
)
def test_a_refused_pipeline_role_is_a_permanent_rejection_naming_the_mapping(
    code: str, message: str
) -> None:
    tasks, stub = stubbed()
    with stub:
        stub.add_client_error("run_task", service_error_code=code, service_message=message)
        with pytest.raises(PermanentError) as caught:
            tasks.run(role_spec())
    assert caught.value.reason == "task_role_rejected"
    assert "PipelineTaskRoles" in caught.value.detail
    assert PIPELINE_ROLE in caught.value.detail


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        # Another role's denial (the execution role) is not the mapping's fault.
        (
            "AccessDeniedException",
            PASS_ROLE_DENIED.replace(PIPELINE_ROLE, "arn:aws:iam::123456789012:role/exec"),
            "ecs_rejected",
        ),
        # The service-linked role still settling stays transient, role override or not.
        (
            "InvalidParameterException",
            "Unable to assume the service linked role. Please verify that the ECS service "
            "linked role exists.",
            None,
        ),
    ],
)
def test_only_the_mapped_roles_refusal_blames_the_mapping(
    code: str, message: str, reason: str | None
) -> None:
    tasks, stub = stubbed()
    with stub:
        stub.add_client_error("run_task", service_error_code=code, service_message=message)
        with pytest.raises((PermanentError, TransientError)) as caught:
            tasks.run(role_spec())
    if reason is None:
        assert isinstance(caught.value, TransientError)
    else:
        assert isinstance(caught.value, PermanentError)
        assert caught.value.reason == reason


def test_without_a_mapping_the_same_text_is_an_ordinary_ecs_refusal() -> None:
    tasks, stub = stubbed()
    with stub:
        stub.add_client_error(
            "run_task", service_error_code="ClientException", service_message=NOT_ASSUMABLE
        )
        with pytest.raises(PermanentError) as caught:
            tasks.run(launch_spec())
    assert caught.value.reason == "ecs_rejected"


# ------------------------------------------------------------------ starting tasks


def test_the_stacks_launched_tasks_are_listed_with_their_jobs_and_can_be_stopped(
    moto_ecs: MotoEcs,
) -> None:
    # Given: one task of this stack, one of another stack
    tasks = EcsTasks(moto_ecs.ecs)
    ours = tasks.run(launch_spec(moto_ecs.subnet, moto_ecs.security_group)).arn
    other = launch_config("another-stack", moto_ecs.subnet, moto_ecs.security_group)
    tasks.run(
        build_launch_spec(
            other,
            job_uuid=str(uuid.uuid4()),
            agent_query_rules=["queue=fargate"],
            job_env={},
            capacity=Capacity.SPOT,
        )
    )
    # When
    (listed,) = tasks.launched(cluster="bk", started_by="fargate-prod")
    tasks.stop(cluster="bk", arn=ours, reason="Buildkite Fargate Stack: test")
    # Then
    assert (listed.arn, listed.job_uuid) == (ours, JOB)
    assert listed.last_status  # moto's own lifecycle; the simulated Fargate plays ECS's
    assert tasks.launched(cluster="bk", started_by="fargate-prod") == []
    (stopped,) = moto_ecs.ecs.describe_tasks(cluster="bk", tasks=[ours])["tasks"]
    assert stopped["stoppedReason"] == "Buildkite Fargate Stack: test"


def test_a_described_task_keeps_ecs_status_and_creation_time() -> None:
    tasks, stub = stubbed()
    arn = "arn:aws:ecs:us-east-1:123456789012:task/bk/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    created = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with stub:
        stub.add_response(
            "describe_tasks",
            {
                "tasks": [
                    {
                        "taskArn": arn,
                        "lastStatus": "PENDING",
                        "createdAt": created,
                        "startedBy": "fargate-prod",
                        "group": f"buildkite-job:{JOB}",
                    },
                    # Started by hand with the stack's startedBy but no job: not ours.
                    {"taskArn": arn + "1", "lastStatus": "PENDING", "startedBy": "fargate-prod"},
                ]
            },
            {"cluster": "bk", "tasks": [arn, arn + "1"]},
        )
        found = tasks.describe(cluster="bk", started_by="fargate-prod", arns=[arn, arn + "1"])
    assert found == [LaunchedTask(arn, JOB, "PENDING", created)]


def test_ecs_errors_of_the_sweep_are_transient() -> None:
    tasks, stub = stubbed()
    with stub:
        stub.add_client_error("stop_task", "ThrottlingException", "Rate exceeded")
        with pytest.raises(TransientError, match="could not stop"):
            tasks.stop(cluster="bk", arn="arn:aws:ecs:us-east-1:1:task/bk/x", reason="r")
