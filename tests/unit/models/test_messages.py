"""The launch message round-trips and rejects anything it does not know."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from fargate_stack.models.messages import LaunchMessage, remaining_reservation_seconds

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def message(**overrides: object) -> LaunchMessage:
    fields: dict[str, object] = {
        "job_uuid": uuid4(),
        "stack_key": "fargate-prod",
        "priority": 3,
        "scheduled_at": NOW - timedelta(seconds=5),
        "reserved_at": NOW,
        "reservation_expires_at": NOW + timedelta(seconds=900),
        "agent_query_rules": ["queue=fargate"],
    }
    fields.update(overrides)
    return LaunchMessage.model_validate(fields)


def test_round_trip() -> None:
    original = message()
    assert LaunchMessage.model_validate_json(original.to_body()) == original


def test_unknown_fields_are_refused_by_name() -> None:
    body = json.loads(message().to_body())
    body["token"] = "bkct_x"
    with pytest.raises(ValidationError, match="token"):
        LaunchMessage.model_validate(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("job_uuid", "not-a-uuid"),
        ("stack_key", "bad key"),
        ("stack_key", ""),
        ("version", 2),
        ("reserved_at", "2026-11-28T12:00:00"),  # naive time: ambiguous, refused
    ],
)
def test_bad_values_name_the_field(field: str, value: object) -> None:
    body = json.loads(message().to_body())
    body[field] = value
    with pytest.raises(ValidationError, match=field):
        LaunchMessage.model_validate(body)


def test_remaining_reservation() -> None:
    assert remaining_reservation_seconds(message(), NOW + timedelta(seconds=100)) == 800
