"""Helpers for driving the emulator over plain HTTP (never through the product's client)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from local.emulator import Emulator

TOKEN = "test-token"  # the token tests/conftest.py starts the shared emulator with


class Api:
    """Thin wrappers that keep tests about the wire, not about URL building."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.http = requests.Session()
        self.auth = {"Authorization": f"Token {TOKEN}"}

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


@pytest.fixture
def api(emulator: Emulator) -> Api:
    return Api(emulator)


@pytest.fixture
def stack(api: Api) -> Api:
    """An Api whose stack `stack-a` is registered for queue `q`."""
    assert api.register().status_code == 201
    return api
