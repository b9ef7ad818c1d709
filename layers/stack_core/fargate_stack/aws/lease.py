"""The poller's lease: one item in the launch ledger that says which invocation polls.

Lambda may run two poller invocations at once (a tick that arrives while the previous one
still loops, or a duplicate delivery), and reserved concurrency cannot prevent it on an
account with a low concurrency quota (docs/reference/aws.md §H.2). A conditional write is
DynamoDB's way to let exactly one writer win
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html);
the item shares the ledger's key and TTL attributes (``lease#`` cannot collide with the
idempotency hashes or ``fallback#`` marks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from fargate_stack.aws.ledger import KEY_ATTRIBUTE, TTL_ATTRIBUTE
from fargate_stack.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

LEASE_KEY = "lease#poller"
# DynamoDB removes the item a day after its last holder: nothing to clean up by hand.
_TTL_AFTER_SECONDS = 86_400


class DynamoLease:
    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")

    def claim(self, holder: str, *, now: float, seconds: float) -> bool:
        """Take or renew the lease until ``now + seconds``; False if another holder's lease
        has not expired. One write either way (a refused conditional write is billed too)."""
        until = now + seconds
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": LEASE_KEY}},
                UpdateExpression="SET holder = :me, lease_until = :until, #ttl = :ttl",
                ConditionExpression=(
                    "attribute_not_exists(holder) OR holder = :me OR lease_until < :now"
                ),
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":me": {"S": holder},
                    ":until": {"N": f"{until:.3f}"},
                    ":now": {"N": f"{now:.3f}"},
                    ":ttl": {"N": str(int(until) + _TTL_AFTER_SECONDS)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise TransientError(f"could not claim the poller lease: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"could not claim the poller lease: {exc}") from exc
        return True

    def release(self, holder: str) -> None:
        """End the lease now, so the next invocation polls at once instead of waiting for
        it to expire. Best effort: if it fails, the lease simply expires."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": LEASE_KEY}},
                UpdateExpression="SET lease_until = :zero",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": holder}, ":zero": {"N": "0"}},
            )
        except (ClientError, BotoCoreError):
            return
