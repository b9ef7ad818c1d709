"""The real client against the Stacks API emulator over loopback HTTP.

The shared `emulator` fixture (tests/conftest.py) gives a running, freshly reset emulator.
The client's injected sleep does not wait: it records the wait and moves the emulator's
virtual clock forward by it, so "the client honoured Retry-After" is something the
emulator's rate-limit windows can see, without wall time passing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fargate_stack.stacksapi import RetryPolicy, StacksClient
from local.emulator import Emulator
from tests.conftest import EMULATOR_TOKEN

STACK_KEY = "fargate-it"
QUEUE = "linux"


class Control:
    """The emulator's control API (/_emulator/), spoken over HTTP as the contract says."""

    def __init__(self, emu: Emulator) -> None:
        self.url = emu.control_url
        self.http = requests.Session()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, self.url + path, json=body, timeout=10)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def jobs(self, count: int = 1, **spec: Any) -> list[str]:
        spec.setdefault("queue_key", QUEUE)
        created = self.call("POST", "jobs", {"jobs": [dict(spec) for _ in range(count)]})
        return [job["id"] for job in created["jobs"]]

    def job(self, job_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.call("GET", f"jobs/{job_id}")
        return view

    def fault(self, **spec: Any) -> None:
        self.call("POST", "faults", spec)

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.call("GET", "calls")["calls"]
        return [c for c in calls if endpoint is None or c["endpoint"] == endpoint]

    def clear_calls(self) -> None:
        self.call("DELETE", "calls")

    def advance(self, seconds: float) -> None:
        self.call("POST", "clock/advance", {"seconds": seconds})

    def limits(self, **limits: int) -> None:
        self.call("POST", "rate-limits", {"enabled": True, "limits": limits})


class VirtualSleep(list[float]):
    """Records each wait and passes it on the emulator's clock instead of the wall's."""

    def __init__(self, control: Control) -> None:
        super().__init__()
        self.control = control

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.control.advance(seconds)


@pytest.fixture
def control(emulator: Emulator) -> Iterator[Control]:
    ctl = Control(emulator)
    yield ctl
    ctl.http.close()


@pytest.fixture
def sleeps(control: Control) -> VirtualSleep:
    return VirtualSleep(control)


def policy(sleeps: VirtualSleep, **overrides: Any) -> RetryPolicy:
    """Go's retry schedule, jitter pinned to its floor, time virtual."""
    return RetryPolicy(sleep=sleeps, random=lambda: 0.0, **overrides)


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
def stack(client: StacksClient, control: Control) -> str:
    """A registered stack on QUEUE; the call log starts empty after it."""
    client.register_stack(key=STACK_KEY, queue_key=QUEUE)
    control.clear_calls()
    return STACK_KEY
