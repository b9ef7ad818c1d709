"""The fallback marks in the launch ledger's table (moto DynamoDB, the template's key and
TTL attribute names)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fargate_stack.aws.ledger import TTL_ATTRIBUTE, DynamoFallbackLedger
from fargate_stack.errors import TransientError
from tests.integration.aws.conftest import TABLE

JOB = "01890f2c-5b5e-4d7e-9a51-0e4c1f0b9a77"


def test_a_recorded_fallback_is_found_for_that_job_only(dynamodb: Any) -> None:
    ledger = DynamoFallbackLedger(TABLE, ttl_seconds=3600, client=dynamodb)
    assert not ledger.fell_back(JOB)
    ledger.record_fallback(JOB)
    assert ledger.fell_back(JOB)
    assert not ledger.fell_back("another-job")
    (item,) = dynamodb.scan(TableName=TABLE)["Items"]
    expires = int(item[TTL_ATTRIBUTE]["N"])
    assert time.time() + 3500 < expires <= time.time() + 3600


def test_an_expired_mark_that_dynamodb_has_not_deleted_yet_is_no_mark(dynamodb: Any) -> None:
    ledger = DynamoFallbackLedger(TABLE, ttl_seconds=-1, client=dynamodb)
    ledger.record_fallback(JOB)
    assert not ledger.fell_back(JOB)


@pytest.mark.parametrize("operation", ["put_item", "get_item"])
def test_dynamodb_errors_are_transient(operation: str) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    ledger = DynamoFallbackLedger(TABLE, ttl_seconds=3600, client=client)
    with Stubber(client) as stub:
        stub.add_client_error(operation, service_error_code="ThrottlingException")
        with pytest.raises(TransientError, match="ThrottlingException"):
            if operation == "put_item":
                ledger.record_fallback(JOB)
            else:
                ledger.fell_back(JOB)
