"""Failure handling on published ECS events (a job uuid added, as the samples carry none):
FailJob only when the job was never taken, once, with a reason a developer can act on."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fargate_stack.models.ecs import TaskStateChangeEvent
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.usecases.handle_stopped import HandleStopped
from tests.support.fakes import T0, FakeLaunchedTasks, FakeStacksApi

PUBLISHED = Path(__file__).resolve().parents[3] / "events" / "published"
STACK = "fargate-prod"


def ours(name: str, agent: str, job_uuid: str) -> TaskStateChangeEvent:
    """A published event made into one of this stack's tasks for ``job_uuid``."""
    data: dict[str, Any] = json.loads((PUBLISHED / name).read_text())
    data = copy.deepcopy(data)
    data["detail"]["startedBy"] = STACK
    data["detail"]["group"] = f"buildkite-job:{job_uuid}"
    for container in data["detail"]["containers"]:
        if container["name"] == agent:
            container["name"] = "agent"
    return TaskStateChangeEvent.model_validate(data)


def handler(states: dict[str, str]) -> tuple[HandleStopped, FakeStacksApi]:
    api = FakeStacksApi(states=states)
    return HandleStopped(api=api, stack_key=STACK, agent_container="agent"), api


@pytest.mark.parametrize(
    ("name", "agent", "phrase"),
    [
        ("ecs-stopped-oom.json", "forms-perf-test", "ran out of memory"),
        ("ecs-stopped-resource-init-secret.json", "forms-perf-test", "could not read its secrets"),
        ("ecs-stopped-essential-exit-nonzero.json", "kaniko", "exited with code 1"),
        ("ecs-stopped-user-initiated.json", "Nginx", "stopped by a user"),
    ],
)
@pytest.mark.parametrize("state", ["scheduled", "reserved"])
def test_a_job_never_taken_is_failed_with_the_reason(
    name: str, agent: str, phrase: str, state: str
) -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({job: state})
    decision = use_case.on_task_stopped(ours(name, agent, job))
    assert decision.failed
    detail, exit_status = api.failed[job]
    assert phrase in detail
    assert exit_status == -1


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ("assigned", "agent_took_job"),
        ("accepted", "agent_took_job"),
        ("running", "agent_took_job"),
        ("finished", "agent_took_job"),
        ("canceling", "job_canceled"),
        ("canceled", "job_canceled"),
    ],
)
def test_a_job_the_agent_took_or_that_was_canceled_is_left_alone(state: str, why: str) -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({job: state})
    decision = use_case.on_task_stopped(ours("ecs-stopped-oom.json", "forms-perf-test", job))
    assert not decision.failed
    assert decision.reason == why
    assert api.failed == {}


def test_a_job_buildkite_no_longer_knows_is_left_alone() -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({})
    decision = use_case.on_task_stopped(ours("ecs-stopped-oom.json", "forms-perf-test", job))
    assert (decision.failed, decision.reason) == (False, "unknown_job")
    assert api.failed == {}


def test_exit_27_is_never_failed_even_if_the_job_looks_untaken() -> None:
    job = str(uuid.uuid4())
    event = ours("ecs-stopped-essential-exit-nonzero.json", "kaniko", job)
    event.detail.containers[0].exit_code = 27
    use_case, api = handler({job: "reserved"})
    assert use_case.on_task_stopped(event).reason == "job_not_acquirable"
    assert api.failed == {}


def test_duplicate_and_late_events_fail_the_job_once() -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({job: "reserved"})
    stopped = ours("ecs-stopped-essential-exit-nonzero.json", "kaniko", job)
    earlier = ours("ecs-deprovisioning-with-stopcode.json", "kaniko", job)
    assert use_case.on_task_stopped(stopped).failed
    api.states[job] = "finished"  # what Buildkite says after the finish
    assert not use_case.on_task_stopped(stopped).failed
    assert use_case.on_task_stopped(earlier).reason == "not_stopped"
    assert len(api.failed) == 1


def test_tasks_of_other_stacks_and_plain_samples_are_not_ours() -> None:
    use_case, api = handler({})
    data = json.loads((PUBLISHED / "ecs-stopped-oom.json").read_text())
    assert use_case.on_task_stopped(TaskStateChangeEvent.model_validate(data)).reason == "not_ours"
    assert api.failed == {}


def test_dlq_record_fails_a_job_still_waiting() -> None:
    job = uuid.uuid4()
    use_case, api = handler({str(job): "reserved"})
    message = LaunchMessage(
        job_uuid=job,
        stack_key=STACK,
        scheduled_at=T0,
        reserved_at=T0,
        reservation_expires_at=T0 + timedelta(seconds=900),
    )
    assert use_case.on_launch_gave_up(message, receive_count=5).failed
    assert "after 5 attempts" in api.failed[str(job)][0]


