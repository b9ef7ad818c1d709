"""Injected failures, so a client's retry rules can be exercised on cue.

Retry rules: docs/reference/stacks-api.md §2.3.

Faults are matched in the order they were added. Latency faults add up and let the request
carry on; the first matching status, malformed_json, drop or token fault decides the answer.
Each fault applies to `count` matching requests and then disappears. A fault may match
only the requests of one caller: `user_agent` is a substring of the User-Agent header (the
stack names its function there, e.g. `(failure-handler)`).

Token faults shape a job acquisition token answer that is otherwise served for real: for
the first `jobs` jobs the stack holds (each job meets one token fault at most),
`not_issued` issues no token, `reservation_lost` issues none because the reservation
passed to another stack (for `seconds`), and
`short_lifetime` issues tokens that expire after `seconds` (below the documented minimum:
a task that starts later than its token lives).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.emulator.behaviour import ENDPOINTS
from local.emulator.errors import BadRequestError

TOKEN_KINDS = ("not_issued", "reservation_lost", "short_lifetime")
KINDS = ("status", "latency", "malformed_json", "drop", *TOKEN_KINDS)
TERMINAL = ("status", "malformed_json", "drop", *TOKEN_KINDS)
JAT_ENDPOINT = "job-acquisition-tokens"


@dataclass
class Fault:
    id: str
    endpoint: str
    kind: str
    count: int
    status: int
    body: str | None
    retry_after: str | None
    seconds: float
    method: str | None
    stack_key: str | None
    jobs: int = 1
    user_agent: str | None = None

    def matches(
        self, endpoint: str | None, method: str, stack_key: str | None, user_agent: str
    ) -> bool:
        return (
            self.count > 0
            and self.endpoint in ("*", endpoint)
            and (self.method is None or self.method == method)
            and (self.stack_key is None or self.stack_key == stack_key)
            and (self.user_agent is None or self.user_agent in user_agent)
        )

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "count": self.count,
            "status": self.status,
            "body": self.body,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "method": self.method,
            "stack_key": self.stack_key,
            "jobs": self.jobs,
            "user_agent": self.user_agent,
        }


@dataclass(frozen=True)
class Plan:
    """What to do to one request: sleep first, then maybe replace the answer."""

    delay_seconds: float
    terminal: Fault | None


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: Mapping[str, Any]) -> Fault:
        fault = _parse(spec, f"fault-{next(self._ids)}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove(self, fault_id: str) -> Fault | None:
        """Take one fault away (e.g. an outage that is over); None if it was used up."""
        with self._lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    self._faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(
        self, endpoint: str | None, method: str, stack_key: str | None, user_agent: str = ""
    ) -> Plan:
        """Consume the faults that apply to this request."""
        delay = 0.0
        terminal: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(endpoint, method, stack_key, user_agent):
                    continue
                fault.count -= 1
                if fault.kind == "latency":
                    delay += fault.seconds
                    continue
                terminal = fault
                break
            self._faults = [f for f in self._faults if f.count > 0]
        return Plan(delay, terminal)


def _parse(spec: Mapping[str, Any], fault_id: str) -> Fault:
    if not isinstance(spec, Mapping):
        raise BadRequestError("a fault spec must be an object")
    endpoint = spec.get("endpoint", "*")
    if endpoint != "*" and endpoint not in ENDPOINTS:
        raise BadRequestError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise BadRequestError(f"kind must be one of {', '.join(KINDS)}")
    if kind in TOKEN_KINDS and endpoint != JAT_ENDPOINT:
        raise BadRequestError(f"a {kind} fault needs endpoint {JAT_ENDPOINT!r}")
    count = spec.get("count", 1)
    jobs = spec.get("jobs", 1)
    if not _is_int(jobs) or jobs < 1:
        raise BadRequestError("jobs must be a positive integer")
    status = spec.get("status", 503)
    seconds = spec.get("seconds", 0.0)
    if not _is_int(count) or count < 1:
        raise BadRequestError("count must be a positive integer")
    if not _is_int(status) or not 100 <= status <= 599:
        raise BadRequestError("status must be an HTTP status code")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise BadRequestError("seconds must be a non-negative number")
    if kind == "latency" and "seconds" not in spec:
        raise BadRequestError("a latency fault needs seconds")
    for name in ("body", "retry_after", "method", "stack_key", "user_agent"):
        if spec.get(name) is not None and not isinstance(spec[name], str):
            raise BadRequestError(f"{name} must be a string")
    method = spec.get("method")
    return Fault(
        id=fault_id,
        endpoint=endpoint,
        kind=kind,
        count=count,
        status=status,
        body=spec.get("body"),
        retry_after=spec.get("retry_after"),
        seconds=float(seconds),
        method=method.upper() if method else None,
        stack_key=spec.get("stack_key"),
        jobs=jobs,
        user_agent=spec.get("user_agent") or None,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
