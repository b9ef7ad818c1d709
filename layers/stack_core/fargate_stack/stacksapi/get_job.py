"""Fetch one job's runtime data (Go ``get_job.go``; docs/reference/stacks-api.md §3.5)."""

from __future__ import annotations

from pydantic import Field

from fargate_stack.stacksapi.transport import BaseClient, RetryArg
from fargate_stack.stacksapi.types import APIModel, NullableStr, StrDict
from fargate_stack.stacksapi.wire import build_path, require_text


class GetJobResponse(APIModel):
    """``env`` and ``command`` can each exceed 100 KB (docs); a null is read as empty."""

    id: str
    env: StrDict = Field(default_factory=dict)
    command: NullableStr = ""


class GetJobMixin(BaseClient):
    def get_job(self, *, stack_key: str, job_uuid: str, retry: RetryArg = None) -> GetJobResponse:
        path = build_path(
            "stacks/{key}/jobs/{job}",
            key=require_text("stack_key", stack_key),
            job=require_text("job_uuid", job_uuid),
        )
        return self._request("GET", path, model=GetJobResponse, retry=retry)
