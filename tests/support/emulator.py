"""Talking to the local Stacks API emulator in tests, over plain HTTP.

``Api`` speaks the Stacks API wire directly (never through the product's client), so the
emulator's own tests are about the wire, not about URL building; ``Agent`` makes the Agent
API calls buildkite/agent makes; ``Control`` drives the
emulator's control API (jobs, faults, clock, call log); ``VirtualSleep`` lets the real
client's retries pass on the emulator's virtual clock instead of the wall's.
"""

from __future__ import annotations

from typing import Any

import requests

from fargate_stack.stacksapi import RetryPolicy
from local.emulator import Emulator

# The token tests/conftest.py starts the shared emulator with; valid only for the emulator.
EMULATOR_TOKEN = "test-token"
# The stack and queue the Stacks API client's integration tests register.
CLIENT_STACK_KEY = "fargate-it"
CLIENT_QUEUE = "linux"


class Api:
    """Thin wrappers that keep tests about the wire, not about URL building."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.http = requests.Session()
        self.auth = {"Authorization": f"Token {EMULATOR_TOKEN}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.http.request(
            method, self.emu.base_url + path, headers=headers, timeout=5, **kwargs
        )

    def control(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.http.request(
            method, self.emu.control_url + path, json=body, timeout=5, **kwargs
        )
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def jobs(self, *specs: dict[str, Any]) -> list[str]:
        created = self.control("POST", "jobs", {"jobs": list(specs)})["jobs"]
        return [job["id"] for job in created]

    def job(self, job_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.control("GET", f"jobs/{job_id}")
        return view

    def register(
        self, key: str = "stack-a", queue_key: str = "q", **extra: Any
    ) -> requests.Response:
        body = {"key": key, "type": "custom", "queue_key": queue_key, "metadata": {}, **extra}
        return self.call("POST", "stacks/register", json=body)

    def scheduled(self, key: str = "stack-a", **params: Any) -> requests.Response:
        params.setdefault("queue_key", "q")
        return self.call("GET", f"stacks/{key}/scheduled-jobs", params=params)

    def reserve(self, job_ids: list[str], key: str = "stack-a", **extra: Any) -> requests.Response:
        return self.call(
            "PUT",
            f"stacks/{key}/scheduled-jobs/batch-reserve",
            json={"job_uuids": job_ids, **extra},
        )

    def states(self, job_ids: list[str], key: str = "stack-a") -> dict[str, str]:
        response = self.call("POST", f"stacks/{key}/jobs/get-states", json={"job_uuids": job_ids})
        assert response.status_code == 200, response.text
        states: dict[str, str] = response.json()["states"]
        return states

    def advance(self, seconds: float) -> None:
        self.control("POST", "clock/advance", {"seconds": seconds})

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.control("GET", f"calls?since={since}")["calls"]
        return calls


class Agent:
    """The calls buildkite/agent makes, in its order, with its tokens."""

    def __init__(self, api: Api, registration_token: str = EMULATOR_TOKEN) -> None:
        self.api = api
        self.registration_token = registration_token
        self.access_token = ""
        self.job_token = ""

    def _call(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        return self.api.http.request(
            method,
            self.api.emu.base_url + path,
            headers={"Authorization": f"Token {token}", **kwargs.pop("headers", {})},
            timeout=5,
            **kwargs,
        )

    def register(self) -> requests.Response:
        response = self._call(
            "POST",
            "register",
            self.registration_token,
            json={"name": "fargate-1", "meta_data": ["queue=q"], "ignore_in_dispatches": True},
        )
        if response.status_code == 200:
            self.access_token = response.json()["access_token"]
        return response

    def acquire(self, job: str) -> requests.Response:
        response = self._call(
            "PUT",
            f"jobs/{job}/acquire",
            self.access_token,
            headers={"X-Buildkite-Lock-Acquire-Job": "1", "X-Buildkite-Backoff-Sequence": "0"},
        )
        if response.status_code == 200:
            self.job_token = response.json()["token"]
        return response

    def job_call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._call(method, path, self.job_token, **kwargs)


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
        spec.setdefault("queue_key", CLIENT_QUEUE)
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


def policy(sleeps: VirtualSleep, **overrides: Any) -> RetryPolicy:
    """Go's retry schedule, jitter pinned to its floor, time virtual."""
    return RetryPolicy(sleep=sleeps, random=lambda: 0.0, **overrides)
