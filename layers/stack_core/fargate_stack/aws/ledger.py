"""The launch ledger: fallback marks and step images' task definitions, next to Powertools'
idempotency records.

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


_IMAGE_PREFIX = "step-image#"
_COUNT_PREFIX = "step-image-registrations#"
# A family's ARN is remembered this long; a family still in use after it is found again
# by one more registration (one per image a month), and one no longer used is forgotten.
IMAGE_TTL_SECONDS = 30 * 24 * 3600
_COUNT_TTL_SECONDS = 2 * 24 * 3600


class DynamoImageLedger:
    """Step images' task definitions in the launch ledger table (keys start with
    ``step-image``, so they cannot meet an idempotency hash or a fallback mark)."""

    def __init__(self, table_name: str, *, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")

    def arn_of(self, family: str) -> str | None:
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": _IMAGE_PREFIX + family}},
                # The claim holder's ARN must be seen by the launchers waiting for it.
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not read the step image's task definition: {exc}") from exc
        item = answer.get("Item") or {}
        arn = item.get("arn", {}).get("S")
        expires = int(item.get(TTL_ATTRIBUTE, {}).get("N", "0"))
        return arn if arn and expires > time.time() else None

    def claim(self, family: str, holder: str, *, seconds: float) -> bool:
        """True for one launcher at a time: none holds the family, its claim has lapsed, or
        its remembered ARN has expired."""
        now = int(time.time())
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    KEY_ATTRIBUTE: {"S": _IMAGE_PREFIX + family},
                    "holder": {"S": holder},
                    "claimed_until": {"N": str(now + int(seconds))},
                    TTL_ATTRIBUTE: {"N": str(now + IMAGE_TTL_SECONDS)},
                },
                ConditionExpression=(
                    "attribute_not_exists(#id) OR "
                    "(attribute_not_exists(arn) AND claimed_until < :now) OR #exp < :now"
                ),
                ExpressionAttributeNames={"#id": KEY_ATTRIBUTE, "#exp": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise TransientError(f"could not claim the step image's registration: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"could not claim the step image's registration: {exc}") from exc
        return True

    def complete(self, family: str, holder: str, arn: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": _IMAGE_PREFIX + family}},
                UpdateExpression="SET arn = :arn, #exp = :exp REMOVE claimed_until, holder",
                ExpressionAttributeNames={"#exp": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":arn": {"S": arn},
                    ":exp": {"N": str(int(time.time()) + IMAGE_TTL_SECONDS)},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            # The task definition exists; a later launch registers one more revision.
            raise TransientError(
                f"could not record the step image's task definition: {exc}"
            ) from exc

    def release(self, family: str, holder: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": _IMAGE_PREFIX + family}},
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except (ClientError, BotoCoreError):
            # Best effort: the claim lapses by itself after claimed_until.
            return

    def count_registration(self, day: str, limit: int) -> bool:
        """Count one registration for ``day``; False (nothing counted) at the limit."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": _COUNT_PREFIX + day}},
                UpdateExpression="ADD registrations :one SET #exp = :exp",
                ConditionExpression="attribute_not_exists(registrations) OR registrations < :limit",
                ExpressionAttributeNames={"#exp": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":exp": {"N": str(int(time.time()) + _COUNT_TTL_SECONDS)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise TransientError(f"could not count the registration: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"could not count the registration: {exc}") from exc
        return True
