"""Which launched tasks the stack stops before they run.

A task is still starting while ECS reports it PROVISIONING, PENDING or ACTIVATING (ECS task
lifecycle: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html);
its agent can only take the job once the container runs. Two reasons to stop one:

- its job ended on Buildkite first (canceled, mostly): the task would start, and its
  agent would be refused the job (docs/reference/stacks-api.md §7, 422), after Fargate
  billed its start. agent-stack-k8s deletes the pods of such jobs the same way
  (`internal/controller/scheduler/batch_buildkite_job_checker.go`: canceled/canceling).
- it has been starting for longer than ``ProvisioningTimeoutSeconds``: no capacity, or an
  image pull that does not end. The failure handler then fails the job back with why, if
  no agent took it (agent-stack-k8s: `pod-pending-timeout`, 15 minutes).

A running task is never stopped, whatever its job's state: its agent may have the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# ECS's statuses before RUNNING (the task lifecycle page above).
STARTING_STATUSES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})

# Job states in which no agent can take the job any more (canceling and timing_out end in
# canceled and timed_out): docs/reference/stacks-api.md §3.6.
ENDED_JOB_STATES = frozenset(
    {"canceling", "canceled", "finished", "timing_out", "timed_out", "expired", "skipped", "broken"}
)

# StopTask's reason: "Up to 255 characters are allowed in this message" (the SDKs' model
# text, e.g. https://docs.aws.amazon.com/sdk-for-ruby/v2/api/Aws/ECS/Types/StopTaskRequest.html;
# today's API_StopTask page states no limit, so the stack keeps to the old one).
STOP_REASON_MAX = 255
# Every reason the stack gives starts so, and the timeout's names its parameter: the
# failure handler reads them back from the STOPPED event's stoppedReason.
STOP_REASON_PREFIX = "Buildkite Fargate Stack:"
TIMEOUT_PARAMETER = "ProvisioningTimeoutSeconds"


class StopCause(StrEnum):
    """Why the stack stopped a starting task; a bounded metric dimension."""

    JOB_ENDED = "job_ended"
    PROVISIONING_TIMEOUT = "provisioning_timeout"


@dataclass(frozen=True, slots=True)
class LaunchedTask:
    """One of the stack's tasks as DescribeTasks reports it."""

    arn: str
    job_uuid: str
    last_status: str
    created_at: datetime | None

    @property
    def starting(self) -> bool:
        return self.last_status in STARTING_STATUSES


@dataclass(frozen=True, slots=True)
class StopOrder:
    task: LaunchedTask
    cause: StopCause
    reason: str  # StopTask's reason, at most STOP_REASON_MAX characters


def stop_order(
    task: LaunchedTask, job_state: str | None, *, now: datetime, timeout_seconds: int
) -> StopOrder | None:
    """Whether to stop ``task`` now, given its job's state (None: Buildkite did not say).

    An unknown job is not stopped for its state (whether get-states omits unknown jobs is
    UNCONFIRMED, docs/reference/stacks-api.md §3.6); the timeout still applies to it.
    """
    if not task.starting:
        return None
    status = task.last_status
    if job_state in ENDED_JOB_STATES:
        reason = (
            f"{STOP_REASON_PREFIX} the job is {job_state} on Buildkite; its task was still "
            f"{status}, so the stack stopped it before it ran."
        )
        return StopOrder(task, StopCause.JOB_ENDED, reason[:STOP_REASON_MAX])
    if task.created_at is None or timeout_seconds <= 0:
        return None
    age = (now - task.created_at).total_seconds()
    if age < timeout_seconds:
        return None
    reason = (
        f"{STOP_REASON_PREFIX} still {status} {int(age)} s after it was created, past "
        f"{TIMEOUT_PARAMETER} ({timeout_seconds} s); stopped by the stack."
    )
    return StopOrder(task, StopCause.PROVISIONING_TIMEOUT, reason[:STOP_REASON_MAX])


def is_timeout_stop(stop_code: str | None, stopped_reason: str | None) -> bool:
    """A STOPPED event of a task the stack stopped for its provisioning timeout."""
    text = stopped_reason or ""
    return (
        stop_code == "UserInitiated"
        and text.startswith(STOP_REASON_PREFIX)
        and f"past {TIMEOUT_PARAMETER}" in text
    )
