"""Every AWS adapter test runs with fake credentials in us-east-1."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fake_aws(fake_aws_env: None) -> None:
    """Applies the shared fake environment to every test in this folder."""