def gave_up(job: uuid.UUID) -> LaunchMessage:
    return LaunchMessage(
        job_uuid=job,
        stack_key=STACK,
        scheduled_at=T0,
        reserved_at=T0,
        reservation_expires_at=T0 + timedelta(seconds=900),
    )


def test_a_dead_letter_of_a_job_a_later_message_launched_is_left_to_that_task() -> None:
    # Given a job reserved again after its first message gave up, and a task started for it
    job, other = uuid.uuid4(), uuid.uuid4()
    api = FakeStacksApi(states={str(job): "reserved", str(other): "reserved"})
    tasks = FakeLaunchedTasks()
    task = tasks.add(str(job), "PENDING")
    tasks.add(str(uuid.uuid4()), "RUNNING")  # another job's
    use_case = HandleStopped(
        api=api, stack_key=STACK, agent_container="agent", tasks=tasks, cluster="bk"
    )
    # When the first message's dead letter arrives
    decision = use_case.on_launch_gave_up(gave_up(job), receive_count=5)
    # Then the job is not failed back: its task runs it (or its stop event fails it)
    assert (decision.failed, decision.reason) == (False, "launched_later")
    assert api.failed == {}
    # and a job with no task of its own still is
    assert use_case.on_launch_gave_up(gave_up(other), receive_count=5).failed
    assert set(api.failed) == {str(other)}
    # and a stopped task is no later launch
    tasks.stopped[task.arn] = "done"
    assert use_case.on_launch_gave_up(gave_up(job), receive_count=5).failed


def test_a_dead_letter_of_a_job_the_agent_took_asks_no_ecs() -> None:
    job = uuid.uuid4()
    api = FakeStacksApi(states={str(job): "running"})
    tasks = FakeLaunchedTasks()
    tasks.after_launched = lambda: pytest.fail("listed the tasks of a job already taken")
    use_case = HandleStopped(
        api=api, stack_key=STACK, agent_container="agent", tasks=tasks, cluster="bk"
    )
    assert use_case.on_launch_gave_up(gave_up(job), receive_count=5).reason == "agent_took_job"


def test_agent_exit_0_means_the_job_ran_so_buildkite_is_not_even_asked() -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({job: "reserved"})  # even if the state looked untaken
    decision = use_case.on_task_stopped(ours("ecs-stopped-essential-exit-0.json", "kaniko", job))
    assert decision.reason == "agent_ran_job"
    assert api.failed == {}


def test_the_failjob_detail_links_to_the_tasks_agent_log() -> None:
    # Given a failure handler that knows the agent's log group
    job = str(uuid.uuid4())
    api = FakeStacksApi(states={job: "scheduled"})
    use_case = HandleStopped(
        api=api, stack_key=STACK, agent_container="agent", agent_log_group="/bk/fargate-prod/agent"
    )
    event = ours("ecs-stopped-oom.json", "forms-perf-test", job)
    # When a task that never ran its job stops
    use_case.on_task_stopped(event)
    # Then the detail links to its stream, job/agent/<task id>, in the event's region
    detail, _ = api.failed[job]
    task_id = event.task_arn.rsplit("/", 1)[-1]
    assert f"https://{event.region}.console.aws.amazon.com/cloudwatch/home" in detail
    assert f"log-events/job$252Fagent$252F{task_id}" in detail
    assert "log-group/$252Fbk$252Ffargate-prod$252Fagent/" in detail
    assert len(detail.encode()) <= 4096


def test_without_a_log_group_the_detail_has_no_link() -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({job: "scheduled"})
    use_case.on_task_stopped(ours("ecs-stopped-oom.json", "forms-perf-test", job))
    assert "console.aws.amazon.com" not in api.failed[job][0]


EVENTS = Path(__file__).resolve().parents[3] / "events"


def sample(name: str, job_uuid: str) -> TaskStateChangeEvent:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    data["detail"]["group"] = f"buildkite-job:{job_uuid}"
    data["detail"]["startedBy"] = STACK
    return TaskStateChangeEvent.model_validate(data)


def test_a_task_the_stack_stopped_for_its_timeout_fails_its_waiting_job_with_why() -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({job: "reserved"})
    decision = use_case.on_task_stopped(sample("task-stopped-provisioning-timeout.json", job))
    assert (decision.failed, decision.reason) == (True, "provisioning_timeout")
    detail, _ = api.failed[job]
    assert "never started running" in detail
    assert "ProvisioningTimeoutSeconds (900 s)" in detail


def test_a_canceled_jobs_task_the_stack_stopped_is_not_failed_back() -> None:
    job = str(uuid.uuid4())
    use_case, api = handler({job: "canceled"})
    decision = use_case.on_task_stopped(sample("task-stopped-provisioning-timeout.json", job))
    assert (decision.failed, decision.reason) == (False, "job_canceled")
    assert api.failed == {}
