"""When to try a request again, and how long to wait first: a port of the Go client's
roko retrier (``DefaultRetrierOptions`` in stacksapi ``client.go``; roko v1.4.0
``retrier.go``), with the clock and the dice injectable so tests never really wait.
"""

from __future__ import annotations

import logging
import math
import random as _random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

# Go parses Retry-After with time.ParseDuration(value + "s"): plain or decimal seconds,
# optionally signed. Anything else (notably an HTTP-date) is ignored with a warning.
_SECONDS = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """The Go defaults: 5 attempts; after the n-th failure wait
    ``floor(initial_ms ** ((n - 1) / exponent_divisor + 1))`` ms plus a jitter drawn
    uniformly from ``[jitter_min, jitter_max)`` seconds (roko ``ExponentialSubsecond`` with
    ``WithJitterRange(500ms, 1s)``): about 1.0, 1.54, 2.37 and 3.65 s, each + 0.5..1 s.

    A ``Retry-After`` on a retryable answer replaces the next wait exactly, without jitter.
    ``max_delay`` (not in Go) caps a computed wait; a ``Retry-After`` above it ends the
    retries instead, so the caller sees the error (and its ``retry_after``) rather than
    this client sleeping longer than it was told it may, or knocking again too early.
    """

    max_attempts: int = 5
    initial_delay: float = 1.0
    exponent_divisor: float = 16.0
    jitter_min: float = 0.5
    jitter_max: float = 1.0
    max_delay: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts!r}")
        if self.initial_delay < 0.001:
            # roko panics below 1 ms: the formula shrinks instead of growing there.
            raise ValueError(f"initial_delay must be at least 0.001 s, got {self.initial_delay}")
        if self.exponent_divisor <= 0:
            raise ValueError(f"exponent_divisor must be positive, got {self.exponent_divisor}")
        if self.jitter_min > self.jitter_max:
            raise ValueError(
                f"jitter_min ({self.jitter_min}) must not exceed jitter_max ({self.jitter_max})"
            )
        if self.max_delay is not None and self.max_delay < 0:
            raise ValueError(f"max_delay must not be negative, got {self.max_delay}")

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """One attempt, like Go's ``WithNoRetry()``: for callers that retry on their own
        schedule (a poll loop) and would rather see the first failure."""
        return cls(max_attempts=1)

    def single_attempt(self) -> RetryPolicy:
        """This policy with one attempt, keeping its injected sleep and random."""
        return replace(self, max_attempts=1)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based).

        roko computes the interval before each attempt from the failures so far, so the
        first wait uses exponent 0/16 + 1; Go truncates the base to whole milliseconds.
        """
        if failures < 1:
            raise ValueError(f"failures must be at least 1, got {failures}")
        exponent = (failures - 1) / self.exponent_divisor + 1
        base_ms = math.floor(math.pow(self.initial_delay * 1000, exponent))
        delay = max(0.0, base_ms / 1000 + self.jitter())
        if self.max_delay is not None:
            delay = min(delay, self.max_delay)
        return delay

    def jitter(self) -> float:
        return self.jitter_min + (self.jitter_max - self.jitter_min) * float(self.random())


def parse_retry_after(value: str | None, logger: logging.Logger | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value, or None when absent or unusable.

    Only delta-seconds are honoured, as in the Go client; an HTTP-date is logged and
    ignored (normal backoff applies). A negative value means "now" (Go's timer fires
    at once), so it becomes 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not _SECONDS.fullmatch(text):
        (logger or logging.getLogger(__name__)).warning(
            "ignoring a Retry-After header that is not a number of seconds",
            extra={"retry_after_header": text[:100]},
        )
        return None
    seconds = float(text)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
