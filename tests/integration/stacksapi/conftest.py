"""The real client against the Stacks API emulator over loopback HTTP.

The shared `emulator` fixture (tests/conftest.py) gives a running, freshly reset emulator.
The client's injected sleep does not wait: it records the wait and moves the emulator's
virtual clock forward by it, so "the client honoured Retry-After" is something the
emulator's rate-limit windows can see, without wall time passing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fargate_stack.stacksapi import StacksClient
from local.emulator import Emulator
from tests.support.emulator import (
    CLIENT_QUEUE,
    CLIENT_STACK_KEY,
    EMULATOR_TOKEN,
    Control,
    VirtualSleep,
    policy,
)


@pytest.fixture
def control(emulator: Emulator) -> Iterator[Control]:
    ctl = Control(emulator)
    yield ctl
    ctl.http.close()


@pytest.fixture
def sleeps(control: Control) -> VirtualSleep:
    return VirtualSleep(control)


@pytest.fixture
def client(emulator: Emulator, sleeps: VirtualSleep) -> Iterator[StacksClient]:
    with StacksClient(
        EMULATOR_TOKEN,
        base_url=emulator.base_url,
        user_agent_prefix="stacksapi-integration-tests",
        retry=policy(sleeps),
        timeout=5.0,
    ) as c:
        yield c


@pytest.fixture
def registered_key(client: StacksClient, control: Control) -> str:
    """The key of a stack registered on CLIENT_QUEUE; the call log starts empty after it."""
    client.register_stack(key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE)
    control.clear_calls()
    return CLIENT_STACK_KEY
