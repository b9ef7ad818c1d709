"""The control API under `/_emulator/`: how tests and the local world drive the emulator.

It plays the parts of Buildkite that no Stacks API call reaches: a user creating and
canceling jobs, pausing a queue, time passing, the network misbehaving. No auth, no
faults, no rate limits and no call-log entries, so arranging a test never disturbs what
the test then observes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.emulator.behaviour import ENDPOINTS, scope_of
from local.emulator.calls import CallLog
from local.emulator.clock import VirtualClock, iso
from local.emulator.errors import BadRequestError, NotFoundError
from local.emulator.faults import FaultBook
from local.emulator.ratelimit import RateLimiter
from local.emulator.state import Job, State
from local.emulator.wire import Request, Response, Route


class ControlApi:
    def __init__(
        self,
        *,
        state: State,
        clock: VirtualClock,
        faults: FaultBook,
        limiter: RateLimiter,
        calls: CallLog,
        reset: Callable[[], None],
    ) -> None:
        self.state = state
        self.clock = clock
        self.faults = faults
        self.limiter = limiter
        self.calls = calls
        self._reset = reset

    def routes(self) -> list[Route]:
        c = "_emulator"
        return [
            Route("POST", (c, "jobs"), "control", self.create_jobs),
            Route("GET", (c, "jobs"), "control", self.list_jobs),
            Route("GET", (c, "jobs", ":id"), "control", self.get_job),
            Route("GET", (c, "jobs", ":id", "log"), "control", self.get_log),
            Route("POST", (c, "jobs", ":id", "cancel"), "control", self.cancel),
            Route("POST", (c, "jobs", ":id", "lock"), "control", self.lock),
            Route("POST", (c, "queues", ":key", "pause"), "control", self.pause),
            Route("GET", (c, "stacks"), "control", self.list_stacks),
            Route("GET", (c, "job-acquisition-tokens"), "control", self.list_jats),
            Route("GET", (c, "clock"), "control", self.get_clock),
            Route("POST", (c, "clock", "advance"), "control", self.advance),
            Route("GET", (c, "faults"), "control", self.list_faults),
            Route("POST", (c, "faults"), "control", self.add_fault),
            Route("DELETE", (c, "faults"), "control", self.clear_faults),
            Route("DELETE", (c, "faults", ":id"), "control", self.remove_fault),
            Route("GET", (c, "rate-limits"), "control", self.get_rate_limits),
            Route("POST", (c, "rate-limits"), "control", self.set_rate_limits),
            Route("GET", (c, "calls"), "control", self.list_calls),
            Route("DELETE", (c, "calls"), "control", self.clear_calls),
            Route("POST", (c, "reset"), "control", self.reset),
        ]

    def create_jobs(self, request: Request) -> Response:
        body = request.json_object()
        specs = body.get("jobs", [body])
        if not isinstance(specs, list):
            raise BadRequestError("jobs must be an array of job specs")
        jobs = self.state.create_jobs(specs)
        return Response(201, {"jobs": [job_view(job) for job in jobs]})

    def list_jobs(self, request: Request) -> Response:
        jobs = self.state.list_jobs(state=request.arg("state"), queue_key=request.arg("queue_key"))
        return Response(200, {"jobs": [job_view(job) for job in jobs]})

    def get_job(self, request: Request) -> Response:
        return Response(200, job_view(self.state.job(request.params["id"])))

    def get_log(self, request: Request) -> Response:
        log = self.state.job(request.params["id"]).log
        return Response(200, raw=log, content_type="text/plain; charset=utf-8")

    def cancel(self, request: Request) -> Response:
        return Response(200, job_view(self.state.cancel(request.params["id"])))

    def lock(self, request: Request) -> Response:
        locked = request.json_object(required=False).get("locked", True)
        if not isinstance(locked, bool):
            raise BadRequestError("locked must be a boolean")
        return Response(200, job_view(self.state.set_locked(request.params["id"], locked=locked)))

    def pause(self, request: Request) -> Response:
        paused = request.json_object(required=False).get("paused", True)
        if not isinstance(paused, bool):
            raise BadRequestError("paused must be a boolean")
        queue = self.state.pause_queue(request.params["key"], paused=paused)
        return Response(200, {"queue_key": queue.key, "dispatch_paused": queue.dispatch_paused})

    def list_stacks(self, request: Request) -> Response:
        with self.state.lock:
            stacks = [
                {
                    "key": s.key,
                    "id": s.id,
                    "type": s.type,
                    "queue_key": s.queue_key,
                    "metadata": s.metadata,
                    "state": s.state,
                    "last_connected_on": iso(s.last_connected_on),
                }
                for s in self.state.stacks.values()
            ]
        return Response(200, {"stacks": stacks})

    def list_jats(self, request: Request) -> Response:
        """Every job acquisition token issued (with the token fault that shaped it), and the
        jobs a token fault left without one: for the local world's leak checks and fault
        counts (the control API is the test's side of Buildkite, never the stack's)."""
        withheld = [{"job_uuid": job, "fault": kind} for job, kind in self.state.withheld_jats]
        return Response(200, {"tokens": self.state.issued_jats(), "withheld": withheld})

    def get_clock(self, request: Request) -> Response:
        return Response(
            200, {"now": iso(self.clock.now()), "offset_seconds": self.clock.offset_seconds}
        )

    def advance(self, request: Request) -> Response:
        seconds = request.json_object().get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise BadRequestError("seconds must be a non-negative number")
        self.clock.advance(float(seconds))
        self.state.tick()
        return self.get_clock(request)

    def list_faults(self, request: Request) -> Response:
        return Response(200, {"faults": [fault.view() for fault in self.faults.list()]})

    def add_fault(self, request: Request) -> Response:
        fault = self.faults.add(request.json_object())
        return Response(201, {"id": fault.id})

    def clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return Response(204)

    def remove_fault(self, request: Request) -> Response:
        """Ends one fault early; answers what was left of it (a used-up fault is gone)."""
        fault = self.faults.remove(request.params["id"])
        if fault is None:
            raise NotFoundError(f"no fault {request.params['id']!r} (used up or never added)")
        return Response(200, fault.view())

    def get_rate_limits(self, request: Request) -> Response:
        return Response(200, self.limiter.settings())

    def set_rate_limits(self, request: Request) -> Response:
        body = request.json_object()
        enabled = body.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise BadRequestError("enabled must be a boolean")
        limits = body.get("limits") or {}
        if not isinstance(limits, dict):
            raise BadRequestError("limits must be an object of scope -> requests per second")
        known = {scope_of(endpoint) for endpoint in ENDPOINTS}
        for scope, limit in limits.items():
            if scope not in known:
                raise BadRequestError(f"unknown scope {scope!r}; one of {', '.join(sorted(known))}")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise BadRequestError(f"the limit for {scope} must be a positive integer")
        self.limiter.configure(enabled=enabled, limits=limits)
        return Response(200, self.limiter.settings())

    def list_calls(self, request: Request) -> Response:
        raw = request.arg("since") or "0"
        try:
            since = int(raw)
        except ValueError as exc:
            raise BadRequestError("since must be an integer") from exc
        return Response(200, {"calls": self.calls.since(since)})

    def clear_calls(self, request: Request) -> Response:
        self.calls.clear()
        return Response(204)

    def reset(self, request: Request) -> Response:
        self._reset()
        return Response(204)


def job_view(job: Job) -> dict[str, Any]:
    """Everything about a job, for assertions: the spec plus what happened to it."""
    return {
        "id": job.id,
        "queue_key": job.queue_key,
        "priority": job.priority,
        "agent_query_rules": list(job.agent_query_rules),
        "env": dict(job.env),
        "command": job.command,
        "pipeline": dict(job.pipeline),
        "build": dict(job.build),
        "step": dict(job.step),
        "scheduled_at": iso(job.scheduled_at),
        "created_at": iso(job.created_at),
        "locked": job.locked,
        "state": job.state,
        "reservation": (
            {"stack_key": job.reservation.stack_key, "expires_at": iso(job.reservation.expires_at)}
            if job.reservation
            else None
        ),
        "exit_status": job.exit_status,
        "finish_detail": job.finish_detail,
        "signal_reason": job.signal_reason,
        "finished_by": job.finished_by,
        "finished_at": iso(job.finished_at) if job.finished_at else None,
        "notifications": [
            {"detail": n.detail, "timestamp": iso(n.timestamp), "stack_key": n.stack_key}
            for n in job.notifications
        ],
        "history": [{"state": t.state, "at": iso(t.at), "by": t.by} for t in job.history],
        "agent": job.agent,
    }
