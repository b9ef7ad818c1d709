"""What the task-stopped rule delivers: the fields the failure handler decides on, never the
task's overrides (they hold the job's acquisition token: docs/reference/aws.md §H.44).

The rule's input transformer is applied to every published capture in events/ by the local
bridge's implementation of EventBridge's (local/input_transformer.py, tested against the
user guide's examples in tests/unit/local), and what comes out must parse and decide
exactly as the raw event does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fargate_stack.domain.task_identity import job_uuid_of_task
from fargate_stack.models.ecs import TaskStateChangeEvent
from local.input_transformer import apply

EVENTS = Path(__file__).resolve().parents[2] / "events"
RAW = sorted(
    p.name for p in EVENTS.glob("task-stopped-*.json") if p.stem != "task-stopped-delivered"
)
TOKEN = "bkjat_must_not_be_delivered"  # a marker, not a secret
# AWS's limits (docs/reference/aws.md §H.44) and its rule for variable names
# (docs/reference/aws.md §H.45).
MAX_PATHS = 100
MAX_TEMPLATE = 8192


@pytest.fixture(scope="module")
def transformer(cfn_template: dict[str, Any]) -> dict[str, Any]:
    rule = cfn_template["Resources"]["FailureHandlerFunctionTaskStopped"]["Properties"]
    (target,) = rule["Targets"]
    result: dict[str, Any] = target["InputTransformer"]
    return result


def raw_event(name: str) -> dict[str, Any]:
    """The sample, with the JAT in its agent override as the launcher sets it."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    event["detail"]["overrides"] = {
        "containerOverrides": [
            {
                "name": "agent",
                "environment": [
                    {"name": "BUILDKITE_AGENT_TOKEN", "value": TOKEN},
                    {"name": "BUILDKITE_AGENT_ACQUIRE_JOB", "value": "x"},
                ],
            }
        ]
    }
    return event


def test_the_transformer_is_within_eventbridges_limits(transformer: dict[str, Any]) -> None:
    paths = transformer["InputPathsMap"]
    template = transformer["InputTemplate"]
    assert len(paths) <= MAX_PATHS
    assert len(template) <= MAX_TEMPLATE
    assert not any(name.startswith("aws.") for name in paths)
    # every placeholder is defined, and every path is used
    assert set(re.findall(r"<([A-Za-z0-9_.\-]+)>", template)) == set(paths)


def test_no_path_reaches_the_overrides_or_a_whole_object_holding_them(
    transformer: dict[str, Any],
) -> None:
    for path in transformer["InputPathsMap"].values():
        assert path not in {"$", "$.detail"}, path
        assert "*" not in path, path
        assert "overrides" not in path.lower(), path
        assert "attachments" not in path, path  # network details: not needed, not sent


@pytest.mark.parametrize("name", RAW)
def test_a_delivered_event_decides_as_the_raw_one_and_holds_no_token(
    name: str, transformer: dict[str, Any]
) -> None:
    raw = raw_event(name)
    delivered = apply(transformer, raw)
    assert TOKEN not in json.dumps(delivered)
    assert "overrides" not in delivered["detail"]
    before = TaskStateChangeEvent.model_validate(raw)
    after = TaskStateChangeEvent.model_validate(delivered)
    assert after.stopped_task("agent") == before.stopped_task("agent")
    assert after.task_arn == before.task_arn
    assert after.detail.version == before.detail.version
    assert after.id == before.id
    for event in (before, after):
        assert job_uuid_of_task(
            stack_key="fargate", started_by_value=event.detail.started_by, group=event.detail.group
        )


def test_an_event_missing_optional_fields_is_still_delivered(transformer: dict[str, Any]) -> None:
    raw = raw_event("task-stopped-user.json")
    for key in ("stopCode", "startedAt", "pullStartedAt", "capacityProviderName"):
        raw["detail"].pop(key, None)
    after = TaskStateChangeEvent.model_validate(apply(transformer, raw))
    assert after.detail.stop_code is None
    assert after.detail.last_status == "STOPPED"


def test_the_delivered_sample_is_what_the_rule_makes_of_the_image_pull_capture(
    transformer: dict[str, Any],
) -> None:
    raw = json.loads((EVENTS / "task-stopped-image-pull.json").read_text())
    delivered = json.loads((EVENTS / "task-stopped-delivered.json").read_text())
    assert apply(transformer, raw) == delivered
