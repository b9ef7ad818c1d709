"""Fixtures for the client's unit tests: the real client over a real loopback socket to a
scripted server (tests/support/scripted_server.py); not a mock of requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fargate_stack.stacksapi import StacksClient
from tests.support.scripted_server import TOKEN, ScriptedServer, Sleeps, fast_policy


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(server: ScriptedServer, sleeps: Sleeps) -> Iterator[StacksClient]:
    with StacksClient(TOKEN, base_url=server.base_url, retry=fast_policy(sleeps)) as c:
        yield c
