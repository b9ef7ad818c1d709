"""The slice of the Agent API a `buildkite-agent start --acquire-job` run needs.

Reference: docs/reference/stacks-api.md §7.

Paths and shapes follow buildkite/agent (`api/agents.go`, `api/jobs.go`, `api/chunks.go`,
`api/heartbeats.go`, `api/pings.go`, `core/client.go`, `agent/job_runner.go`), read at
commit 5c219808 (2026-08-21): register and connect as the agent, `PUT jobs/:id/acquire`
with 200 / 422 / 423, then start, log chunks, finish and disconnect with the job's own
token. Only what that flow needs is here; dispatch through ping is not emulated.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from typing import Any

from local.emulator.clock import iso
from local.emulator.errors import BadRequestError, UnauthorizedError
from local.emulator.state import Agent, Job, State
from local.emulator.wire import Request, Response, Route

CHUNKS_MAX_SIZE_BYTES = 100 * 1024  # the agent splits logs into chunks of at most this
LOG_MAX_SIZE_BYTES = 1024 * 1024 * 1024
PING_INTERVAL_SECONDS = 10
JOB_STATUS_INTERVAL_SECONDS = 5  # how often the agent polls GET jobs/:id for a cancel
HEARTBEAT_INTERVAL_SECONDS = 60


class AgentApi:
    def __init__(self, state: State, cluster_token: str) -> None:
        self.state = state
        self.cluster_token = cluster_token

    def routes(self) -> list[Route]:
        job = ("v3", "jobs", ":id")
        return [
            Route("POST", ("v3", "register"), "agent-register", self.register),
            Route("GET", ("v3", "token"), "agent-token", self.token),
            Route("POST", ("v3", "connect"), "agent-connect", self.connect),
            Route("POST", ("v3", "disconnect"), "agent-disconnect", self.disconnect),
            Route("POST", ("v3", "heartbeat"), "agent-heartbeat", self.heartbeat),
            Route("GET", ("v3", "ping"), "agent-ping", self.ping),
            Route("PUT", (*job, "acquire"), "agent-acquire", self.acquire),
            Route("GET", job, "agent-job-state", self.job_state),
            Route("PUT", (*job, "start"), "agent-start", self.start),
            Route("POST", (*job, "chunks"), "agent-chunks", self.chunks),
            Route("PUT", (*job, "finish"), "agent-finish", self.finish),
        ]

    # ------------------------------------------------------------------- auth

    def _agent(self, request: Request) -> Agent:
        agent = self.state.agent_for_token(request.token or "")
        if agent is None:
            raise UnauthorizedError("Register first: this is not an agent access token")
        return agent

    def _job(self, request: Request) -> Job:
        return self.state.job_for_token(request.token or "", request.params["id"])

    # ----------------------------------------------------------------- agent

    def register(self, request: Request) -> Response:
        """The cluster token registers any agent; a JAT registers one bound to its job."""
        token = request.token or ""
        if token != self.cluster_token and not self.state.is_jat(token):
            raise UnauthorizedError("Invalid registration token")
        body = request.json_object(required=False)
        tags = body.get("meta_data") or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise BadRequestError("meta_data must be an array of strings")
        name = body.get("name")
        agent = self.state.register_agent(
            jat=None if token == self.cluster_token else token,
            name=name if isinstance(name, str) else "",
            tags=tags,
        )
        if agent.only_job:
            request.job_uuids.append(agent.only_job)
        return Response(
            200,
            {
                "id": agent.id,
                "name": agent.name,
                "access_token": agent.access_token,
                "endpoint": _endpoint(request),
                "request_headers": {},
                "ping_interval": PING_INTERVAL_SECONDS,
                "job_status_interval": JOB_STATUS_INTERVAL_SECONDS,
                "heartbeat_interval": HEARTBEAT_INTERVAL_SECONDS,
                "meta_data": agent.tags,
            },
        )

    def token(self, request: Request) -> Response:
        """`GET token`: who a cluster token belongs to (agent-stack-k8s start-up;
        docs/reference/stacks-api.md §6)."""
        if request.token != self.cluster_token:
            raise UnauthorizedError("Invalid token")
        queue = self.state.queues[self.state.behaviour.default_queue_key]
        return Response(
            200,
            {
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, self.cluster_token)),
                "description": "Stacks API emulator cluster token",
                "token_type": "cluster",
                "organization_slug": "local",
                "organization_uuid": self.state.organization_uuid,
                "cluster_uuid": self.state.cluster_uuid,
                "cluster_name": "local",
                "organization_queue_uuid": queue.id,
                "organization_queue_key": queue.key,
            },
        )

    def connect(self, request: Request) -> Response:
        agent = self.state.set_connection(self._agent(request), "connected")
        return Response(200, _agent_view(agent))

    def disconnect(self, request: Request) -> Response:
        agent = self.state.set_connection(self._agent(request), "disconnected")
        return Response(200, _agent_view(agent))

    def heartbeat(self, request: Request) -> Response:
        self._agent(request)
        body = request.json_object(required=False)
        return Response(
            200,
            {"sent_at": body.get("sent_at"), "received_at": iso(self.state.clock.now())},
        )

    def ping(self, request: Request) -> Response:
        agent = self._agent(request)
        action = "disconnect" if agent.connection_state == "disconnected" else "idle"
        return Response(200, {"action": action})

    # ------------------------------------------------------------------- jobs

    def acquire(self, request: Request) -> Response:
        agent = self._agent(request)
        job = self.state.acquire(agent, request.params["id"])
        return Response(200, self._job_payload(request, job, agent))

    def _job_payload(self, request: Request, job: Job, agent: Agent) -> dict[str, Any]:
        """Shaped like api.Job in buildkite/agent `api/jobs.go`."""
        env = {
            **job.env,
            "BUILDKITE_JOB_ID": job.id,
            "BUILDKITE_COMMAND": job.command,
            "BUILDKITE_AGENT_ID": agent.id,
            "BUILDKITE_AGENT_NAME": agent.name,
        }
        step: dict[str, Any] = {"command": job.command}
        if job.step.get("key"):
            step["key"] = job.step["key"]
        return {
            "id": job.id,
            "endpoint": _endpoint(request),
            "state": job.state,
            "env": env,
            "step": step,
            "chunks_max_size_bytes": CHUNKS_MAX_SIZE_BYTES,
            "chunks_interval_seconds": 1,
            "log_max_size_bytes": LOG_MAX_SIZE_BYTES,
            "token": job.job_token or "",
            "exit_status": "",
            "signal": "",
            "signal_reason": "",
            "started_at": "",
            "finished_at": "",
            "runnable_at": iso(job.scheduled_at),
            "chunks_failed_count": 0,
            "traceparent": "",
            "tracestate": "",
            "priority": job.priority,
        }

    def job_state(self, request: Request) -> Response:
        """What the agent polls every job_status_interval to notice a cancel."""
        return Response(200, {"state": self._job(request).state})

    def start(self, request: Request) -> Response:
        job = self.state.start_job(self._job(request))
        return Response(200, {"id": job.id, "state": job.state})

    def chunks(self, request: Request) -> Response:
        job = self._job(request)
        try:
            offset = int(request.arg("offset") or "0")
            int(request.arg("sequence") or "0")
        except ValueError as exc:
            raise BadRequestError("sequence and offset must be integers") from exc
        data = request.body
        if (request.header("content-encoding") or "").lower() == "gzip":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise BadRequestError("the chunk is not valid gzip") from exc
        self.state.append_chunk(job, offset, data)
        return Response(201, {})

    def finish(self, request: Request) -> Response:
        job = self._job(request)
        body = request.json_object(required=False)
        signal_reason = body.get("signal_reason")
        job = self.state.finish_by_agent(
            job,
            exit_status=_exit_status(body.get("exit_status")),
            signal_reason=signal_reason
            if isinstance(signal_reason, str) and signal_reason
            else None,
        )
        return Response(200, {"id": job.id, "state": job.state})


def _exit_status(value: object) -> int:
    """The agent sends the exit status as a string (`api.JobFinishRequest`); accept ints too."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return int(value)
        except ValueError as exc:
            raise BadRequestError("exit_status must be an integer") from exc
    return -1


def _endpoint(request: Request) -> str:
    """The agent follows `endpoint` for later calls, so answer with the address it used."""
    return f"http://{request.header('host') or 'localhost'}/v3"


def _agent_view(agent: Agent) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "connection_state": agent.connection_state}
