"""The Stacks API as the use cases see it: the client, with errors in the stack's terms.

The client reports what the server said (``StacksNotFoundError``, ``StacksRateLimitError``,
...); what that *means* depends on the call: a 404 while listing means Buildkite forgot the
stack (register again), a 404 on a job means the job is gone. This adapter makes that
translation in one place, and chooses the retry policy per call as agent-stack-k8s does:
listing is not retried (the next poll is the retry), reserving is (re-reserving by the same
stack only extends the reservation), notifications are best effort.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

from pydantic import SecretStr

from fargate_stack.errors import (
    ConfigurationError,
    JobGoneError,
    PermanentError,
    RateLimitedError,
    StackNotRegisteredError,
    TransientError,
)
from fargate_stack.stacksapi import (
    BatchReserveJobsResponse,
    GetJobResponse,
    GetJobStatesResponse,
    ListScheduledJobsResponse,
    RetryPolicy,
    StacksAPIError,
    StacksAuthError,
    StacksClient,
    StacksNotFoundError,
    StacksRateLimitError,
    StacksValidationError,
)
from fargate_stack.usecases.job_tokens import JatUnavailableError

Subject = Literal["stack", "job"]

# Short retries for calls inside a Lambda's time budget: 3 attempts, about 1 + 1.5 s of
# backoff, instead of the Go default's 5 attempts and ~12 s.
BRIEF = RetryPolicy(max_attempts=3)


@contextmanager
def _translated(subject: Subject) -> Iterator[None]:
    try:
        yield
    except StacksRateLimitError as exc:
        raise RateLimitedError(str(exc), retry_after=exc.retry_after) from exc
    except StacksAuthError as exc:
        raise ConfigurationError(
            f"Buildkite refused the cluster token ({exc.status}); check the secret holds a "
            f"cluster agent token (bkct_...): {exc}"
        ) from exc
    except StacksNotFoundError as exc:
        if subject == "stack":
            raise StackNotRegisteredError(str(exc)) from exc
        raise JobGoneError(str(exc)) from exc
    except StacksValidationError as exc:
        if subject == "stack":
            raise ConfigurationError(f"Buildkite rejected the request: {exc}") from exc
        raise PermanentError(str(exc), reason="buildkite_rejected") from exc
    except StacksAPIError as exc:  # server errors, connection errors, unreadable answers
        raise TransientError(str(exc)) from exc


class BuildkiteStacks:
    """Implements ``fargate_stack.ports.StacksApi`` over the real client."""

    def __init__(self, client: StacksClient) -> None:
        self._client = client

    def register_stack(
        self, *, key: str, type: str, queue_key: str, metadata: Mapping[str, str]
    ) -> object:
        with _translated("stack"):
            return self._client.register_stack(
                key=key, type=type, queue_key=queue_key, metadata=dict(metadata), retry=BRIEF
            )

    def iter_scheduled_jobs(
        self, *, stack_key: str, queue_key: str, page_size: int | None, max_pages: int | None
    ) -> Iterator[ListScheduledJobsResponse]:
        with _translated("stack"):
            yield from self._client.iter_scheduled_jobs(
                stack_key=stack_key,
                queue_key=queue_key,
                page_size=page_size,
                max_pages=max_pages,
                retry=False,
            )

    def batch_reserve_jobs(
        self, *, stack_key: str, job_uuids: Sequence[str], reservation_expiry_seconds: int | None
    ) -> BatchReserveJobsResponse:
        with _translated("stack"):
            return self._client.batch_reserve_jobs(
                stack_key=stack_key,
                job_uuids=job_uuids,
                reservation_expiry_seconds=reservation_expiry_seconds,
                retry=BRIEF,
            )

    def extend_reservations(
        self, *, stack_key: str, job_uuids: Sequence[str], reservation_expiry_seconds: int
    ) -> tuple[list[str], list[str]]:
        """Reserve again: for jobs this stack holds, the reservation starts over
        (docs/reference/stacks-api.md §3.9)."""
        answer = self.batch_reserve_jobs(
            stack_key=stack_key,
            job_uuids=job_uuids,
            reservation_expiry_seconds=reservation_expiry_seconds,
        )
        return list(answer.reserved), list(answer.not_reserved)

    def issue_job_tokens(
        self, *, stack_key: str, job_uuids: Sequence[str], lifetime_seconds: int
    ) -> tuple[dict[str, SecretStr], list[str]]:
        """Job acquisition tokens by job uuid, and the jobs given none. A refusal of the
        endpoint itself (a 4xx other than 401 and 429: the organization or agent cannot use
        JATs; the statuses are UNCONFIRMED, docs/reference/stacks-api.md §3.9) is
        ``JatUnavailableError``, never a fallback to the cluster token (Buildkite's advice)."""
        with _translated("stack"):
            try:
                answer = self._client.issue_job_acquisition_tokens(
                    stack_key=stack_key,
                    job_uuids=job_uuids,
                    token_lifetime_seconds=lifetime_seconds,
                    retry=BRIEF,
                )
            except (StacksValidationError, StacksNotFoundError) as exc:
                raise JatUnavailableError(f"HTTP {exc.status}") from exc
        tokens = {t.job_uuid: t.token for t in answer.job_acquisition_tokens}
        return tokens, list(answer.not_issued)

    def get_job(self, *, stack_key: str, job_uuid: str) -> GetJobResponse:
        with _translated("job"):
            return self._client.get_job(stack_key=stack_key, job_uuid=job_uuid, retry=BRIEF)

    def get_job_states(self, *, stack_key: str, job_uuids: Sequence[str]) -> GetJobStatesResponse:
        with _translated("stack"):
            return self._client.get_job_states(
                stack_key=stack_key, job_uuids=job_uuids, retry=BRIEF
            )

    def fail_job(
        self, *, stack_key: str, job_uuid: str, detail: str, exit_status: int = -1
    ) -> None:
        with _translated("job"):
            self._client.fail_job(
                stack_key=stack_key,
                job_uuid=job_uuid,
                detail=detail,
                exit_status=exit_status,
                retry=BRIEF,
            )

    def create_stack_notifications(
        self, *, stack_key: str, notifications: Sequence[Mapping[str, str]]
    ) -> object:
        with _translated("stack"):
            return self._client.create_stack_notifications(
                stack_key=stack_key, notifications=list(notifications), retry=False
            )
