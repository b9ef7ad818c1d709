"""Ordering and capacity: priority first, then age; never more than the in-flight limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fargate_stack.domain.selection import order_for_reservation, within_capacity

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    id: str
    priority: int
    scheduled_at: datetime


def job(id_: str, priority: int, seconds: int) -> Job:
    return Job(id_, priority, T0 + timedelta(seconds=seconds))


def test_higher_priority_first_then_oldest() -> None:
    jobs = [job("a", 0, 0), job("b", 5, 30), job("c", 5, 10), job("d", -1, -100), job("e", 0, -5)]
    assert [j.id for j in order_for_reservation(jobs)] == ["c", "b", "e", "a", "d"]


def test_order_is_stable_for_equal_keys() -> None:
    jobs = [job("x", 1, 0), job("y", 1, 0), job("z", 1, 0)]
    assert [j.id for j in order_for_reservation(jobs)] == ["x", "y", "z"]


def test_capacity_takes_the_first_jobs_that_fit() -> None:
    jobs = [job(str(i), 0, i) for i in range(5)]
    assert [j.id for j in within_capacity(jobs, max_in_flight=4, in_flight=1)] == ["0", "1", "2"]
    assert within_capacity(jobs, max_in_flight=4, in_flight=4) == []
    assert within_capacity(jobs, max_in_flight=4, in_flight=9) == []


def test_zero_limit_means_unlimited() -> None:
    jobs = [job(str(i), 0, i) for i in range(3)]
    assert within_capacity(jobs, max_in_flight=0, in_flight=100) == jobs
