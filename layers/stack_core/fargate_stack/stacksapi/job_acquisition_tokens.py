"""Job acquisition tokens (Go ``job_acquisition_tokens.go``, newest only).

Reference: docs/reference/stacks-api.md §3.9.

A JAT lets an agent register for exactly one reserved job, so a task need not carry the
cluster token. The tokens are secrets: they are ``SecretStr`` and never appear in a repr.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, SecretStr

from fargate_stack.stacksapi.transport import BaseClient, RetryArg
from fargate_stack.stacksapi.types import APIModel, ListIfNull, StrList
from fargate_stack.stacksapi.wire import build_path, require_range, require_text, require_uuids

# Lifetime 1..3600 s, default 900 (Buildkite docs "Job acquisition tokens").
TOKEN_LIFETIME_MIN = 1
TOKEN_LIFETIME_MAX = 3600


class JobAcquisitionToken(APIModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    job_uuid: str
    token: SecretStr = Field(alias="job_acquisition_token")
    # May be earlier than asked: a token ends with the job's reservation.
    expires_at: datetime


class IssueJobAcquisitionTokensResponse(APIModel):
    """Partial success is normal: match tokens by ``job_uuid`` and never start work for a
    job in ``not_issued``."""

    job_acquisition_tokens: Annotated[list[JobAcquisitionToken], ListIfNull]
    not_issued: StrList = Field(default_factory=list)

    def token_for(self, job_uuid: str) -> JobAcquisitionToken | None:
        return next((t for t in self.job_acquisition_tokens if t.job_uuid == job_uuid), None)


class JobAcquisitionTokensMixin(BaseClient):
    def issue_job_acquisition_tokens(
        self,
        *,
        stack_key: str,
        job_uuids: Sequence[str],
        token_lifetime_seconds: int | None = None,
        retry: RetryArg = None,
    ) -> IssueJobAcquisitionTokensResponse:
        """Tokens for jobs this stack has reserved, 1000 per request (assumed, like the
        other batches). ``token_lifetime_seconds`` None leaves the server default."""
        path = build_path(
            "stacks/{key}/job-acquisition-tokens", key=require_text("stack_key", stack_key)
        )
        uuids = require_uuids("job_uuids", job_uuids)
        lifetime = require_range(
            "token_lifetime_seconds", token_lifetime_seconds, TOKEN_LIFETIME_MIN, TOKEN_LIFETIME_MAX
        )
        return self._batched(
            "POST",
            path,
            uuids,
            model=IssueJobAcquisitionTokensResponse,
            merge=_merge_tokens,
            extra={} if lifetime is None else {"token_lifetime_seconds": lifetime},
            retry=retry,
        )


def _merge_tokens(
    answers: Sequence[IssueJobAcquisitionTokensResponse],
) -> IssueJobAcquisitionTokensResponse:
    return IssueJobAcquisitionTokensResponse(
        job_acquisition_tokens=[t for a in answers for t in a.job_acquisition_tokens],
        not_issued=[uuid for a in answers for uuid in a.not_issued],
    )
