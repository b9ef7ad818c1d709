"""Job acquisition tokens for a launcher batch: the token each task starts its agent with.

With ``AgentTokenMode=job-acquisition-token`` no task holds the cluster token: each gets a
JAT, which registers an agent for its one reserved job only and expires with the
reservation (docs/reference/stacks-api.md §3.9). Buildkite asks for the token "immediately
before starting the workload" and a lifetime no longer than needed; the Stacks API counts
calls, so the launcher asks once per batch, at its first launch:

1. extend the reservations too short for a token (reserving again by the same stack
   extends them, docs/reference/stacks-api.md §3.9), so a token's lifetime is not cut short
   by a reservation about to lapse; the common batch, reserved moments ago, needs none;
2. issue tokens for the jobs still reserved, with ``lifetime_seconds`` (a Fargate start and
   an image pull) capped at the reservation;
3. for a job in ``not_issued``, extend to learn whether the stack still holds it (even if
   step 1 just extended it: the reservation may have lapsed to another stack in between).

Jobs the stack no longer holds get no token and no task (``NotReservedError``: the record
is acknowledged, the job was taken, canceled or re-listed). A job in ``not_issued`` is
retried (``TransientError``): the server said no for now. If Buildkite refuses the endpoint
itself, every launch of the batch fails with a reason naming ``AgentTokenMode``
(``JatUnavailableError``). Whether issuing a second token for a job revokes the first is not
documented (UNCONFIRMED): tokens are asked only for jobs of this invocation's batch, once.

A token is a secret: it is kept as ``SecretStr`` and never logged, counted or raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from fargate_stack.domain.launch import LaunchRejection
from fargate_stack.errors import PermanentError, StackError, TransientError
from fargate_stack.observability import Metric, count_by, logger


class NotReservedError(StackError):
    """The job is no longer reserved by this stack: it gets no token and no task."""


class JatUnavailableError(PermanentError):
    """Buildkite refused the token endpoint itself (not one job)."""

    def __init__(self, cause: str) -> None:
        super().__init__(
            "Buildkite refused to issue job acquisition tokens "
            f"({cause}); this organization or agent cannot use them yet: deploy with "
            "AgentTokenMode=agent-token until it can "
            "(docs/security.md#job-credentials-agenttokenmode)",
            reason=LaunchRejection.JAT_UNAVAILABLE,
        )


class TokenApi(Protocol):
    """What the tokens need from the Stacks API (``fargate_stack.buildkite``)."""

    def extend_reservations(
        self, *, stack_key: str, job_uuids: Sequence[str], reservation_expiry_seconds: int
    ) -> tuple[list[str], list[str]]:
        """(still reserved by this stack, not reserved)."""
        ...

    def issue_job_tokens(
        self, *, stack_key: str, job_uuids: Sequence[str], lifetime_seconds: int
    ) -> tuple[dict[str, SecretStr], list[str]]:
        """(tokens by job uuid, not issued)."""
        ...


class _Issue(StrEnum):
    ISSUED = "issued"
    NOT_ISSUED = "not_issued"
    NOT_RESERVED = "not_reserved"


# A reservation with less than a token's lifetime and this much left is extended first.
EXTEND_MARGIN_SECONDS = 60


@dataclass
class BatchTokens:
    """One invocation's tokens: ``prepare`` with the batch's jobs, then ``token_for``."""

    api: TokenApi
    stack_key: str
    reservation_seconds: int
    lifetime_seconds: int
    # job uuid -> seconds its reservation has left, for the batch not asked for yet
    _pending: dict[str, float] = field(default_factory=dict)
    _tokens: dict[str, SecretStr] = field(default_factory=dict)
    _not_reserved: set[str] = field(default_factory=set)
    _refused: JatUnavailableError | None = None

    def prepare(self, jobs: Mapping[str, float]) -> None:
        """A new batch (job uuid -> seconds its reservation has left): forget the last
        one's tokens (they are not reused)."""
        self._pending = dict(jobs)
        self._tokens.clear()
        self._not_reserved.clear()
        self._refused = None

    def token_for(self, job_uuid: str) -> SecretStr:
        known = job_uuid in self._tokens or job_uuid in self._not_reserved
        if self._refused is None and not known:
            # The batch's first launch asks for all of it (a job outside it, alone).
            batch = dict(self._pending) if job_uuid in self._pending else {job_uuid: 0.0}
            self._ask(batch)
        if self._refused is not None:
            raise self._refused
        if job_uuid in self._tokens:
            return self._tokens[job_uuid]
        if job_uuid in self._not_reserved:
            raise NotReservedError("the job is no longer reserved by this stack")
        raise TransientError("Buildkite issued no job acquisition token for the job yet")

    def _ask(self, batch: Mapping[str, float]) -> None:
        for job in batch:
            self._pending.pop(job, None)
        # Only reservations too short for a token are extended first (the common batch
        # costs one request; reserving again by this stack extends a reservation).
        short = [j for j, left in batch.items() if left < self.lifetime + EXTEND_MARGIN_SECONDS]
        self._extend(short)
        wanted = [j for j in batch if j not in self._not_reserved]
        if not wanted:
            return
        try:
            tokens, not_issued = self.api.issue_job_tokens(
                stack_key=self.stack_key, job_uuids=wanted, lifetime_seconds=self.lifetime
            )
        except JatUnavailableError as exc:
            self._refused = exc
            return
        self._tokens.update(tokens)
        count_by(Metric.JOB_TOKENS, "result", _Issue.ISSUED, len(tokens))
        if not_issued:
            # Not issued: the job may be another stack's now (no task, acknowledged) or
            # refused for now (retried); extending tells them apart. Jobs extended moments
            # ago too: the refusal is newer than that extend's answer.
            self._extend(not_issued)
            count_by(Metric.JOB_TOKENS, "result", _Issue.NOT_ISSUED, len(not_issued))
            logger.warning("Buildkite issued no token for some jobs", extra={"jobs": not_issued})

    def _extend(self, jobs: Sequence[str]) -> None:
        if not jobs:
            return
        _, not_reserved = self.api.extend_reservations(
            stack_key=self.stack_key,
            job_uuids=jobs,
            reservation_expiry_seconds=self.reservation_seconds,
        )
        self._not_reserved.update(not_reserved)
        if not_reserved:
            count_by(Metric.JOB_TOKENS, "result", _Issue.NOT_RESERVED, len(not_reserved))

    @property
    def lifetime(self) -> int:
        """A Fargate start and an image pull, never past a (just extended) reservation."""
        return min(self.lifetime_seconds, self.reservation_seconds)
