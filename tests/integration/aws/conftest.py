"""Every AWS adapter test runs with fake credentials in us-east-1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fargate_stack.aws.ledger import KEY_ATTRIBUTE

TABLE = "ledger"


@pytest.fixture(autouse=True)
def _fake_aws(fake_aws_env: None) -> None:
    """Applies the shared fake environment to every test in this folder."""


@pytest.fixture
def dynamodb(fake_aws_env: None) -> Iterator[Any]:
    """A launch ledger table in moto, with the template's key attribute."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        )
        yield client
