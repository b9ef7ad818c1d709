"""Fixtures for the emulator's own tests; the HTTP helpers live in tests/support/emulator.py."""

from __future__ import annotations

import pytest

from local.emulator import Emulator
from tests.support.emulator import Api


@pytest.fixture
def api(emulator: Emulator) -> Api:
    return Api(emulator)


@pytest.fixture
def registered_api(api: Api) -> Api:
    """An Api whose stack `stack-a` is registered for queue `q`."""
    assert api.register().status_code == 201
    return api
