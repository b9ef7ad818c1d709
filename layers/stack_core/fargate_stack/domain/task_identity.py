"""How a Fargate task names the Buildkite job it runs, and which stack started it.

ECS Task State Change events carry no tags (reference aws-facts.md §B.7), so the job must
be recoverable from fields the event does carry. ``startedBy`` is the primary carrier: it is
filterable by an EventBridge ``prefix`` pattern (so the rule only sees this stack's tasks)
and by ListTasks. The agent's ``BUILDKITE_AGENT_ACQUIRE_JOB`` override is the fallback.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

ACQUIRE_JOB_ENV = "BUILDKITE_AGENT_ACQUIRE_JOB"

# startedBy: up to 128 characters of letters, digits, '-', '/' and '_'
# (botocore ecs RunTaskRequest.startedBy; reference aws-facts.md §B.1).
STARTED_BY_MAX = 128
_STARTED_BY_CHARS = re.compile(r"^[A-Za-z0-9_/-]+$")


def started_by_prefix(stack_key: str) -> str:
    """The prefix every task of this stack carries; the EventBridge rule matches on it."""
    return f"{stack_key}/"


def started_by(stack_key: str, job_uuid: str) -> str:
    value = f"{started_by_prefix(stack_key)}{job_uuid}"
    if len(value) > STARTED_BY_MAX or not _STARTED_BY_CHARS.match(value):
        raise ValueError(
            f"startedBy {value!r} must be at most {STARTED_BY_MAX} characters of "
            "letters, digits, '-', '/' and '_' (stack key too long or has other characters?)"
        )
    return value


def _as_uuid(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def job_uuid_of_task(
    *, stack_key: str, started_by_value: str | None, environment: Mapping[str, str]
) -> str | None:
    """The job this stack's task ran, or None when the task is not ours or names no job.

    A task whose ``startedBy`` belongs to another stack is never ours, even if its
    environment names a job: another stack's failures are not ours to report.
    """
    if started_by_value:
        prefix = started_by_prefix(stack_key)
        if not started_by_value.startswith(prefix):
            return None
        found = _as_uuid(started_by_value[len(prefix) :])
        if found:
            return found
    return _as_uuid(environment.get(ACQUIRE_JOB_ENV))
