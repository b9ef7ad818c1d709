"""The Stacks API routes (docs/reference/stacks-api.md §3), under `/v3/stacks/`.

Handlers only check the shape of what arrived (400s) and render what the model answers;
the rules themselves live in `state.py`.
"""

from __future__ import annotations

from typing import Any

from local.emulator.clock import iso
from local.emulator.errors import BadRequestError, ValidationError
from local.emulator.state import (
    AcquisitionToken,
    Job,
    ScheduledPage,
    Stack,
    State,
    TokenFault,
)
from local.emulator.wire import Request, Response, Route, uuid_list


class StacksApi:
    def __init__(self, state: State) -> None:
        self.state = state
        self.behaviour = state.behaviour

    def routes(self) -> list[Route]:
        prefix = ("v3", "stacks")
        return [
            Route("POST", (*prefix, "register"), "register", self.register),
            Route("POST", (*prefix, ":key", "deregister"), "deregister", self.deregister),
            Route(
                "GET",
                (*prefix, ":key", "scheduled-jobs"),
                "list-scheduled-jobs",
                self.scheduled_jobs,
            ),
            Route(
                "PUT",
                (*prefix, ":key", "scheduled-jobs", "batch-reserve"),
                "batch-reserve",
                self.reserve,
            ),
            Route("GET", (*prefix, ":key", "jobs", ":id"), "show-job", self.show_job),
            Route(
                "POST",
                (*prefix, ":key", "jobs", "get-states"),
                "batch-load-job-states",
                self.get_states,
            ),
            Route("POST", (*prefix, ":key", "jobs", ":id", "finish"), "finish-job", self.finish),
            Route("POST", (*prefix, ":key", "notifications"), "stack-notification", self.notify),
            Route(
                "POST",
                (*prefix, ":key", "job-acquisition-tokens"),
                "job-acquisition-tokens",
                self.issue_jats,
            ),
        ]

    def register(self, request: Request) -> Response:
        body = request.json_object()
        stack, created = self.state.register_stack(
            key=body.get("key"),
            type_=body.get("type"),
            queue_key=body.get("queue_key"),
            metadata=body.get("metadata"),
        )
        return Response(201 if created else 200, self.stack_view(stack))

    def stack_view(self, stack: Stack) -> dict[str, Any]:
        return {
            "id": stack.id,
            "organization_uuid": self.state.organization_uuid,
            "key": stack.key,
            "type": stack.type,
            "cluster_queue_key": stack.queue_key,
            "metadata": stack.metadata,
            "last_connected_on": iso(stack.last_connected_on),
            "state": stack.state,
        }

    def deregister(self, request: Request) -> Response:
        self.state.deregister_stack(request.params["key"])
        return Response(204)

    def scheduled_jobs(self, request: Request) -> Response:
        queue_key = request.arg("queue_key")
        if not queue_key:
            raise BadRequestError("queue_key is required")
        page = self.state.list_scheduled(
            request.params["key"],
            queue_key,
            limit=self._limit(request.arg("limit")),
            after=request.arg("after") or None,
        )
        request.job_uuids.extend(job.id for job in page.jobs)
        return Response(200, scheduled_page_view(page))

    def _limit(self, raw: str | None) -> int:
        if raw is None or raw == "":
            return self.behaviour.default_page_size
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= self.behaviour.max_page_size:
            raise BadRequestError(
                f"limit must be a positive integer no greater than {self.behaviour.max_page_size}"
            )
        return limit

    def reserve(self, request: Request) -> Response:
        body = request.json_object()
        job_ids = uuid_list(body, "job_uuids", self.behaviour.max_batch_size)
        request.job_uuids.extend(job_ids)
        reserved, not_reserved = self.state.reserve(
            request.params["key"],
            job_ids,
            _optional_int(body, "reservation_expiry_seconds"),
        )
        return Response(200, {"reserved": reserved, "not_reserved": not_reserved})

    def show_job(self, request: Request) -> Response:
        job = self.state.show_job(request.params["key"], request.params["id"])
        return Response(200, {"id": job.id, "env": job.env, "command": job.command})

    def get_states(self, request: Request) -> Response:
        body = request.json_object()
        job_ids = uuid_list(body, "job_uuids", self.behaviour.max_batch_size)
        request.job_uuids.extend(job_ids)
        return Response(200, {"states": self.state.job_states(request.params["key"], job_ids)})

    def finish(self, request: Request) -> Response:
        body = request.json_object()
        exit_status = _optional_int(body, "exit_status")
        signal_reason = body.get("signal_reason")
        if signal_reason is not None and not isinstance(signal_reason, str):
            raise ValidationError("signal_reason must be a string")
        self.state.finish_by_stack(
            request.params["key"],
            request.params["id"],
            exit_status=-1 if exit_status is None else exit_status,
            detail=body.get("detail"),
            signal_reason=signal_reason,
        )
        status = self.behaviour.finish_status
        return Response(status, None if status == 204 else {})

    def notify(self, request: Request) -> Response:
        body = request.json_object()
        items = body.get("notifications")
        if not isinstance(items, list):
            raise BadRequestError("notifications must be an array")
        if len(items) > self.behaviour.max_batch_size:
            raise BadRequestError(
                f"notifications may contain at most {self.behaviour.max_batch_size} entries"
            )
        request.job_uuids.extend(
            item["job_uuid"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("job_uuid"), str)
        )
        errors = self.state.add_notifications(request.params["key"], items)
        return Response(200, {"errors": errors})

    def issue_jats(self, request: Request) -> Response:
        body = request.json_object()
        job_ids = uuid_list(body, "job_uuids", self.behaviour.max_batch_size)
        request.job_uuids.extend(job_ids)
        shaping = request.shaping if isinstance(request.shaping, TokenFault) else None
        issued, not_issued = self.state.issue_jats(
            request.params["key"], job_ids, _optional_int(body, "token_lifetime_seconds"), shaping
        )
        return Response(
            201,
            {"job_acquisition_tokens": [_jat_view(t) for t in issued], "not_issued": not_issued},
        )


def scheduled_page_view(page: ScheduledPage) -> dict[str, Any]:
    return {
        "jobs": [scheduled_job_view(job) for job in page.jobs],
        "page_info": {"has_next_page": page.has_next_page, "end_cursor": page.end_cursor},
        "cluster_queue": {"id": page.queue.id, "dispatch_paused": page.queue.dispatch_paused},
    }


def scheduled_job_view(job: Job) -> dict[str, Any]:
    """A ScheduledJob: nested objects always present, values may be null
    (docs/reference/stacks-api.md §3.3)."""
    return {
        "id": job.id,
        "priority": job.priority,
        "agent_query_rules": list(job.agent_query_rules),
        "scheduled_at": iso(job.scheduled_at),
        "pipeline": {"slug": job.pipeline.get("slug"), "uuid": job.pipeline.get("uuid")},
        "build": {
            "number": job.build.get("number"),
            "branch": job.build.get("branch"),
            "uuid": job.build.get("uuid"),
        },
        "step": {"key": job.step.get("key")},
    }


def _jat_view(token: AcquisitionToken) -> dict[str, str]:
    return {
        "job_uuid": token.job_id,
        "job_acquisition_token": token.token,
        "expires_at": iso(token.expires_at),
    }


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be an integer")
    return value
