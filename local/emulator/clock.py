"""A virtual clock: real time plus an offset that only ever moves forward.

Reservations last 900 s and JATs up to an hour; a test cannot wait that long, so the
emulator reads time only through this clock and the control API advances it. Real time
keeps flowing underneath, so rate-limit windows and latency still behave naturally.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class VirtualClock:
    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset_seconds(self) -> float:
        with self._lock:
            return self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall() + self.offset_seconds, UTC)

    def monotonic(self) -> float:
        """Seconds for measuring windows; advancing the clock also ages rate-limit windows."""
        return self._monotonic() + self.offset_seconds

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the virtual clock only moves forward")
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


def iso(moment: datetime) -> str:
    """Buildkite's timestamp style: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a naive one is taken as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
