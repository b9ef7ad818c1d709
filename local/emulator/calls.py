"""The call log: what a client actually sent, so tests can assert on the wire, not on hope.

Indexes restart at 0 whenever the log is cleared, so an index is also the position in the
list and `?since=N` means "everything after the first N calls".
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Call:
    index: int
    method: str
    path: str
    query: str
    endpoint: str | None
    stack_key: str | None
    status: int
    at: str
    duration_ms: float
    job_uuids: list[str]
    fault: str | None


class CallLog:
    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def record(self, **fields: Any) -> Call:
        with self._lock:
            call = Call(index=len(self._calls), **fields)
            self._calls.append(call)
            return call

    def since(self, index: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(call) for call in self._calls[max(index, 0) :]]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
