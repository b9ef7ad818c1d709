"""Per (stack key, scope) one-second sliding windows, as the docs describe.

Reference: docs/reference/stacks-api.md §2.1.

The point is to let a client prove it reads `RateLimit-*` and honours 429/`Retry-After`
before it meets the real limits. Only admitted requests enter a window, so a client that
waits the advertised `reset` really does get through afterwards.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from local.emulator.clock import VirtualClock

WINDOW_SECONDS = 1.0  # docs/reference/stacks-api.md §2.1: one-second sliding window


@dataclass(frozen=True)
class Decision:
    allowed: bool
    scope: str
    limit: int
    remaining: int
    reset: int
    current: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Scope": self.scope,
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(self, clock: VirtualClock, limits: Mapping[str, int]) -> None:
        self._clock = clock
        self._defaults = dict(limits)
        self._limits = dict(limits)
        self._enabled = True
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def settings(self) -> dict[str, object]:
        with self._lock:
            return {"enabled": self._enabled, "limits": dict(sorted(self._limits.items()))}

    def configure(self, *, enabled: bool | None, limits: Mapping[str, int] | None) -> None:
        with self._lock:
            if enabled is not None:
                self._enabled = enabled
            if limits:
                self._limits.update(limits)

    def reset(self) -> None:
        with self._lock:
            self._limits = dict(self._defaults)
            self._enabled = True
            self._windows.clear()

    def check(self, key: str, scope: str) -> Decision | None:
        """Admit or refuse one request; None when the scope has no limit."""
        return self._decide(key, scope, admit=True)

    def peek(self, key: str, scope: str) -> Decision | None:
        """The headers for a response that does not count (401s, injected faults)."""
        return self._decide(key, scope, admit=False)

    def _decide(self, key: str, scope: str, *, admit: bool) -> Decision | None:
        with self._lock:
            limit = self._limits.get(scope)
            if limit is None:
                return None
            now = self._clock.monotonic()
            window = self._windows.setdefault((key, scope), deque())
            while window and window[0] <= now - WINDOW_SECONDS:
                window.popleft()
            allowed = len(window) < limit or not self._enabled
            current = len(window) + 1
            if admit and allowed:
                window.append(now)
            reset = math.ceil(window[0] + WINDOW_SECONDS - now) if window else 0
            return Decision(
                allowed=allowed,
                scope=scope,
                limit=limit,
                remaining=max(0, limit - len(window)),
                reset=max(reset, 1) if not allowed else reset,
                current=current,
            )
