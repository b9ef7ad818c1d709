"""Which matched jobs to reserve this poll, and in what order.

Buildkite lists jobs oldest first; the stack must honour priority itself (higher runs
first, docs/reference/stacks-api.md §3.3) and keep within its in-flight limit, so that a burst
never reserves more jobs than it may launch before their reservations expire.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeVar


class Schedulable(Protocol):
    """The two fields ordering needs; ScheduledJob models satisfy it."""

    @property
    def priority(self) -> int: ...

    @property
    def scheduled_at(self) -> datetime: ...


JobT = TypeVar("JobT", bound=Schedulable)


def order_for_reservation(jobs: Iterable[JobT]) -> list[JobT]:
    """Priority descending, then oldest first; stable for equal keys (as agent-stack-k8s)."""
    return sorted(jobs, key=lambda job: (-job.priority, job.scheduled_at))


def within_capacity(jobs: list[JobT], *, max_in_flight: int, in_flight: int) -> list[JobT]:
    """The first jobs that fit beside ``in_flight`` without passing ``max_in_flight``.

    ``max_in_flight`` of 0 means unlimited: an operator who sets no limit gets no cap.
    """
    if max_in_flight <= 0:
        return list(jobs)
    room = max(0, max_in_flight - in_flight)
    return jobs[:room]
