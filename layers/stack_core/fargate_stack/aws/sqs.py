"""The launch queue: one SQS message per reserved job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from fargate_stack.errors import TransientError
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.ports import SendResult

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

# SendMessageBatch takes at most 10 entries (botocore sqs SendMessageBatch;
# docs/reference/aws.md §C.1).
SQS_SEND_BATCH_MAX = 10
# Entries SQS rejects for a server-side reason (SenderFault false) get this many more tries
# in the same poll; after that the job is left for its reservation to expire.
SEND_RETRIES = 2


class SqsLaunchQueue:
    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self._url = queue_url
        self._client: SQSClient = client or boto3.client("sqs")

    def send(self, messages: Sequence[LaunchMessage]) -> SendResult:
        """Send every message, retrying entries SQS failed on its side; never raises for a
        single entry, because the caller must log each job that was not enqueued."""
        result = SendResult()
        for start in range(0, len(messages), SQS_SEND_BATCH_MAX):
            self._send_chunk(list(messages[start : start + SQS_SEND_BATCH_MAX]), result)
        return result

    def _send_chunk(self, chunk: list[LaunchMessage], result: SendResult) -> None:
        pending = {str(i): m for i, m in enumerate(chunk)}
        for attempt in range(SEND_RETRIES + 1):
            entries: list[Any] = [
                {"Id": entry_id, "MessageBody": m.to_body()} for entry_id, m in pending.items()
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                if attempt == SEND_RETRIES:
                    for m in pending.values():
                        result.failed[str(m.job_uuid)] = f"SendMessageBatch failed: {exc}"
                    return
                continue
            for ok in answer.get("Successful", []):
                result.sent.append(str(pending.pop(ok["Id"]).job_uuid))
            retry: dict[str, LaunchMessage] = {}
            for bad in answer.get("Failed", []):
                message = pending.pop(bad["Id"])
                reason = f"{bad.get('Code', 'error')}: {bad.get('Message', '')}".strip()
                if bad.get("SenderFault") or attempt == SEND_RETRIES:
                    result.failed[str(message.job_uuid)] = reason
                else:
                    retry[bad["Id"]] = message
            pending = retry
            if not pending:
                return

    def depth(self) -> int:
        """Messages waiting or in flight: launches not yet started count against the limit."""
        try:
            attrs = self._client.get_queue_attributes(
                QueueUrl=self._url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not read the launch queue depth: {exc}") from exc
        return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
        )
