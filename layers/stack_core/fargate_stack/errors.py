"""The stack's error hierarchy: the class decides what happens to a job.

``TransientError`` means "try again later" (the SQS record is retried through its
visibility timeout); ``PermanentError`` means "this job cannot run here", so the launcher
fails it back to Buildkite with ``detail`` instead of retrying forever.
"""

from __future__ import annotations


class StackError(Exception):
    """Base of every error the stack raises on purpose."""


class TransientError(StackError):
    """Retry later: throttling, capacity, 5xx, timeouts."""


class PermanentError(StackError):
    """Never retry; ``detail`` is what the developer reads on the build page."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # A bounded metric dimension (e.g. "invalid_task_size"), never free text.
        self.reason = reason


class ConfigurationError(StackError):
    """A setting is missing or wrong; raised at cold start and names the variable."""


class CapacityUnavailableError(TransientError):
    """RunTask answered with a capacity failure: retry later, or on other capacity."""


class AlreadyLaunchedError(StackError):
    """ECS says this job's client token already started a task (``task_arn``)."""

    def __init__(self, task_arn: str | None) -> None:
        super().__init__(f"a task was already started for this job: {task_arn or 'unknown'}")
        self.task_arn = task_arn


class JobGoneError(StackError):
    """Buildkite no longer knows the job (404): nothing to launch and nothing to fail."""


class RateLimitedError(TransientError):
    """Buildkite said slow down; ``retry_after`` is its wait in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StackNotRegisteredError(TransientError):
    """Buildkite does not know the stack key (e.g. it was cleaned up); register again."""


class BadInputError(StackError):
    """An event or message that does not parse; it is logged, counted and kept (DLQ)."""
