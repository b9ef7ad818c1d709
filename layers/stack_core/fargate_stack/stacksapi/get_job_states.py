"""Batch-load job states (Go ``get_job_states.go``; docs/reference/stacks-api.md §3.6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BeforeValidator

from fargate_stack.stacksapi.transport import BaseClient, RetryArg
from fargate_stack.stacksapi.types import APIModel
from fargate_stack.stacksapi.wire import build_path, require_text, require_uuids


def _known_states(value: object) -> object:
    """Null means no states; a null state is dropped, i.e. read like an omitted uuid
    ("no longer known to Buildkite", as agent-stack-k8s reads a missing entry)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {uuid: state for uuid, state in value.items() if state is not None}
    return value


class GetJobStatesResponse(APIModel):
    """uuid -> state (``scheduled``, ``reserved``, ``running``, ``finished``, ...). A uuid
    the server does not know may be absent (docs/reference/stacks-api.md §3.6 UNCONFIRMED)."""

    states: Annotated[dict[str, str], BeforeValidator(_known_states)]


class GetJobStatesMixin(BaseClient):
    def get_job_states(
        self, *, stack_key: str, job_uuids: Sequence[str], retry: RetryArg = None
    ) -> GetJobStatesResponse:
        """States of any number of jobs, asked 1000 per request and merged. No uuids means
        no request. On a failing later chunk the error's ``partial`` has the states so far."""
        path = build_path("stacks/{key}/jobs/get-states", key=require_text("stack_key", stack_key))
        uuids = require_uuids("job_uuids", job_uuids)
        return self._batched(
            "POST", path, uuids, model=GetJobStatesResponse, merge=_merge_states, retry=retry
        )


def _merge_states(answers: Sequence[GetJobStatesResponse]) -> GetJobStatesResponse:
    return GetJobStatesResponse(states={k: v for a in answers for k, v in a.states.items()})
