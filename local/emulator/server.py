"""The `Emulator`: one loopback HTTP server carrying the Stacks API, the Agent API slice and
the control API, plus the request pipeline every `/v3/` call goes through.

Pipeline order (docs/emulator-contract.md): route -> faults -> auth -> rate limit ->
handler -> RateLimit-* headers -> call log. Faults come first so a test can make even an
unauthenticated or throttled call fail the way a flaky network would.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

from local.emulator.agent_api import AgentApi
from local.emulator.behaviour import RATE_LIMITED, STACKS_ENDPOINTS, Behaviour, scope_of
from local.emulator.calls import CallLog
from local.emulator.clock import VirtualClock, iso
from local.emulator.control import ControlApi
from local.emulator.errors import EmulatorError
from local.emulator.faults import TOKEN_KINDS, Fault, FaultBook
from local.emulator.ratelimit import Decision, RateLimiter
from local.emulator.stacks_api import StacksApi
from local.emulator.state import State, TokenFault
from local.emulator.wire import Request, Response, Route, Router, error

# What a `malformed_json` fault answers with: JSON cut off mid-way, as a truncated
# response from a proxy would be.
MALFORMED_BODY = b'{"jobs": [{"id": "'

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmulatorConfig:
    token: str
    host: str = "127.0.0.1"
    port: int = 0
    behaviour: Behaviour = field(default_factory=Behaviour)


class Emulator:
    """Start with `start()` or `with Emulator(...) as emu:`; `port=0` picks a free port."""

    def __init__(
        self,
        token: str,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        behaviour: Behaviour | None = None,
        clock: VirtualClock | None = None,
    ) -> None:
        self.config = EmulatorConfig(
            token=token, host=host, port=port, behaviour=behaviour or Behaviour()
        )
        self.clock = clock or VirtualClock()
        self.state = State(self.clock, self.config.behaviour)
        self.faults = FaultBook()
        self.limiter = RateLimiter(self.clock, self.config.behaviour.rate_limits)
        self.calls = CallLog()
        self.api = Router(StacksApi(self.state).routes() + AgentApi(self.state, token).routes())
        self.control = Router(
            ControlApi(
                state=self.state,
                clock=self.clock,
                faults=self.faults,
                limiter=self.limiter,
                calls=self.calls,
                reset=self.reset,
            ).routes()
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> Emulator:
        return cls(config.token, config.port, config.host, behaviour=config.behaviour)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server((self.config.host, self.config.port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="stacks-api-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        host = self.config.host
        # Compares, binds nothing: the URL to call for a server bound to all interfaces.
        if host in ("", "0.0.0.0"):  # nosec
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    @property
    def base_url(self) -> str:
        """The Stacks API and Agent API base, like `https://agent.buildkite.com/v3/`."""
        return self.root_url + "v3/"

    @property
    def control_url(self) -> str:
        return self.root_url + "_emulator/"

    def reset(self) -> None:
        """Back to a fresh start: no jobs, stacks, faults or calls, clock and limits reset."""
        with self.state.lock:
            self.state.reset()
            self.faults.clear()
            self.calls.clear()
            self.clock.reset()
            self.limiter.reset()

    # ----------------------------------------------------------------- pipeline

    def handle(self, request: Request) -> Response | None:
        """Answer one request; None means drop the connection without an answer."""
        if request.segments[:1] == ["_emulator"]:
            return self._control(request)
        return self._api(request)

    def _control(self, request: Request) -> Response:
        try:
            route, request.params = self.control.match(request.method, request.segments)
            with self.state.lock:
                return route.handler(request)
        except EmulatorError as exc:
            return error(exc.status, exc.message, exc.headers)

    def _api(self, request: Request) -> Response | None:
        started = time.perf_counter()
        try:
            route, request.params = self.api.match(request.method, request.segments)
        except EmulatorError as exc:
            response = error(exc.status, exc.message, exc.headers)
            self._record(
                request=request,
                endpoint=None,
                stack_key=None,
                status=response.status,
                started=started,
                fault=None,
            )
            return response
        endpoint = route.endpoint
        stack_key = request.params.get("key") or self._register_key(request, endpoint)
        if "id" in request.params:
            request.job_uuids.append(request.params["id"])
        plan = self.faults.take(
            endpoint, request.method, stack_key, request.header("user-agent") or ""
        )
        if plan.delay_seconds:
            time.sleep(plan.delay_seconds)
        fault = plan.terminal
        if fault is not None and fault.kind == "drop":
            self._record(
                request=request,
                endpoint=endpoint,
                stack_key=stack_key,
                status=0,
                started=started,
                fault=fault,
            )
            return None
        if fault is not None and fault.kind == "status":
            response = _injected(fault)
            self._add_limit_headers(response, self._peek(request, endpoint, stack_key))
        else:
            if fault is not None and fault.kind in TOKEN_KINDS:
                request.shaping = TokenFault(fault.kind, fault.jobs, fault.seconds)
            response = self._serve(route, request, endpoint, stack_key)
            if fault is not None and fault.kind == "malformed_json":  # handled, answer mangled
                response.raw = MALFORMED_BODY
                response.status = 200 if response.status == 204 else response.status
        self._record(
            request=request,
            endpoint=endpoint,
            stack_key=stack_key,
            status=response.status,
            started=started,
            fault=fault,
        )
        return response

    def _serve(
        self, route: Route, request: Request, endpoint: str, stack_key: str | None
    ) -> Response:
        if endpoint in STACKS_ENDPOINTS and request.token != self.config.token:
            message = (
                "Invalid token"
                if request.header("authorization")
                else "Authorization header with a cluster agent token is required"
            )
            response = error(401, message)
            self._add_limit_headers(response, self._peek(request, endpoint, stack_key))
            return response
        decision = self.limiter.check(_limit_key(request, endpoint, stack_key), scope_of(endpoint))
        if decision is not None and not decision.allowed:
            response = Response(
                429,
                {
                    "message": RATE_LIMITED.format(reset=decision.reset),
                    "scope": decision.scope,
                    "limit": decision.limit,
                    "current": decision.current,
                    "reset": decision.reset,
                },
            )
            if self.config.behaviour.retry_after_on_429:
                response.headers["Retry-After"] = str(decision.reset)
        else:
            try:
                with self.state.lock:
                    response = route.handler(request)
            except EmulatorError as exc:
                response = error(exc.status, exc.message, exc.headers)
        self._add_limit_headers(response, decision)
        return response

    def _peek(self, request: Request, endpoint: str, stack_key: str | None) -> Decision | None:
        return self.limiter.peek(_limit_key(request, endpoint, stack_key), scope_of(endpoint))

    @staticmethod
    def _add_limit_headers(response: Response, decision: Decision | None) -> None:
        if decision is not None:
            response.headers.update(decision.headers())

    @staticmethod
    def _register_key(request: Request, endpoint: str) -> str | None:
        if endpoint != "register":
            return None
        try:
            body = request.json()
        except EmulatorError:
            return None
        key = body.get("key") if isinstance(body, dict) else None
        return key if isinstance(key, str) else None

    def _record(
        self,
        *,
        request: Request,
        endpoint: str | None,
        stack_key: str | None,
        status: int,
        started: float,
        fault: Fault | None,
    ) -> None:
        self.calls.record(
            method=request.method,
            path=request.path,
            query=request.query,
            endpoint=endpoint,
            stack_key=stack_key,
            status=status,
            at=iso(self.clock.now()),
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            job_uuids=list(dict.fromkeys(request.job_uuids)),
            fault=fault.kind if fault else None,
        )


def _limit_key(request: Request, endpoint: str, stack_key: str | None) -> str:
    """Stacks API windows are per stack key (docs/reference/stacks-api.md §2.1); Agent
    API ones per token."""
    if endpoint in STACKS_ENDPOINTS:
        return stack_key or ""
    return request.token or ""


def _injected(fault: Fault) -> Response:
    response = (
        Response(fault.status, raw=fault.body.encode())
        if fault.body is not None
        else error(fault.status, f"Injected fault: HTTP {fault.status}")
    )
    if fault.retry_after is not None:
        response.headers["Retry-After"] = fault.retry_after
    return response


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Go and Python clients expect
    # Headers and body leave in one write, and without Nagle's delay: otherwise every
    # keep-alive answer waits ~40 ms for the client's delayed ACK.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        request = Request(
            method=self.command,
            path=path,
            query=query,
            headers=dict(self.headers.items()),
            body=body,
        )
        try:
            response = self.server.emulator.handle(request)
        except Exception as exc:  # noqa: BLE001 - any bug, see below
            # A bug here must surface as a readable 500, not as a dropped connection that
            # a client under test would take for a network fault and retry.
            _log.exception("emulator error on %s %s", self.command, path)
            response = error(500, f"Emulator error: {type(exc).__name__}: {exc}")
        if response is None:
            self._drop()
            return
        payload = response.payload()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if response.status != 204:
            self.wfile.write(payload)

    def _read_chunked(self) -> bytes:
        """Go clients stream bodies of unknown length this way."""
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _drop(self) -> None:
        """Close without a byte of answer: the client sees a dropped connection."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the call log is the record, and test output stays readable."""
