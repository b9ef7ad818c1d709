"""Step images' task definitions against moto: ECS registers the derived definition, the
ledger makes one launcher register it while the others wait, the day's budget is kept, and
stale families are cleaned up, boundedly."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fargate_stack.aws.ledger import DynamoImageLedger
from fargate_stack.aws.task_definitions import EcsTaskDefinitions
from fargate_stack.clock import SystemClock
from fargate_stack.domain.step_image import (
    SETUP_CONTAINER,
    derived_family,
    parse_image_reference,
)
from fargate_stack.errors import PermanentError, TransientError
from fargate_stack.usecases.step_images import StepImageDefinitions, StepImageOptions
from tests.integration.aws.conftest import TABLE
from tests.support.fakes import FakeClock

PREFIX = "bk-step-"
NODE = parse_image_reference("node:20")


@pytest.fixture
def ecs(dynamodb: Any) -> Any:
    """moto ECS in the same mock as the ledger table, with the stack's base definition."""
    client = boto3.client("ecs", region_name="us-east-1")
    client.register_task_definition(
        family="bk-agent",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="1024",
        memory="2048",
        executionRoleArn="arn:aws:iam::123456789012:role/bk-exec",
        taskRoleArn="arn:aws:iam::123456789012:role/bk-task",
        containerDefinitions=[
            {
                "name": "agent",
                "image": "public.ecr.aws/buildkite/agent:3",
                "essential": True,
                "secrets": [{"name": "SSH_PRIVATE_RSA_KEY", "valueFrom": "arn:aws:sm:x"}],
                "environment": [{"name": "BUILDKITE_CANCEL_GRACE_PERIOD", "value": "90"}],
            }
        ],
    )
    return client


def resolver(
    ecs: Any, dynamodb: Any, base: str = "bk-agent:1", **extra: Any
) -> StepImageDefinitions:
    arn = ecs.describe_task_definition(taskDefinition=base)["taskDefinition"]["taskDefinitionArn"]
    return StepImageDefinitions(
        definitions=EcsTaskDefinitions(ecs),
        ledger=DynamoImageLedger(TABLE, client=dynamodb),
        clock=extra.pop("clock", SystemClock()),
        options=StepImageOptions(
            base_task_definition=arn,
            container_name="agent",
            family_prefix=PREFIX,
            stack_key="bk",
            registrations_per_day=extra.pop("per_day", 50),
            **extra,
        ),
    )


def registrations(ecs: Any) -> list[str]:
    families = ecs.list_task_definition_families(familyPrefix=PREFIX, status="ACTIVE")
    return [
        arn
        for family in families["families"]
        for arn in ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")[
            "taskDefinitionArns"
        ]
    ]


def test_a_new_image_is_registered_once_and_then_reused(ecs: Any, dynamodb: Any) -> None:
    images = resolver(ecs, dynamodb)
    arn = images.resolve(NODE)
    assert arn.endswith(":1") and f"/{PREFIX}1-" in arn
    assert images.resolve(NODE) == arn
    # Another launcher container finds it in the ledger without registering.
    assert resolver(ecs, dynamodb).resolve(NODE) == arn
    assert registrations(ecs) == [arn]
    registered = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    setup, job = registered["taskDefinition"]["containerDefinitions"]
    assert (setup["name"], setup["image"]) == (SETUP_CONTAINER, "public.ecr.aws/buildkite/agent:3")
    assert (job["name"], job["image"]) == ("agent", "node:20")
    assert job["secrets"][0]["name"] == "SSH_PRIVATE_RSA_KEY"
    assert registered["taskDefinition"]["executionRoleArn"].endswith("role/bk-exec")
    assert {"key": "buildkite:stack", "value": "bk"} in registered["tags"]


