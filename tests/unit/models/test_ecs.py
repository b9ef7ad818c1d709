"""Every published ECS event in events/published parses; the fields we decide on are right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from fargate_stack.models.ecs import TaskStateChangeEvent

PUBLISHED = Path(__file__).resolve().parents[3] / "events" / "published"
ECS_FILES = sorted(p.name for p in PUBLISHED.glob("ecs-*.json"))
FULL_ENVELOPES = [n for n in ECS_FILES if "partial" not in n]


def load(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((PUBLISHED / name).read_text())
    return data


@pytest.mark.parametrize("name", FULL_ENVELOPES)
def test_published_events_parse(name: str) -> None:
    event = TaskStateChangeEvent.model_validate(load(name))
    assert event.detail.last_status in {"PENDING", "RUNNING", "DEPROVISIONING", "STOPPED"}
    assert event.task_arn.startswith("arn:aws:ecs:")


def test_oom_sample_gives_the_agent_containers_reason() -> None:
    event = TaskStateChangeEvent.model_validate(load("ecs-stopped-oom.json"))
    task = event.stopped_task("forms-perf-test")
    assert task.agent_exit_code == 1
    assert task.agent_reason is not None
    assert "OutOfMemoryError" in task.agent_reason


def test_missing_agent_container_gives_no_exit_code() -> None:
    event = TaskStateChangeEvent.model_validate(load("ecs-stopped-oom.json"))
    assert event.stopped_task("not-there").agent_exit_code is None


def test_versions_order_duplicate_and_late_events() -> None:
    early = TaskStateChangeEvent.model_validate(load("ecs-deprovisioning-with-stopcode.json"))
    late = TaskStateChangeEvent.model_validate(load("ecs-stopped-essential-exit-nonzero.json"))
    assert early.task_arn == late.task_arn
    assert early.detail.version < late.detail.version


def test_overrides_are_never_read_into_the_model() -> None:
    # a raw event (the rule's dead letters) still parses, its token left behind
    data = load("ecs-stopped-essential-exit-nonzero.json")
    detail = data["detail"]
    assert isinstance(detail, dict)
    secret = "bkjat_never_in_the_model"
    detail["overrides"] = {
        "containerOverrides": [
            {"name": "agent", "environment": [{"name": "BUILDKITE_AGENT_TOKEN", "value": secret}]}
        ]
    }
    event = TaskStateChangeEvent.model_validate(data)
    assert secret not in event.model_dump_json()


def test_blank_fields_from_the_input_transformer_read_as_absent() -> None:
    data = load("ecs-stopped-essential-exit-nonzero.json")
    detail = data["detail"]
    assert isinstance(detail, dict)
    detail.update({"stopCode": "", "stoppedReason": "", "group": "", "containers": ""})
    data["resources"] = ""
    event = TaskStateChangeEvent.model_validate(data)
    assert event.detail.stop_code is None
    assert event.detail.stopped_reason is None
    assert event.detail.group is None
    assert event.detail.containers == []
    assert event.resources == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("source", "aws.ec2"), ("detail-type", "ECS Container Instance State Change")],
)
def test_other_events_are_rejected_with_the_field_named(field: str, value: str) -> None:
    data = load("ecs-stopped-oom.json")
    data[field] = value
    with pytest.raises(ValidationError, match=field):
        TaskStateChangeEvent.model_validate(data)
