"""The launch queue adapter against moto's SQS (and botocore's Stubber for the entry
failures moto cannot produce)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from fargate_stack.aws.sqs import SEND_RETRIES, SqsLaunchQueue
from fargate_stack.errors import TransientError
from fargate_stack.models.messages import LaunchMessage

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def launch_message() -> LaunchMessage:
    return LaunchMessage(
        job_uuid=uuid4(),
        stack_key="s",
        scheduled_at=NOW,
        reserved_at=NOW,
        reservation_expires_at=NOW + timedelta(seconds=900),
    )


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    url: str = sqs.create_queue(QueueName="launch")["QueueUrl"]
    return url


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return bodies
        bodies += [json.loads(m["Body"]) for m in got["Messages"]]


def test_sends_25_messages_in_chunks_of_10(sqs: Any, queue_url: str) -> None:
    calls: list[int] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: calls.append(len(params["Entries"])),
    )
    messages = [launch_message() for _ in range(25)]
    result = SqsLaunchQueue(queue_url, client=sqs).send(messages)
    assert sorted(result.sent) == sorted(str(m.job_uuid) for m in messages)
    assert result.failed == {}
    assert calls == [10, 10, 5]
    received = drain(sqs, queue_url)
    assert sorted(b["job_uuid"] for b in received) == sorted(result.sent)
    assert LaunchMessage.model_validate(received[0])


def test_depth_counts_waiting_and_in_flight(sqs: Any, queue_url: str) -> None:
    queue = SqsLaunchQueue(queue_url, client=sqs)
    queue.send([launch_message() for _ in range(3)])
    sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)
    assert queue.depth() == 3


def test_depth_error_is_transient(sqs: Any) -> None:
    queue = SqsLaunchQueue("https://sqs.us-east-1.amazonaws.com/123456789012/missing", client=sqs)
    with pytest.raises(TransientError, match="launch queue depth"):
        queue.depth()


def test_server_side_entry_failures_are_retried_then_reported() -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/launch"
    first, second = launch_message(), launch_message()
    with Stubber(client) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
            },
        )
        for _ in range(SEND_RETRIES):
            stub.add_response(
                "send_message_batch",
                {
                    "Successful": [],
                    "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
                },
            )
        result = SqsLaunchQueue(url, client=client).send([first, second])
        stub.assert_no_pending_responses()
    assert result.sent == [str(first.job_uuid)]
    assert result.failed == {str(second.job_uuid): "InternalError:"}


def test_sender_faults_are_not_retried() -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/launch"
    only = launch_message()
    with Stubber(client) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [],
                "Failed": [
                    {"Id": "0", "SenderFault": True, "Code": "InvalidMessage", "Message": "bad"}
                ],
            },
        )
        result = SqsLaunchQueue(url, client=client).send([only])
        stub.assert_no_pending_responses()
    assert result.failed == {str(only.job_uuid): "InvalidMessage: bad"}


def test_a_failing_call_is_retried_and_then_every_entry_reported() -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/launch"
    messages = [launch_message(), launch_message()]
    with Stubber(client) as stub:
        for _ in range(SEND_RETRIES + 1):
            stub.add_client_error("send_message_batch", service_error_code="ThrottlingException")
        result = SqsLaunchQueue(url, client=client).send(messages)
        stub.assert_no_pending_responses()
    assert result.sent == []
    assert set(result.failed) == {str(m.job_uuid) for m in messages}
    assert all("ThrottlingException" in why for why in result.failed.values())