def test_launchers_racing_on_a_new_image_register_it_once(ecs: Any, dynamodb: Any) -> None:
    results: list[str] = []
    errors: list[Exception] = []
    start = threading.Barrier(6)

    def launch() -> None:
        images = resolver(ecs, dynamodb)
        start.wait()
        try:
            results.append(images.resolve(NODE))
        except TransientError as exc:  # a waiter may give up: retried from the queue
            errors.append(exc)

    threads = [threading.Thread(target=launch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(registrations(ecs)) == 1
    assert len(set(results)) == 1
    assert len(results) + len(errors) == 6


def test_a_waiter_gives_up_with_a_transient_error_while_the_claim_is_held(
    ecs: Any, dynamodb: Any
) -> None:
    family = derived_family(
        PREFIX,
        ecs.describe_task_definition(taskDefinition="bk-agent:1")["taskDefinition"][
            "taskDefinitionArn"
        ],
        NODE.text,
    )
    assert DynamoImageLedger(TABLE, client=dynamodb).claim(family, "someone", seconds=60)
    clock = FakeClock(current=datetime.now(UTC))
    with pytest.raises(TransientError, match="being registered by another launch"):
        resolver(ecs, dynamodb, clock=clock).resolve(NODE)
    assert registrations(ecs) == []
    assert sum(clock.slept) >= 5.0


def test_a_lapsed_claim_of_a_crashed_launcher_is_taken_over(ecs: Any, dynamodb: Any) -> None:
    base = ecs.describe_task_definition(taskDefinition="bk-agent:1")["taskDefinition"]
    family = derived_family(PREFIX, base["taskDefinitionArn"], NODE.text)
    assert DynamoImageLedger(TABLE, client=dynamodb).claim(family, "crashed", seconds=-5)
    assert resolver(ecs, dynamodb).resolve(NODE).endswith(":1")


def test_past_the_days_budget_a_new_image_is_refused_naming_the_parameter(
    ecs: Any, dynamodb: Any
) -> None:
    images = resolver(ecs, dynamodb, per_day=2)
    images.resolve(parse_image_reference("node:20"))
    images.resolve(parse_image_reference("node:22"))
    with pytest.raises(PermanentError, match="StepImageRegistrationsPerDay") as refused:
        images.resolve(parse_image_reference("node:24"))
    assert "digest" in refused.value.detail
    assert refused.value.reason == "image_registrations_exhausted"
    assert len(registrations(ecs)) == 2
    # The refused family's claim is released: after a raise, another launcher may try.
    assert images.resolve(parse_image_reference("node:20")).endswith(":1")


def test_ecs_refusing_the_definition_fails_the_job_and_releases_the_claim(
    ecs: Any, dynamodb: Any
) -> None:
    images = resolver(ecs, dynamodb)
    with Stubber(ecs) as stub:
        base = ecs.describe_task_definition  # the stub answers every call of the client
        del base
        stub.add_response(
            "describe_task_definition",
            {"taskDefinition": {"containerDefinitions": [{"name": "agent", "image": "a"}]}},
        )
        stub.add_client_error(
            "register_task_definition",
            service_error_code="ClientException",
            service_message="Container.image contains invalid characters.",
        )
        with pytest.raises(PermanentError, match="invalid characters") as refused:
            images.resolve(NODE)
    assert refused.value.reason == "image_definition_rejected"
    assert resolver(ecs, dynamodb).resolve(NODE).endswith(":1")


def test_throttled_registration_is_transient(ecs: Any, dynamodb: Any) -> None:
    images = resolver(ecs, dynamodb)
    with Stubber(ecs) as stub:
        stub.add_response(
            "describe_task_definition",
            {"taskDefinition": {"containerDefinitions": [{"name": "agent", "image": "a"}]}},
        )
        stub.add_client_error("register_task_definition", service_error_code="ThrottlingException")
        with pytest.raises(TransientError, match="ThrottlingException"):
            images.resolve(NODE)


def _new_base(ecs: Any) -> str:
    base = ecs.describe_task_definition(taskDefinition="bk-agent:1")["taskDefinition"]
    keep = ("family", "requiresCompatibilities", "networkMode", "cpu", "memory")
    answer = ecs.register_task_definition(
        containerDefinitions=base["containerDefinitions"], **{k: base[k] for k in keep}
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def test_stack_updates_clean_up_families_older_than_the_previous_base(
    ecs: Any, dynamodb: Any
) -> None:
    old = resolver(ecs, dynamodb).resolve(NODE)  # made from base revision 1
    _new_base(ecs)  # revision 2
    previous = resolver(ecs, dynamodb, base="bk-agent:2").resolve(NODE)
    assert previous != old
    assert old in registrations(ecs)  # one version back: still launchable
    _new_base(ecs)  # revision 3
    resolver(ecs, dynamodb, base="bk-agent:3").resolve(NODE)
    active = registrations(ecs)
    assert old not in active
    assert previous in active


def test_the_cleanup_is_bounded(ecs: Any, dynamodb: Any) -> None:
    for tag in range(4):
        resolver(ecs, dynamodb).resolve(parse_image_reference(f"node:{tag}"))
    _new_base(ecs)
    _new_base(ecs)
    resolver(ecs, dynamodb, base="bk-agent:3", cleanup_max=3).resolve(NODE)
    from_base_1 = [arn for arn in registrations(ecs) if f"/{PREFIX}1-" in arn]
    assert len(from_base_1) == 1  # 4 stale, 3 deregistered by this registration
