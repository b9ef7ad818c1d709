"""The local world's verdict on the invariants, from job views and launches alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local.outcome import Launch, judge, overlapping_polls

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def view(state: str, *history: str, **extra: Any) -> dict[str, Any]:
    return {
        "state": state,
        "history": [{"state": s, "at": T0.isoformat()} for s in history],
        "scheduled_at": T0.isoformat(),
        **extra,
    }


def launch(job: str, n: int = 1, seconds: float = 5.0) -> Launch:
    at = datetime.fromtimestamp(T0.timestamp() + seconds, tz=UTC)
    return Launch(
        job_uuid=job, task_arn=f"arn:aws:ecs:us-east-1:1:task/bk/{job}-{n}", run_task_at=at
    )


def test_a_clean_run_breaks_nothing_and_measures_dispatch() -> None:
    # Given a job an agent ran and one failed back before any agent took it
    views = {
        "a": view("finished", "scheduled", "reserved", "accepted", "running", "finished"),
        "b": view("finished", "scheduled", "reserved", "finished", finished_by="stack"),
    }
    # When the run is judged
    report = judge({"a": "ran", "b": "image cannot be pulled"}, views, [launch("a"), launch("b")])
    # Then no invariant broke, and each outcome names its task and dispatch time
    assert report.ok
    assert [job.task for job in report.jobs] == ["a-1", "b-1"]
    assert report.jobs[0].dispatch_ms == 5000.0


def test_each_broken_invariant_is_named() -> None:
    # Given a job left reserved, one with two tasks, and one failed back after an agent took it
    views = {
        "lost": view("reserved", "scheduled", "reserved"),
        "twice": view("finished", "scheduled", "reserved", "running", "finished"),
        "taken": view("finished", "scheduled", "accepted", "finished", finished_by="stack"),
    }
    launches = [launch("twice", 1), launch("twice", 2), launch("taken")]
    # When the run is judged
    report = judge({k: k for k in views}, views, launches)
    # Then all three are reported, and the run is not ok
    assert not report.ok
    assert report.violations == [
        "lost: lost (lost) is still reserved",
        "double launch: twice (twice) had 2 tasks",
        "FailJob on a job the agent took: taken (taken)",
    ]


def at(second: float) -> datetime:
    return datetime(2026, 12, 2, tzinfo=UTC) + timedelta(seconds=second)


def test_pollers_taking_turns_do_not_overlap() -> None:
    # Given invocation a polled from 0 to 10 s and b from 10 s (the same millisecond) to 20 s
    polls = [("a", at(0)), ("a", at(10)), ("b", at(10)), ("b", at(20)), ("c", at(21))]
    # Then nobody polled at once
    assert overlapping_polls(polls) == []


def test_a_poll_inside_another_invocations_span_is_an_overlap() -> None:
    # Given b polled at 5 s while a polled from 0 to 10 s, and c inside a's span too
    polls = [("a", at(0)), ("b", at(5)), ("a", at(10)), ("b", at(6)), ("c", at(8))]
    found = overlapping_polls(polls)
    # Then both are reported against a
    assert found == [
        "two pollers at once: b polled before a stopped",
        "two pollers at once: c polled before a stopped",
    ]
