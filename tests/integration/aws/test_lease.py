"""The poller lease's conditional writes against moto's DynamoDB (the ledger's key and TTL
attributes), and its errors through botocore's Stubber."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fargate_stack.aws.lease import LEASE_KEY, DynamoLease
from fargate_stack.aws.ledger import KEY_ATTRIBUTE, TTL_ATTRIBUTE
from fargate_stack.errors import TransientError
from tests.integration.aws.conftest import TABLE

NOW = 1_800_000_000.0


def test_one_holder_wins_until_its_lease_expires(dynamodb: Any) -> None:
    lease = DynamoLease(TABLE, client=dynamodb)
    # Given A claimed a 45 s lease
    assert lease.claim("a", now=NOW, seconds=45)
    # Then B cannot take it while it lasts, and A can renew it
    assert not lease.claim("b", now=NOW + 10, seconds=45)
    assert lease.claim("a", now=NOW + 20, seconds=45)
    assert not lease.claim("b", now=NOW + 60, seconds=45)  # renewed until NOW + 65
    # When it expires, B takes it, and A cannot renew B's lease
    assert lease.claim("b", now=NOW + 66, seconds=45)
    assert not lease.claim("a", now=NOW + 70, seconds=45)


def test_a_released_lease_is_taken_at_once_and_only_its_holder_releases(dynamodb: Any) -> None:
    lease = DynamoLease(TABLE, client=dynamodb)
    assert lease.claim("a", now=NOW, seconds=45)
    lease.release("b")  # not B's: nothing changes
    assert not lease.claim("b", now=NOW + 1, seconds=45)
    lease.release("a")
    assert lease.claim("b", now=NOW + 2, seconds=45)


def test_the_item_carries_the_ledgers_ttl_so_dynamodb_removes_it(dynamodb: Any) -> None:
    DynamoLease(TABLE, client=dynamodb).claim("a", now=NOW, seconds=45)
    item = dynamodb.get_item(TableName=TABLE, Key={KEY_ATTRIBUTE: {"S": LEASE_KEY}})["Item"]
    assert int(item[TTL_ATTRIBUTE]["N"]) > NOW + 45
    assert item["holder"] == {"S": "a"}


def test_other_errors_are_transient_not_a_lost_lease() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error(
            "update_item", service_error_code="ProvisionedThroughputExceededException"
        )
        with pytest.raises(TransientError, match="lease"):
            DynamoLease(TABLE, client=client).claim("a", now=NOW, seconds=45)
