"""Each failed SQS record leaves one warning (why it failed) and is reported for retry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fargate_stack.batch import LoggedBatchProcessor
from fargate_stack.errors import TransientError

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_failed_records_are_logged_once_each_with_their_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event: dict[str, Any] = json.loads((EVENTS / "launcher-batch.json").read_text())
    first, second, third = (r["messageId"] for r in event["Records"])

    def handle(record: SQSRecord) -> str:
        if record.message_id == first:
            raise TransientError("RunTask failed (ThrottlingException): Rate exceeded")
        if record.message_id == second:
            raise KeyError("a bug")
        return "ok"

    response = process_partial_response(
        event=event, record_handler=handle, processor=LoggedBatchProcessor()
    )

    assert response == {
        "batchItemFailures": [{"itemIdentifier": first}, {"itemIdentifier": second}]
    }
    logged = {r.message_id: r for r in caplog.records if "SQS will deliver it again" in r.message}  # type: ignore[attr-defined]
    assert set(logged) == {first, second}
    assert logged[first].error_type == "TransientError"  # type: ignore[attr-defined]
    assert "ThrottlingException" in logged[first].error  # type: ignore[attr-defined]
    assert logged[first].exc_info is None  # expected: no traceback
    assert logged[second].exc_info is not None  # a bug: its traceback
    assert third not in logged
