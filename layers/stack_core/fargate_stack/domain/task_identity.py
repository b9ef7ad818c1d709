"""How a Fargate task names the Buildkite job it runs, and which stack started it.

ECS Task State Change events carry no tags (docs/reference/aws.md §B.7), so both facts
must travel in fields the event does carry:

- ``startedBy`` = the stack key, exactly. ListTasks filters on it by exact match (so the
  poller can count this stack's tasks in flight) and the EventBridge rule matches it, so
  the failure handler only sees this stack's tasks.
- ``group`` = ``buildkite-job:<job uuid>``. The agent's ``BUILDKITE_AGENT_ACQUIRE_JOB``
  override names the job too, but the failure handler never sees overrides (they hold the
  job's acquisition token, and the rule's input transformer drops them): a task started by
  hand without the group is not the stack's to report.
"""

from __future__ import annotations

import re
import uuid

ACQUIRE_JOB_ENV = "BUILDKITE_AGENT_ACQUIRE_JOB"
GROUP_PREFIX = "buildkite-job:"

# startedBy: up to 128 characters of letters, digits, '-', '/' and '_'
# (botocore ecs RunTaskRequest.startedBy; docs/reference/aws.md §B.1). Stack keys are
# [A-Za-z0-9_-]{1,80} (docs/reference/stacks-api.md §3.1), so every valid stack key fits.
STARTED_BY_MAX = 128
_STARTED_BY_CHARS = re.compile(r"[A-Za-z0-9_/-]+")  # fullmatch: `$` passes a final newline


def started_by(stack_key: str) -> str:
    if len(stack_key) > STARTED_BY_MAX or not _STARTED_BY_CHARS.fullmatch(stack_key):
        raise ValueError(
            f"stack key {stack_key!r} cannot be an ECS startedBy value: at most "
            f"{STARTED_BY_MAX} characters of letters, digits, '-', '/' and '_'"
        )
    return stack_key


def task_group(job_uuid: str) -> str:
    return f"{GROUP_PREFIX}{job_uuid}"


def _as_uuid(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def job_uuid_of_task(
    *,
    stack_key: str,
    started_by_value: str | None,
    group: str | None,
) -> str | None:
    """The job this stack's task ran, or None when the task is not ours or names no job.

    A task started by anything else is never ours, even if its environment names a job:
    another stack's failures are not ours to report.
    """
    if started_by_value != stack_key:
        return None
    if group and group.startswith(GROUP_PREFIX):
        return _as_uuid(group[len(GROUP_PREFIX) :])
    return None
