"""The launch use case with a step's image: ignored with a notification when AllowedImages
is empty, run in its own task definition when allowed, failed back when not."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from fargate_stack.domain.launch import CapacityStrategy
from fargate_stack.errors import CapacityUnavailableError, PermanentError, TransientError
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.usecases.launch import LaunchJob, LaunchOptions
from tests.support.fakes import (
    T0,
    FakeClock,
    FakeFallbacks,
    FakeStacksApi,
    FakeStepImages,
    FakeTasks,
    JobData,
)
from tests.support.launch_config import launch_config

CONFIG = launch_config()


def message() -> LaunchMessage:
    return LaunchMessage(
        job_uuid=uuid.uuid4(),
        stack_key="fargate-prod",
        scheduled_at=T0 - timedelta(seconds=3),
        reserved_at=T0 - timedelta(seconds=1),
        reservation_expires_at=T0 + timedelta(seconds=899),
        agent_query_rules=["queue=fargate"],
    )


def world(
    image: str | None, allowed: tuple[str, ...] = (), images: FakeStepImages | None = None
) -> tuple[LaunchJob, LaunchMessage, FakeStacksApi, FakeTasks, FakeStepImages]:
    msg = message()
    api = FakeStacksApi()
    env = {"BUILDKITE_PIPELINE_SLUG": "app"} | ({"BUILDKITE_IMAGE": image} if image else {})
    api.jobs_data[str(msg.job_uuid)] = JobData(str(msg.job_uuid), env, "make")
    clock = FakeClock()
    tasks = FakeTasks(clock=clock)
    images = images or FakeStepImages()
    launcher = LaunchJob(
        api=api,
        tasks=tasks,
        fallbacks=FakeFallbacks(),
        clock=clock,
        options=LaunchOptions(CONFIG, CapacityStrategy.SPOT_WITH_FALLBACK, allowed_images=allowed),
        images=images if allowed else None,
    )
    return launcher, msg, api, tasks, images


def test_with_allowed_images_empty_the_job_runs_in_the_agent_image_and_is_told() -> None:
    # Given a stack without AllowedImages and a step naming an image
    launcher, msg, api, tasks, images = world("node:22")
    # When it is launched
    assert launcher.launch(msg)["outcome"] == "launched"
    launcher.flush_notifications()
    # Then it runs in the stack's definition, and its job says the image was ignored
    (spec,) = tasks.launched
    assert spec.task_definition == CONFIG.task_definition
    assert images.resolved == []
    notes = [detail for job, detail in api.notifications if job == str(msg.job_uuid)]
    assert any("'node:22' ignored" in n and "AllowedImages is empty" in n for n in notes)
    assert all(len(n) <= 256 for n in notes)


def test_an_allowed_image_runs_in_its_own_task_definition() -> None:
    launcher, msg, api, tasks, images = world("node:22", ("node:*",))
    assert launcher.launch(msg)["outcome"] == "launched"
    (spec,) = tasks.launched
    assert images.resolved == ["node:22"]
    assert spec.task_definition.endswith("task-definition/bk-step-1-7:1")
    assert spec.to_run_task_kwargs()["taskDefinition"] == spec.task_definition
    launcher.flush_notifications()
    ((_, note),) = api.notifications
    assert note.endswith(", image node:22; log stream job/agent/t1")


def test_the_fallback_to_on_demand_keeps_the_images_definition() -> None:
    launcher, msg, _, tasks, _ = world("node:22", ("node:*",))
    tasks.errors = [CapacityUnavailableError("Capacity is unavailable")]
    assert launcher.launch(msg)["outcome"] == "launched"
    (spec,) = tasks.launched
    assert spec.task_definition.endswith("bk-step-1-7:1")


def test_an_image_not_allowed_is_failed_back_naming_allowed_images() -> None:
    launcher, msg, api, tasks, images = world("evil.example/miner:1", ("node:*",))
    assert launcher.launch(msg) == {"outcome": "failed_back", "reason": "image_not_allowed"}
    detail, _ = api.failed[str(msg.job_uuid)]
    assert "AllowedImages" in detail and "evil.example/miner:1" in detail
    assert tasks.launched == [] and images.resolved == []


def test_a_garbage_image_is_failed_back_before_anything_is_registered() -> None:
    launcher, msg, api, tasks, images = world("Node:22; rm -rf /", ("*",))
    assert launcher.launch(msg) == {"outcome": "failed_back", "reason": "invalid_image"}
    assert "image" in api.failed[str(msg.job_uuid)][0]
    assert tasks.launched == [] and images.resolved == []


def test_a_registration_refused_for_good_fails_the_job_back_with_its_reason() -> None:
    refused = PermanentError(
        "over StepImageRegistrationsPerDay", reason="image_registrations_exhausted"
    )
    launcher, msg, api, tasks, _ = world("node:22", ("node:*",), FakeStepImages(errors=[refused]))
    assert launcher.launch(msg) == {
        "outcome": "failed_back",
        "reason": "image_registrations_exhausted",
    }
    assert "StepImageRegistrationsPerDay" in api.failed[str(msg.job_uuid)][0]
    assert tasks.launched == []


def test_a_registration_in_progress_elsewhere_is_retried() -> None:
    busy = TransientError("being registered by another launch")
    launcher, msg, api, tasks, _ = world("node:22", ("node:*",), FakeStepImages(errors=[busy]))
    with pytest.raises(TransientError):
        launcher.launch(msg)
    assert api.failed == {} and tasks.launched == []
