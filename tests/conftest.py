"""Fixtures shared by every suite.

The emulator is started once per session on a free loopback port and reset before each
test that asks for it, so tests are independent without paying a server start each time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from local.emulator import Emulator
from tests.support.emulator import EMULATOR_TOKEN


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every end-to-end test runs the whole local world, so it must say it is slow, or
    `make test-fast` (``-m "not slow"``) would quietly grow by minutes."""
    unmarked = [
        item.nodeid
        for item in items
        if item.nodeid.startswith("tests/e2e/") and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(f"tests/e2e tests without @pytest.mark.slow: {unmarked}")


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[Emulator]:
    with Emulator(token=EMULATOR_TOKEN, port=0) as emu:
        yield emu


@pytest.fixture
def emulator(_emulator_server: Emulator) -> Emulator:
    """A running Stacks API emulator with a clean state (no jobs, stacks, faults or calls)."""
    response = requests.post(_emulator_server.control_url + "reset", timeout=5)
    response.raise_for_status()
    return _emulator_server


@pytest.fixture(autouse=True)
def _no_metrics_left_over() -> Iterator[None]:
    """Powertools keeps metrics in a module-level buffer until a handler flushes it; a test
    that counts without flushing must not add its counts to the next test's EMF line."""
    from fargate_stack.observability import metrics  # noqa: PLC0415 - product import path

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
