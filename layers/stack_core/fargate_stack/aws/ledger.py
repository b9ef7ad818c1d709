"""The launch ledger's fallback marks, next to Powertools' idempotency records.

One item per job that fell back to its second capacity, in the same DynamoDB table (the
key cannot collide: idempotency keys are hashes of the job uuid, these start with
``fallback#``) and with the same TTL attribute, so the table needs nothing new.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from fargate_stack.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

KEY_ATTRIBUTE = "id"  # the table's hash key (Powertools' default)
TTL_ATTRIBUTE = "expiration"  # the table's TimeToLiveSpecification attribute
_PREFIX = "fallback#"


class DynamoFallbackLedger:
    def __init__(
        self, table_name: str, *, ttl_seconds: int, client: DynamoDBClient | None = None
    ) -> None:
        self._table = table_name
        self._ttl = ttl_seconds
        self._client: DynamoDBClient = client or boto3.client("dynamodb")

    def record_fallback(self, job_uuid: str) -> None:
        """Written before the fallback RunTask: a crash right after it must leave the mark."""
        item = {
            KEY_ATTRIBUTE: {"S": _PREFIX + job_uuid},
            TTL_ATTRIBUTE: {"N": str(int(time.time()) + self._ttl)},
        }
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not record the job's fallback: {exc}") from exc

    def fell_back(self, job_uuid: str) -> bool:
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": _PREFIX + job_uuid}},
                # A mark written a moment ago by the crashed invocation must be seen.
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not read the job's fallback mark: {exc}") from exc
        item = answer.get("Item")
        if not item:
            return False
        # DynamoDB deletes expired items up to days late; an expired mark is no mark.
        expires = int(item.get(TTL_ATTRIBUTE, {}).get("N", "0"))
        return expires > time.time()
