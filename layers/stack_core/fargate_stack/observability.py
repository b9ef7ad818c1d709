"""Logs, metrics and traces: the product's user interface for operators.

One Logger/Metrics/Tracer per process, configured from the standard Powertools variables
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``) that template.yaml sets per
function. Metric names and dimension values are constants here so the dashboard, the
alarms and the code cannot drift apart; dimension values are bounded enums, never a job
uuid (unbounded dimensions multiply CloudWatch cost).
"""

from __future__ import annotations

from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "BuildkiteFargateStack"

logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
tracer = Tracer()


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
    POLLS = "Polls"
    POLLS_PAUSED = "PollsPaused"
    POLL_ERRORS = "PollErrors"  # dimension: kind
    POLL_DURATION = "PollDuration"
    # launcher
    TASKS_LAUNCHED = "TasksLaunched"  # dimension: capacity
    LAUNCHES_DUPLICATE = "LaunchesDuplicate"
    LAUNCH_RETRIED = "LaunchRetried"  # dimension: reason
    LAUNCH_FAILED = "LaunchFailed"  # dimension: reason
    DISPATCH_LATENCY = "DispatchLatency"
    BAD_MESSAGES = "BadMessages"
    # failure handler
    JOBS_FAILED = "JobsFailed"  # dimension: reason (StopReason or launch reason)
    STOPS_IGNORED = "StopsIgnored"  # dimension: why
    BAD_EVENTS = "BadEvents"


def count(metric: Metric, value: float = 1) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def count_by(metric: Metric, dimension: str, value_of_dimension: StrEnum, n: float = 1) -> None:
    """A metric with one bounded dimension, flushed as its own EMF blob.

    Powertools applies dimensions to every metric of a flush, so a per-reason count needs
    ``single_metric`` to keep the function's other metrics undimensioned.
    """
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
