"""A wrong or unreadable token secret fails the first invocation with a message naming the
template parameter, not a bare AWS error."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from fargate_stack import bootstrap
from fargate_stack.errors import ConfigurationError
from tests.unit.test_settings import LAUNCHER

MISSING = "arn:aws:secretsmanager:us-east-1:123456789012:secret:not-there-AbCdEf"


@pytest.fixture
def launcher_env(monkeypatch: pytest.MonkeyPatch, fake_aws_env: None) -> Iterator[None]:
    for key, value in LAUNCHER.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BUILDKITE_TOKEN", raising=False)
    bootstrap.reset()
    with mock_aws():
        yield
    bootstrap.reset()


def test_a_missing_secret_names_the_parameter(
    launcher_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLUSTER_TOKEN_SECRET_ARN", MISSING)
    with pytest.raises(ConfigurationError, match="ClusterTokenSecretArn") as caught:
        bootstrap.launcher()
    assert "CLUSTER_TOKEN_SECRET_ARN" in str(caught.value)
    assert MISSING in str(caught.value)


def test_an_empty_secret_is_refused_by_name(
    launcher_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="bk-token", SecretString=" ")["ARN"]
    monkeypatch.setenv("CLUSTER_TOKEN_SECRET_ARN", arn)
    with pytest.raises(ConfigurationError, match="empty secret"):
        bootstrap.launcher()
