"""Job acquisition tokens for a launcher batch: the token each task starts its agent with.

With ``AgentTokenMode=job-acquisition-token`` no task holds the cluster token: each gets a
JAT, which registers an agent for its one reserved job only and expires with the
reservation (docs/reference/stacks-api.md §3.9). Buildkite asks for the token "immediately
before starting the workload" and a lifetime no longer than needed; the Stacks API counts
calls, so the launcher asks once per batch, at its first launch:

1. extend the batch's reservations (reserving again by the same stack extends them,
   docs/reference/stacks-api.md §3.9), so a token's lifetime is not cut short by a
   reservation about to lapse;
2. issue tokens for the jobs still reserved, with ``lifetime_seconds`` (a Fargate start and
   an image pull) capped at the reservation.

Jobs the stack no longer holds get no token and no task (``NotReservedError``: the record
is acknowledged, the job was taken, canceled or re-listed). A job in ``not_issued`` is
retried (``TransientError``): the server said no for now. If Buildkite refuses the endpoint
itself, every launch of the batch fails with a reason naming ``AgentTokenMode``
(``JatUnavailableError``). Whether issuing a second token for a job revokes the first is not
documented (UNCONFIRMED): tokens are asked only for jobs of this invocation's batch, once.

A token is a secret: it is kept as ``SecretStr`` and never logged, counted or raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

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
            reason="jat_unavailable",
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


@dataclass
class BatchTokens:
    """One invocation's tokens: ``prepare`` with the batch's jobs, then ``token_for``."""

    api: TokenApi
    stack_key: str
    reservation_seconds: int
    lifetime_seconds: int
    _pending: list[str] = field(default_factory=list)
    _tokens: dict[str, SecretStr] = field(default_factory=dict)
    _not_reserved: set[str] = field(default_factory=set)
    _not_issued: set[str] = field(default_factory=set)
    _refused: JatUnavailableError | None = None

    def prepare(self, job_uuids: Sequence[str]) -> None:
        """A new batch: forget the last one's tokens (they are not reused)."""
        self._pending = list(dict.fromkeys(job_uuids))
        self._tokens.clear()
        self._not_reserved.clear()
        self._not_issued.clear()
        self._refused = None

    def token_for(self, job_uuid: str) -> SecretStr:
        if self._refused is not None:
            raise self._refused
        if job_uuid not in self._tokens and job_uuid not in self._not_reserved:
            self._ask(
                [*self._pending, job_uuid] if job_uuid not in self._pending else self._pending
            )
        if self._refused is not None:
            raise self._refused
        if job_uuid in self._tokens:
            return self._tokens[job_uuid]
        if job_uuid in self._not_reserved:
            raise NotReservedError("the job is no longer reserved by this stack")
        raise TransientError("Buildkite issued no job acquisition token for the job yet")

    def _ask(self, job_uuids: Sequence[str]) -> None:
        wanted = [j for j in job_uuids if j not in self._tokens and j not in self._not_reserved]
        self._pending = [j for j in self._pending if j not in wanted]
        if not wanted:
            return
        reserved, not_reserved = self.api.extend_reservations(
            stack_key=self.stack_key,
            job_uuids=wanted,
            reservation_expiry_seconds=self.reservation_seconds,
        )
        self._not_reserved.update(not_reserved)
        if not_reserved:
            count_by(Metric.JOB_TOKENS, "result", _Issue.NOT_RESERVED, len(not_reserved))
        if not reserved:
            return
        try:
            tokens, not_issued = self.api.issue_job_tokens(
                stack_key=self.stack_key,
                job_uuids=reserved,
                lifetime_seconds=min(self.lifetime_seconds, self.reservation_seconds),
            )
        except JatUnavailableError as exc:
            self._refused = exc
            return
        self._tokens.update(tokens)
        self._not_issued.update(not_issued)
        count_by(Metric.JOB_TOKENS, "result", _Issue.ISSUED, len(tokens))
        if not_issued:
            count_by(Metric.JOB_TOKENS, "result", _Issue.NOT_ISSUED, len(not_issued))
            logger.warning("Buildkite issued no token for some jobs", extra={"jobs": not_issued})
