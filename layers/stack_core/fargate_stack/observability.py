"""Logs, metrics and traces: the product's user interface for operators.

One Logger/Metrics/Tracer per process, configured from the standard Powertools variables
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``) that template.yaml sets per
function. Metric names and dimension values are constants here so the dashboard, the
alarms and the code cannot drift apart; dimension values are bounded enums, never a job
uuid (unbounded dimensions multiply CloudWatch cost).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

NAMESPACE = "BuildkiteFargateStack"
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"


class _Untraced(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: object) -> None:
        pass

    def remove_subsegment(self, subsegment: object) -> None:
        pass

    def put_annotation(self, key: str, value: object) -> None:
        pass

    def put_metadata(self, key: str, value: object, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: object, remote: bool = False) -> None:
        pass


class NoTracing(BaseProvider):
    """The tracer's provider when tracing is off.

    Powertools' Tracer imports the X-Ray SDK even when disabled, and the SDK's recorder
    builds a botocore X-Ray client at import: 150 ms of every cold start (bench/results/
    cold-start.json) for traces nobody records. Powertools takes a custom provider for
    exactly this; no library ships a no-op one, so it is written here.
    """

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: object) -> Generator[BaseSegment]:
        yield _Untraced()

    @asynccontextmanager
    async def in_subsegment_async(
        self, name: str | None = None, **kwargs: object
    ) -> AsyncGenerator[BaseSegment]:
        yield _Untraced()

    def put_annotation(self, key: str, value: object) -> None:
        pass

    def put_metadata(self, key: str, value: object, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


def _tracer() -> Tracer:
    # template.yaml sets the variable from its Tracing parameter.
    if os.environ.get(TRACE_DISABLED_ENV, "").lower() in ("1", "true"):
        return Tracer(disabled=True, auto_patch=False, provider=NoTracing())
    return Tracer()


logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
tracer = _tracer()


class Metric(StrEnum):
    # poller
    JOBS_LISTED = "JobsListed"
    JOBS_MATCHED = "JobsMatched"
    JOBS_SKIPPED = "JobsSkipped"  # dimension: reason (SkipReason)
    JOBS_RESERVED = "JobsReserved"
    JOBS_NOT_RESERVED = "JobsNotReserved"
    JOBS_ENQUEUED = "JobsEnqueued"
    ENQUEUE_FAILED = "EnqueueFailed"
    JOBS_DEFERRED = "JobsDeferred"  # matched, but over the in-flight limit
    JOBS_RESERVE_RETRIED = "JobsReserveRetried"  # asked again after an unanswered reserve
    POLLS = "Polls"
    POLLS_PAUSED = "PollsPaused"
    POLL_ERRORS = "PollErrors"  # dimension: kind
    POLL_DURATION = "PollDuration"
    POLLER_LEASE_HELD = "PollerLeaseHeld"  # an invocation found another one polling
    POLLER_LEASE_ERRORS = "PollerLeaseErrors"  # the lease could not be claimed or renewed
    # dimension: cause (job_ended, provisioning_timeout): StopTask before the task ran
    TASKS_STOPPED = "TasksStopped"
    STOP_SWEEP_ERRORS = "StopSweepErrors"  # a sweep of starting tasks got no answer
    # launcher
    TASKS_LAUNCHED = "TasksLaunched"  # dimension: capacity
    LAUNCHES_DUPLICATE = "LaunchesDuplicate"
    LAUNCH_RETRIED = "LaunchRetried"  # dimension: reason
    LAUNCH_FAILED = "LaunchFailed"  # dimension: reason
    DISPATCH_LATENCY = "DispatchLatency"
    BAD_MESSAGES = "BadMessages"
    JOB_TOKENS = "JobTokens"  # dimension: result (issued, not_issued, not_reserved)
    # dimension: result (registered, waited, busy, refused)
    STEP_IMAGE_REGISTRATIONS = "StepImageRegistrations"
    STEP_IMAGE_DEREGISTERED = "StepImageDeregistered"
    STEP_IMAGES_IGNORED = "StepImagesIgnored"  # asked for while AllowedImages is empty
    # failure handler
    JOBS_FAILED = "JobsFailed"  # dimension: reason (StopReason or launch reason)
    STOPS_IGNORED = "StopsIgnored"  # dimension: why
    BAD_EVENTS = "BadEvents"


def count(metric: Metric, value: float = 1) -> None:
    """Publishes nothing for zero: CloudWatch bills a custom metric for each hour it gets
    data, so ten counters of zero from every idle poll were $3 of an idle month
    (bench/results/cost.json); the alarms treat missing data as not breaching, and the
    dashboard's sums read a gap as zero. ``Polls`` (always 1) keeps the heartbeat."""
    if value:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def count_by(
    metric: Metric,
    dimension: str,
    value_of_dimension: StrEnum,
    n: float = 1,
    *,
    with_total: bool = False,
) -> None:
    """A metric with one bounded dimension, flushed as its own EMF blob.

    Powertools applies dimensions to every metric of a flush, so a per-reason count needs
    ``single_metric`` to keep the function's other metrics undimensioned. ``with_total``
    also counts it without the extra dimension, for an alarm: CloudWatch keeps each
    dimension combination as its own metric and an alarm cannot SEARCH across them
    (docs/reference/aws.md §H.1).
    """
    if with_total:
        count(metric, n)
    with single_metric(
        name=metric,
        unit=MetricUnit.Count,
        value=n,
        namespace=NAMESPACE,
        default_dimensions=metrics.default_dimensions,
    ) as one:
        one.add_dimension(name=dimension, value=str(value_of_dimension))


def milliseconds(metric: Metric, value: float) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Milliseconds, value=value)
