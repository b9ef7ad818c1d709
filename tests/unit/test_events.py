"""Every sample in events/ parses as its function will parse it, and means what its name says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fargate_stack.domain.task_identity import job_uuid_of_task
from fargate_stack.domain.triage import StopReason, triage
from fargate_stack.errors import BadInputError
from fargate_stack.intake import (
    parse_failure_record,
    parse_launch_message,
    parse_task_state_change,
)
from fargate_stack.models.ecs import TaskStateChangeEvent
from fargate_stack.models.messages import LaunchMessage

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


STOPPED_CASES = [
    ("task-stopped-image-pull.json", StopReason.IMAGE_PULL),
    ("task-stopped-registry-rate-limit.json", StopReason.REGISTRY_RATE_LIMIT),
    ("task-stopped-secrets.json", StopReason.SECRETS),
    ("task-stopped-out-of-memory.json", StopReason.OUT_OF_MEMORY),
    ("task-stopped-agent-exit.json", StopReason.AGENT_EXITED),
    ("task-stopped-spot.json", StopReason.SPOT_INTERRUPTION),
    ("task-stopped-not-acquirable.json", StopReason.JOB_NOT_ACQUIRABLE),
    ("task-stopped-user.json", StopReason.USER_INITIATED),
    ("task-stopped-provisioning-timeout.json", StopReason.PROVISIONING_TIMEOUT),
    ("task-stopped-job-ran.json", StopReason.AGENT_EXITED),
    # what the rule's input transformer makes of the image-pull capture
    ("task-stopped-delivered.json", StopReason.IMAGE_PULL),
]


@pytest.mark.parametrize(("name", "reason"), STOPPED_CASES)
def test_task_stopped_samples(name: str, reason: StopReason) -> None:
    event = parse_task_state_change(load(name))
    assert event.detail.last_status == "STOPPED"
    job = job_uuid_of_task(
        stack_key="fargate",
        started_by_value=event.detail.started_by,
        group=event.detail.group,
    )
    assert job is not None
    assert triage(event.stopped_task("agent")).reason is reason


def test_every_task_stopped_sample_is_tested() -> None:
    names = {p.name for p in EVENTS.glob("task-stopped-*.json")}
    tested = {name for name, _ in STOPPED_CASES}
    assert names == tested


def test_launcher_batch_has_two_launches_and_one_bad_body() -> None:
    records = load("launcher-batch.json")["Records"]
    parsed = [parse_launch_message(r["body"], message_id=r["messageId"]) for r in records[:2]]
    assert [m.priority for m in parsed] == [2, 0]
    with pytest.raises(BadInputError, match=records[2]["messageId"]):
        parse_launch_message(records[2]["body"], message_id=records[2]["messageId"])


def test_dlq_record_is_a_launch_message() -> None:
    (record,) = load("dlq-record.json")["Records"]
    assert (
        parse_launch_message(record["body"], message_id=record["messageId"]).stack_key == "fargate"
    )


def test_events_retry_batch_holds_an_invocation_record_and_a_rule_dead_letter() -> None:
    first, second = load("events-retry-batch.json")["Records"]
    wrapped = parse_failure_record(first["body"], message_id=first["messageId"])
    raw = parse_failure_record(second["body"], message_id=second["messageId"])
    assert isinstance(wrapped, TaskStateChangeEvent)
    assert isinstance(raw, TaskStateChangeEvent)
    assert triage(wrapped.stopped_task("agent")).reason is StopReason.IMAGE_PULL
    assert triage(raw.stopped_task("agent")).reason is StopReason.SECRETS


def test_a_failure_record_that_is_neither_is_rejected_as_a_launch_message() -> None:
    (record,) = load("dlq-record.json")["Records"]
    assert isinstance(parse_failure_record(record["body"], message_id="m"), LaunchMessage)
    for junk in ("", "[]", '{"requestPayload": 1}', '{"detail-type": "x"}', "not json"):
        with pytest.raises(BadInputError):
            parse_failure_record(junk, message_id="m")


def test_poller_tick_is_a_scheduled_event() -> None:
    assert load("poller-tick.json")["detail-type"] == "Scheduled Event"


def test_a_non_ecs_event_is_rejected_with_its_id() -> None:
    with pytest.raises(BadInputError, match="cdc73f9d"):
        parse_task_state_change(load("poller-tick.json"))
