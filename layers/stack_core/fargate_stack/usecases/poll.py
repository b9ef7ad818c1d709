"""One poll: list -> match -> limit -> order -> reserve -> enqueue.

Named stages, as agent-stack-k8s's controller pipeline, each leaving a count in one
summary line per poll. The invariant this code keeps: a job is enqueued only if Buildkite
answered ``reserved`` for it, and a reserved job that cannot be enqueued is logged and left
for its reservation to expire (it then returns to ``scheduled`` and is listed again).

A reserve call that got no usable answer (a dropped connection, a 5xx, a garbled 200) may
still have reserved its jobs, and reserved jobs are not listed: they would wait out their
reservation (15 minutes by default) unlaunched. So the poller remembers them and asks again
on its next polls; re-reserving by the same stack only extends the reservation
(docs/reference/stacks-api.md §3.4), and the answer decides, as always, what is enqueued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from uuid import UUID

from fargate_stack.domain.rules import SkipReason, StackTags, match_rules
from fargate_stack.domain.selection import order_for_reservation, within_capacity
from fargate_stack.domain.task_identity import started_by
from fargate_stack.errors import (
    RateLimitedError,
    StackError,
    StackNotRegisteredError,
    TransientError,
)
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.observability import Metric, count, count_by, logger, milliseconds
from fargate_stack.ports import Clock, LaunchQueue, ListedJob, StacksApi, TaskRunner
from fargate_stack.usecases.poller_lease import PollerLease
from fargate_stack.usecases.stop_starting import SWEEP_INTERVAL_SECONDS, StopStartingTasks

STACK_TYPE = "custom"


@dataclass(frozen=True, slots=True)
class PollConfig:
    stack_key: str
    queue_key: str
    tags: StackTags
    page_size: int
    max_pages: int
    reservation_expiry_seconds: int
    max_in_flight: int
    cluster: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass
class PollSummary:
    listed: int = 0
    matched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    deferred: int = 0
    reserved: int = 0
    not_reserved: int = 0
    enqueued: int = 0
    enqueue_failed: int = 0
    # Jobs asked for again after an earlier reserve call went unanswered.
    reserve_retried: int = 0
    paused: bool = False
    duration_ms: float = 0.0

    def as_log(self) -> dict[str, object]:
        return {
            "listed": self.listed,
            "matched": self.matched,
            "skipped": dict(self.skipped),
            "in_flight": self.in_flight,
            "deferred": self.deferred,
            "reserved": self.reserved,
            "not_reserved": self.not_reserved,
            "enqueued": self.enqueued,
            "enqueue_failed": self.enqueue_failed,
            "reserve_retried": self.reserve_retried,
            "paused": self.paused,
            "duration_ms": round(self.duration_ms, 1),
        }


class PollJobs:
    def __init__(
        self,
        *,
        api: StacksApi,
        queue: LaunchQueue,
        tasks: TaskRunner,
        clock: Clock,
        config: PollConfig,
    ) -> None:
        self._api = api
        self._queue = queue
        self._tasks = tasks
        self._clock = clock
        self._config = config
        # job id -> (the job, when its reserve call first went unanswered; monotonic)
        self._unanswered: dict[str, tuple[ListedJob, float]] = {}
        # Registered by this container: the use case lives as long as the container, so
        # registration happens once per container and again only when Buildkite forgot it.
        self._registered = False

    def register(self) -> None:
        """Register (idempotent on Buildkite's side)."""
        cfg = self._config
        self._api.register_stack(
            key=cfg.stack_key, type=STACK_TYPE, queue_key=cfg.queue_key, metadata=cfg.metadata
        )
        self._registered = True
        logger.info("stack registered", extra={"stack_key": cfg.stack_key})

    def ensure_registered(self) -> None:
        """Register unless this container already did."""
        if not self._registered:
            self.register()

    def forget_registration(self) -> None:
        """Buildkite answered that it does not know the stack: register before the next poll."""
        self._registered = False

    def poll_once(self) -> PollSummary:
        started = self._clock.monotonic()
        summary = PollSummary()
        listed, paused = self._list()
        summary.listed = len(listed)
        if paused:
            summary.paused = True
            logger.info(
                "queue dispatch is paused; launching nothing", extra={"listed": len(listed)}
            )
        else:
            self._dispatch(listed, summary)
        summary.duration_ms = (self._clock.monotonic() - started) * 1000
        self._publish(summary)
        return summary

    def _list(self) -> tuple[list[ListedJob], bool]:
        cfg = self._config
        seen: dict[str, ListedJob] = {}
        paused = False
        for page in self._api.iter_scheduled_jobs(
            stack_key=cfg.stack_key,
            queue_key=cfg.queue_key,
            page_size=cfg.page_size,
            max_pages=cfg.max_pages,
        ):
            paused = paused or page.cluster_queue.dispatch_paused
            # Pagination is not a snapshot (docs/reference/stacks-api.md §3.3): a job can
            # appear twice.
            for job in page.jobs:
                seen.setdefault(job.id, job)
        return list(seen.values()), paused

    def _dispatch(self, listed: Sequence[ListedJob], summary: PollSummary) -> None:
        matched = self._match(listed, summary)
        retried = self._still_unanswered(listed)
        summary.reserve_retried = len(retried)
        ordered = order_for_reservation([*matched, *retried])
        chosen = self._limit(ordered, summary)
        if not chosen:
            return
        reserved = self._reserve(chosen, summary)
        if reserved:
            self._enqueue(reserved, summary)

    def _match(self, listed: Sequence[ListedJob], summary: PollSummary) -> list[ListedJob]:
        matched: list[ListedJob] = []
        for job in listed:
            result = match_rules(job.agent_query_rules, self._config.tags)
            if result.matched:
                matched.append(job)
                continue
            reason = result.reason or SkipReason.MALFORMED_RULE
            summary.skipped[str(reason)] += 1
            logger.info(
                "job skipped: its agent query rules do not match this stack",
                extra={"job_uuid": job.id, "reason": str(reason), "rule": result.rule},
            )
        summary.matched = len(matched)
        return matched

    def _limit(self, ordered: list[ListedJob], summary: PollSummary) -> list[ListedJob]:
        cfg = self._config
        if cfg.max_in_flight <= 0 or not ordered:
            return ordered
        summary.in_flight = (
            self._tasks.count_in_flight(cluster=cfg.cluster, started_by=started_by(cfg.stack_key))
            + self._queue.depth()
        )
        chosen = within_capacity(
            ordered, max_in_flight=cfg.max_in_flight, in_flight=summary.in_flight
        )
        summary.deferred = len(ordered) - len(chosen)
        if summary.deferred:
            logger.info(
                "in-flight limit reached; jobs left for a later poll",
                extra={
                    "deferred": summary.deferred,
                    "in_flight": summary.in_flight,
                    "max_in_flight": cfg.max_in_flight,
                },
            )
        return chosen

    def _still_unanswered(self, listed: Sequence[ListedJob]) -> list[ListedJob]:
        """Jobs to ask for again: a listed job is back to ``scheduled`` (the listing has it),
        and past the reservation's expiry it will be listed again too."""
        listed_ids = {job.id for job in listed}
        oldest = self._clock.monotonic() - self._config.reservation_expiry_seconds
        self._unanswered = {
            job_id: (job, since)
            for job_id, (job, since) in self._unanswered.items()
            if job_id not in listed_ids and since > oldest
        }
        return [job for job, _ in self._unanswered.values()]

    def _reserve(self, chosen: list[ListedJob], summary: PollSummary) -> list[ListedJob]:
        cfg = self._config
        try:
            answer = self._api.batch_reserve_jobs(
                stack_key=cfg.stack_key,
                job_uuids=[job.id for job in chosen],
                reservation_expiry_seconds=cfg.reservation_expiry_seconds,
            )
        except TransientError:
            now = self._clock.monotonic()
            for job in chosen:
                self._unanswered.setdefault(job.id, (job, now))
            raise
        for job in chosen:
            self._unanswered.pop(job.id, None)
        granted = set(answer.reserved)
        summary.reserved = len(granted)
        summary.not_reserved = len(answer.not_reserved)
        for uuid in answer.not_reserved:
            logger.info(
                "job not reserved: another stack or agent took it, or it was canceled",
                extra={"job_uuid": uuid},
            )
        # Keep our priority order; never trust the answer to list only what we asked for.
        return [job for job in chosen if job.id in granted]

    def _enqueue(self, reserved: list[ListedJob], summary: PollSummary) -> None:
        cfg = self._config
        now = self._clock.now()
        expires = now + timedelta(seconds=cfg.reservation_expiry_seconds)
        messages = [
            LaunchMessage(
                job_uuid=UUID(job.id),
                stack_key=cfg.stack_key,
                priority=job.priority,
                scheduled_at=job.scheduled_at,
                reserved_at=now,
                reservation_expires_at=expires,
                agent_query_rules=list(job.agent_query_rules),
                pipeline_uuid=_pipeline_uuid(job),
            )
            for job in reserved
        ]
        result = self._queue.send(messages)
        summary.enqueued = len(result.sent)
        summary.enqueue_failed = len(result.failed)
        for uuid, why in result.failed.items():
            logger.error(
                "reserved job could not be enqueued; its reservation will expire and it "
                "will be listed again",
                extra={"job_uuid": uuid, "error": why},
            )

    def _publish(self, summary: PollSummary) -> None:
        logger.info("poll summary", extra=summary.as_log())
        count(Metric.POLLS)
        if summary.paused:
            count(Metric.POLLS_PAUSED)
        count(Metric.JOBS_LISTED, summary.listed)
        count(Metric.JOBS_MATCHED, summary.matched)
        for reason, n in summary.skipped.items():
            count_by(Metric.JOBS_SKIPPED, "reason", SkipReason(reason), n)
        count(Metric.JOBS_DEFERRED, summary.deferred)
        count(Metric.JOBS_RESERVE_RETRIED, summary.reserve_retried)
        count(Metric.JOBS_RESERVED, summary.reserved)
        count(Metric.JOBS_NOT_RESERVED, summary.not_reserved)
        count(Metric.JOBS_ENQUEUED, summary.enqueued)
        count(Metric.ENQUEUE_FAILED, summary.enqueue_failed)
        milliseconds(Metric.POLL_DURATION, summary.duration_ms)


class PollError(StrEnum):
    """Why a poll failed; a bounded metric dimension."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    NOT_REGISTERED = "not_registered"


@dataclass(frozen=True, slots=True)
class LoopTiming:
    interval_seconds: float
    safety_margin_seconds: float
    sweep_interval_seconds: float = SWEEP_INTERVAL_SECONDS


def run_polls(
    poller: PollJobs,
    clock: Clock,
    timing: LoopTiming,
    remaining_seconds: Callable[[], float],
    lease: PollerLease,
    *,
    stopper: StopStartingTasks | None = None,
) -> list[PollSummary]:
    """Poll every ``interval`` until ``safety_margin`` before the invocation must end,
    while this invocation holds the poller lease; released at the end, so the next tick's
    invocation takes over at once.

    A scheduled invocation arrives once a minute, but a job should wait seconds; so one
    invocation polls many times. Errors never end the loop early: a transient error waits
    (at least the server's Retry-After) and polls again; only errors a retry cannot fix
    (configuration, auth) propagate and fail the invocation, which the alarms report.

    Every ``sweep_interval`` the lease holder also sweeps the stack's starting tasks
    (``stopper``): canceled jobs' tasks and stuck ones are stopped.
    """
    summaries: list[PollSummary] = []
    next_sweep = clock.monotonic()
    try:
        while True:
            started = clock.monotonic()
            wait = _poll_if_leased(poller, lease, timing, summaries)
            if stopper is not None and lease.held and started >= next_sweep:
                _sweep(stopper)
                next_sweep = started + timing.sweep_interval_seconds
            elapsed = clock.monotonic() - started
            sleep_for = max(0.0, wait - elapsed)
            if remaining_seconds() - sleep_for <= timing.safety_margin_seconds:
                return summaries
            clock.sleep(sleep_for)
    finally:
        lease.release()


def _poll_if_leased(
    poller: PollJobs, lease: PollerLease, timing: LoopTiming, summaries: list[PollSummary]
) -> float:
    """One poll if this invocation holds the lease; returns how long to wait for the next."""
    wait = timing.interval_seconds
    if not lease.may_poll():
        return wait
    try:
        poller.ensure_registered()
        summaries.append(poller.poll_once())
    except StackNotRegisteredError:
        logger.warning("Buildkite does not know this stack; registering again")
        count_by(Metric.POLL_ERRORS, "kind", PollError.NOT_REGISTERED)
        poller.forget_registration()
    except RateLimitedError as exc:
        logger.warning(
            "Stacks API rate limit; slowing down", extra={"retry_after": exc.retry_after}
        )
        count_by(Metric.POLL_ERRORS, "kind", PollError.RATE_LIMITED)
        wait = max(wait, exc.retry_after or 0)
    except TransientError as exc:
        logger.warning("poll failed; trying again next interval", extra={"error": str(exc)})
        count_by(Metric.POLL_ERRORS, "kind", PollError.TRANSIENT)
    return wait


def _sweep(stopper: StopStartingTasks) -> None:
    try:
        stopper.sweep()
    except TransientError as exc:  # a rate limit too: the next sweep is seconds away
        logger.warning("sweep of starting tasks failed", extra={"error": str(exc)})
        count(Metric.STOP_SWEEP_ERRORS)
    except StackError as exc:
        # A refusal (a 4xx, a bad token) is the poll's to report: its own calls meet the
        # same cause and end the invocation with it. The sweep only saves money, so it
        # never ends the polling that launches jobs.
        logger.error("sweep of starting tasks was refused", extra={"error": str(exc)})
        count(Metric.STOP_SWEEP_ERRORS)


def _pipeline_uuid(job: ListedJob) -> UUID | None:
    """The listing's pipeline uuid, or None if Buildkite sent none or no uuid: the job then
    runs as the default task role, which is what an unmapped pipeline gets anyway."""
    try:
        return UUID(job.pipeline.uuid) if job.pipeline.uuid else None
    except ValueError:
        logger.warning(
            "listed job has a malformed pipeline uuid; it gets the default task role",
            extra={"job_uuid": job.id},
        )
        return None
