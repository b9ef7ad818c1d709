"""What a local run ends with, and the verdict on the invariants (docs/design.md).

Pure: the emulator's view of every job and the tasks the simulated Fargate started go in,
the per-job outcomes and the list of broken invariants come out, so the verdict can be
tested without running a world (tests/unit/local).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.fargate import qualified

# Job states in which an agent holds (or held) the job: the stack must never FailJob it.
AGENT_STATES = frozenset({"assigned", "accepted", "running", "canceling", "timing_out"})


@dataclass
class JobOutcome:
    id: str
    label: str
    priority: int
    state: str
    finished_by: str | None
    exit_status: int | None
    detail: str | None
    task: str | None
    dispatch_ms: float | None
    history: list[dict[str, Any]]
    scheduled_at: str | None = None
    run_task_at: str | None = None
    # The IAM role the job's code ran as (its task's override, or the definition's).
    task_role: str | None = None
    # The image the job ran in (its task definition's agent container), and the one its
    # step asked for (BUILDKITE_IMAGE), if any.
    image: str | None = None
    asked_image: str | None = None
    # Why its task was stopped by a call (the stack's StopTask reason), if it was.
    task_stopped_by: str | None = None


@dataclass
class WorldReport:
    jobs: list[JobOutcome]
    violations: list[str]
    metrics: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)
    # Calls the handlers made during the run, by operation (not the local plumbing's).
    aws_calls: dict[str, int] = field(default_factory=dict)
    stacks_calls: dict[str, int] = field(default_factory=dict)
    # Client-side round trips of the stack's AWS calls, and the emulator's handling times
    # of the Stacks API calls, in ms, by operation: the parts of the dispatch floor.
    aws_latency_ms: dict[str, list[float]] = field(default_factory=dict)
    stacks_latency_ms: dict[str, list[float]] = field(default_factory=dict)
    # Counts per second of the run, by metric key (the HTML report's dashboard charts).
    metric_series: dict[str, dict[int, float]] = field(default_factory=dict)
    # What the stack sent and was sent, as text, by channel: the secret-leak tests read it.
    evidence: dict[str, list[str]] = field(default_factory=dict)
    # Faults injected by kind (the soak's), e.g. "aws.runtask_throttle", "crash.<point>".
    faults: dict[str, int] = field(default_factory=dict)
    # botocore's retries inside the stack's AWS calls (e.g. RunTask throttled), by operation.
    aws_retries: dict[str, int] = field(default_factory=dict)
    # Wall time spent in each SQS/EventBridge-driven handler over the run.
    handler_seconds: dict[str, float] = field(default_factory=dict)
    # Every IAM decision of the run (local.iam.Record, callers by role logical id).
    iam: list[dict[str, Any]] = field(default_factory=list)
    # Every job acquisition token Buildkite issued in the run (the leak tests look for them).
    jats: list[str] = field(default_factory=list, repr=False)
    # Jobs whose task's agent was refused because a token fault had made its token expire
    # before the task started (the soak: each must end failed back with that reason).
    token_expired_jobs: list[str] = field(default_factory=list)

    @property
    def launched(self) -> int:
        return sum(1 for job in self.jobs if job.task is not None)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True, slots=True)
class Launch:
    """One task the simulated Fargate started for a job, and when its RunTask came."""

    job_uuid: str
    task_arn: str
    run_task_at: datetime
    task_role: str | None = None
    image: str | None = None
    stopped_by: str | None = None


def judge(
    labels: Mapping[str, str], views: Mapping[str, Mapping[str, Any]], launches: Sequence[Launch]
) -> WorldReport:
    """Each job's outcome and every broken invariant: a job left reserved (lost), two tasks
    for one job (double launch), FailJob on a job an agent took."""
    tasks_by_job: dict[str, list[str]] = {}
    first_task_at: dict[str, datetime] = {}
    roles: dict[str, str | None] = {}
    images: dict[str, str | None] = {}
    stops: dict[str, str | None] = {}
    for launch in launches:
        tasks_by_job.setdefault(launch.job_uuid, []).append(launch.task_arn)
        first_task_at[launch.job_uuid] = launch.run_task_at
        roles[launch.job_uuid] = launch.task_role
        images[launch.job_uuid] = launch.image
        stops[launch.job_uuid] = launch.stopped_by
    outcomes: list[JobOutcome] = []
    violations: list[str] = []
    for job_id, label in labels.items():
        view = views[job_id]
        task_arns = tasks_by_job.get(job_id, [])
        outcome = _outcome(job_id, label, view, task_arns, first_task_at.get(job_id))
        outcome.task_role = roles.get(job_id)
        outcome.image = images.get(job_id)
        outcome.task_stopped_by = stops.get(job_id)
        outcomes.append(outcome)
        violations += _broken(job_id, label, view, task_arns)
    return WorldReport(jobs=outcomes, violations=violations, metrics={})


def _outcome(
    job_id: str,
    label: str,
    view: Mapping[str, Any],
    task_arns: Sequence[str],
    run_task_at: datetime | None,
) -> JobOutcome:
    scheduled_at = _parse_time(view.get("scheduled_at"))
    dispatch_ms = None
    if run_task_at is not None and scheduled_at is not None:
        dispatch_ms = (run_task_at - scheduled_at).total_seconds() * 1000
    return JobOutcome(
        id=job_id,
        label=label,
        priority=int(view.get("priority") or 0),
        state=view["state"],
        finished_by=view.get("finished_by"),
        exit_status=view.get("exit_status"),
        detail=view.get("finish_detail"),
        task=task_arns[0].rsplit("/", 1)[-1] if task_arns else None,
        dispatch_ms=dispatch_ms,
        history=list(view.get("history", [])),
        scheduled_at=view.get("scheduled_at"),
        asked_image=(view.get("env") or {}).get("BUILDKITE_IMAGE"),
        run_task_at=run_task_at.isoformat() if run_task_at is not None else None,
    )


def _broken(
    job_id: str, label: str, view: Mapping[str, Any], task_arns: Sequence[str]
) -> list[str]:
    seen = {h["state"] for h in view.get("history", [])}
    broken = []
    if view["state"] == "reserved":
        broken.append(f"lost: {label} ({job_id}) is still reserved")
    if len(task_arns) > 1:
        broken.append(f"double launch: {label} ({job_id}) had {len(task_arns)} tasks")
    if view.get("finished_by") == "stack" and seen & AGENT_STATES:
        broken.append(f"FailJob on a job the agent took: {label} ({job_id})")
    return broken


def wrong_image(job: JobOutcome, allowed: Callable[[str], bool]) -> bool:
    """A job that ran in another image than the one its step asked for and the stack
    allows, or in an image it asked for and the stack does not allow."""
    if job.image is None:
        return False
    asked = qualified(job.asked_image) if job.asked_image else None
    if asked and allowed(job.asked_image or ""):
        return job.image != asked
    return job.image == asked


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def overlapping_polls(polls: Sequence[tuple[str, datetime]]) -> list[str]:
    """Every pair of poller invocations whose polls interleaved: (invocation id, time of
    one poll) for each poll; with the lease, one invocation's polls end before the next's
    begin (ties allowed: the log has millisecond times)."""
    spans: dict[str, list[datetime]] = {}
    for invocation, at in polls:
        span = spans.setdefault(invocation, [at, at])
        span[0], span[1] = min(span[0], at), max(span[1], at)
    broken: list[str] = []
    holder: tuple[str, datetime] | None = None  # the invocation whose polls end last so far
    for invocation, (first, last) in sorted(spans.items(), key=lambda item: item[1][0]):
        if holder is not None and first < holder[1]:
            broken.append(f"two pollers at once: {invocation} polled before {holder[0]} stopped")
        if holder is None or last > holder[1]:
            holder = (invocation, last)
    return broken
