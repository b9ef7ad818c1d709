"""The emulated Buildkite side: jobs, queues, stacks, reservations, agents, tokens.

Pure model, no HTTP: the API modules translate requests into these calls and render what
comes back, so the rules (who may reserve, finish or acquire what, and when) can be read in
one place and tested without sockets. Time comes only from the injected clock, which is
why reservation expiry is lazy: every public call first returns expired reservations to
`scheduled`, exactly as if the server had done it at the moment they expired.

One re-entrant lock guards everything; the HTTP layer holds it around a whole request so
a response is rendered from a consistent snapshot.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.emulator.behaviour import (
    JAT_EXPIRED,
    NOT_ELIGIBLE,
    NOT_ELIGIBLE_AT_REGISTRATION,
    Behaviour,
)
from local.emulator.clock import VirtualClock, iso, parse_iso
from local.emulator.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    LockedError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)

# Buildkite job states the emulator moves through (docs/reference/stacks-api.md §3.6).
SCHEDULED = "scheduled"
RESERVED = "reserved"
ACCEPTED = "accepted"
RUNNING = "running"
FINISHED = "finished"
CANCELING = "canceling"
CANCELED = "canceled"
AGENT_HELD = ("assigned", ACCEPTED, RUNNING)

STACK_TYPES = ("kubernetes", "elastic", "custom")  # docs/reference/stacks-api.md §3.1, §4
STACK_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")  # docs/reference/stacks-api.md §1
STACK_KEY_MAX_BYTES = 80  # docs/reference/stacks-api.md §1
METADATA_MAX_KEYS = 100  # docs/reference/stacks-api.md §3.1
METADATA_KEY_MAX_CHARS = 64  # docs/reference/stacks-api.md §3.1
METADATA_VALUE_MAX_CHARS = 256  # docs/reference/stacks-api.md §3.1


@dataclass
class Reservation:
    stack_key: str
    expires_at: datetime


@dataclass(frozen=True)
class Transition:
    state: str
    at: datetime
    by: str


@dataclass(frozen=True)
class Notification:
    detail: str
    timestamp: datetime
    stack_key: str


@dataclass
class Job:
    id: str
    queue_key: str
    priority: int
    agent_query_rules: list[str]
    env: dict[str, str]
    command: str
    pipeline: dict[str, Any]
    build: dict[str, Any]
    step: dict[str, Any]
    scheduled_at: datetime
    created_at: datetime
    seq: int
    locked: bool = False
    state: str = SCHEDULED
    reservation: Reservation | None = None
    exit_status: int | None = None
    finish_detail: str | None = None
    signal_reason: str | None = None
    finished_by: str | None = None
    finished_at: datetime | None = None
    started_at: datetime | None = None
    agent: str | None = None
    job_token: str | None = None
    notifications: list[Notification] = field(default_factory=list)
    history: list[Transition] = field(default_factory=list)
    log_chunks: dict[int, bytes] = field(default_factory=dict)

    @property
    def log(self) -> bytes:
        """The job log as uploaded, chunks joined by offset."""
        return b"".join(self.log_chunks[offset] for offset in sorted(self.log_chunks))


@dataclass
class Queue:
    key: str
    id: str
    dispatch_paused: bool = False


@dataclass
class Stack:
    id: str
    key: str
    type: str
    queue_key: str
    metadata: dict[str, str]
    last_connected_on: datetime
    state: str = "connected"


@dataclass
class Agent:
    id: str
    name: str
    access_token: str
    tags: list[str]
    only_job: str | None
    connection_state: str = "registered"
    # Registered with a JAT: its session acquires nothing once the token has expired.
    jat_expires_at: datetime | None = None


@dataclass(frozen=True)
class AcquisitionToken:
    token: str
    job_id: str
    stack_key: str
    expires_at: datetime
    fault: str | None = None  # the token fault that shaped it (short_lifetime), if any


# The stack a `reservation_lost` token fault hands a reservation to (local.emulator.faults).
OTHER_STACK_KEY = "another-stack"


@dataclass(frozen=True)
class TokenFault:
    """A fault shaping one token answer (local.emulator.faults): what, to how many jobs."""

    kind: str
    jobs: int
    seconds: float


@dataclass(frozen=True)
class ScheduledPage:
    jobs: list[Job]
    has_next_page: bool
    end_cursor: str | None
    queue: Queue


class State:
    """Everything the emulated Buildkite knows. All public methods are thread-safe."""

    def __init__(self, clock: VirtualClock, behaviour: Behaviour | None = None) -> None:
        self.clock = clock
        self.behaviour = behaviour or Behaviour()
        self.lock = threading.RLock()
        self.organization_uuid = str(uuid.uuid4())
        self.cluster_uuid = str(uuid.uuid4())
        self.jobs: dict[str, Job] = {}
        self.queues: dict[str, Queue] = {}
        self.stacks: dict[str, Stack] = {}
        self.agents: dict[str, Agent] = {}
        self._agents_by_token: dict[str, Agent] = {}
        self._jats: dict[str, AcquisitionToken] = {}
        # Jobs a token fault left without a token: (job uuid, fault kind).
        self.withheld_jats: list[tuple[str, str]] = []
        # Jobs a token fault has shaped an answer for: each meets one at most, or a run's
        # last jobs, the only ones still asking, would meet every fault (found by the soak).
        self._token_struck: set[str] = set()
        self._seq = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.queues.clear()
            self.stacks.clear()
            self.agents.clear()
            self._agents_by_token.clear()
            self._jats.clear()
            self.withheld_jats.clear()
            self._token_struck.clear()
            self._seq = 0
            self._queue(self.behaviour.default_queue_key)

    # ----------------------------------------------------------------- time and queues

    def tick(self) -> datetime:
        """Now, after returning every expired reservation to `scheduled`
        (docs/reference/stacks-api.md §3.4)."""
        with self.lock:
            now = self.clock.now()
            for job in self.jobs.values():
                if (
                    job.state == RESERVED
                    and job.reservation is not None
                    and job.reservation.expires_at <= now
                ):
                    # history shows when it lapsed, not when someone next looked
                    lapsed_at = job.reservation.expires_at
                    job.reservation = None
                    self._move(job, SCHEDULED, "expiry", lapsed_at)
            return now

    def resolve_queue(self, key: str) -> str:
        """Map the default-queue keywords (docs/reference/stacks-api.md §8.2) to the default
        queue's key."""
        return (
            self.behaviour.default_queue_key if key in self.behaviour.default_queue_aliases else key
        )

    def _queue(self, key: str) -> Queue:
        key = self.resolve_queue(key)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = Queue(key=key, id=str(uuid.uuid4()))
        return queue

    def pause_queue(self, key: str, *, paused: bool) -> Queue:
        with self.lock:
            queue = self._queue(key)
            queue.dispatch_paused = paused
            return queue

    # ------------------------------------------------------------------------ jobs

    def create_jobs(self, specs: Sequence[Mapping[str, Any]]) -> list[Job]:
        """Add jobs from control-API specs; all or nothing, so a bad spec adds none."""
        with self.lock:
            now = self.tick()
            built: list[Job] = []
            ids: set[str] = set()
            for index, spec in enumerate(specs):
                job = self._build_job(spec, now, index)
                if job.id in self.jobs or job.id in ids:
                    raise ConflictError(f"job {job.id} already exists")
                ids.add(job.id)
                built.append(job)
            for job in built:
                self._seq += 1
                job.seq = self._seq
                self._queue(job.queue_key)
                self.jobs[job.id] = job
            return built

    def _build_job(self, spec: Mapping[str, Any], now: datetime, index: int) -> Job:
        where = f"jobs[{index}]"
        if not isinstance(spec, Mapping):
            raise BadRequestError(f"{where} must be an object")
        job_id = _opt(spec, "id", str, where) or str(uuid.uuid4())
        queue_key = self.resolve_queue(
            _opt(spec, "queue_key", str, where) or self.behaviour.default_queue_key
        )
        rules = _opt(spec, "agent_query_rules", list, where)
        if rules is not None and not all(isinstance(rule, str) for rule in rules):
            raise BadRequestError(f"{where}.agent_query_rules must be a list of strings")
        env = _opt(spec, "env", dict, where)
        if env is not None and not all(isinstance(v, str) for v in env.values()):
            raise BadRequestError(f"{where}.env must map strings to strings")
        scheduled_at = _opt(spec, "scheduled_at", str, where)
        priority = _opt(spec, "priority", int, where)
        job = Job(
            id=job_id,
            queue_key=queue_key,
            priority=0 if priority is None else priority,
            agent_query_rules=list(rules) if rules is not None else [f"queue={queue_key}"],
            env={},
            command=_opt(spec, "command", str, where) or "echo hello",
            pipeline=_pipeline(_opt(spec, "pipeline", dict, where) or {}),
            build={
                "number": 1,
                "branch": "main",
                "uuid": str(uuid.uuid4()),
                **(_opt(spec, "build", dict, where) or {}),
            },
            step={"key": None, **(_opt(spec, "step", dict, where) or {})},
            scheduled_at=_parse_time(scheduled_at, f"{where}.scheduled_at")
            if scheduled_at
            else now,
            created_at=now,
            seq=0,
            locked=bool(_opt(spec, "locked", bool, where)),
        )
        job.env = dict(env) if env is not None else default_env(job)
        job.history.append(Transition(SCHEDULED, now, "control"))
        return job

    def job(self, job_id: str) -> Job:
        with self.lock:
            self.tick()
            job = self.jobs.get(job_id)
            if job is None:
                raise NotFoundError(f"No job found with id {job_id}")
            return job

    def list_jobs(self, *, state: str | None = None, queue_key: str | None = None) -> list[Job]:
        with self.lock:
            self.tick()
            queue = self.resolve_queue(queue_key) if queue_key else None
            return [
                job
                for job in sorted(self.jobs.values(), key=lambda j: j.seq)
                if (state is None or job.state == state)
                and (queue is None or job.queue_key == queue)
            ]

    def cancel(self, job_id: str) -> Job:
        """Cancel as a user would: at once if no agent has it, else ask the agent to stop."""
        with self.lock:
            job = self.job(job_id)
            now = self.clock.now()
            if job.state in (SCHEDULED, RESERVED):
                job.reservation = None
                job.finished_at = now
                self._move(job, CANCELED, "control", now)
            elif job.state in AGENT_HELD:
                self._move(job, CANCELING, "control", now)
            elif job.state != CANCELING:
                raise ValidationError(f"Job {job_id} can't be canceled: it is {job.state}")
            return job

    def set_locked(self, job_id: str, *, locked: bool) -> Job:
        with self.lock:
            job = self.job(job_id)
            job.locked = locked
            return job

    def _move(self, job: Job, state: str, by: str, at: datetime) -> None:
        job.state = state
        job.history.append(Transition(state, at, by))

    # ---------------------------------------------------------------------- stacks

    def register_stack(
        self, *, key: object, type_: object, queue_key: object, metadata: object
    ) -> tuple[Stack, bool]:
        """Create or update a stack (docs/reference/stacks-api.md §3.1); returns (stack,
        created)."""
        with self.lock:
            now = self.tick()
            valid_key = _validate_stack_key(key)
            if not isinstance(type_, str) or type_ not in STACK_TYPES:
                raise ValidationError(f"type must be one of {', '.join(STACK_TYPES)}")
            if not isinstance(queue_key, str) or not queue_key:
                raise ValidationError("queue_key is required")
            valid_metadata = _validate_metadata(metadata)
            queue = self._queue(queue_key)
            stack = self.stacks.get(valid_key)
            if stack is None:
                limit = self.behaviour.max_stacks
                if limit is not None and len(self.stacks) >= limit:
                    raise ForbiddenError("The stack limit for this organization has been reached")
                stack = self.stacks[valid_key] = Stack(
                    id=str(uuid.uuid4()),
                    key=valid_key,
                    type=type_,
                    queue_key=queue.key,
                    metadata=valid_metadata,
                    last_connected_on=now,
                )
                return stack, True
            stack.type = type_
            stack.queue_key = queue.key
            stack.metadata = valid_metadata
            stack.state = "connected"
            stack.last_connected_on = now
            return stack, False

    def stack(self, key: str) -> Stack:
        with self.lock:
            stack = self.stacks.get(key)
            if stack is None:
                raise NotFoundError(f"No stack found with key {key!r}")
            return stack

    def deregister_stack(self, key: str) -> None:
        with self.lock:
            stack = self.stack(key)
            if self.behaviour.deregister_forgets_stack:
                del self.stacks[key]
            else:
                stack.state = "disconnected"

    # ------------------------------------------------------------------ Stacks API

    def list_scheduled(
        self, stack_key: str, queue_key: str, *, limit: int, after: str | None
    ) -> ScheduledPage:
        """Keyset pagination by (scheduled_at, creation order): not a snapshot
        (docs/reference/stacks-api.md §3.3)."""
        with self.lock:
            now = self.tick()
            stack = self.stack(stack_key)
            key = self.resolve_queue(queue_key)
            queue = self.queues.get(key)
            if queue is None:
                if self.behaviour.unknown_queue_is_404:
                    raise NotFoundError(f"No queue found with key {queue_key!r}")
                queue = self._queue(key)
            stack.last_connected_on = now
            start = _decode_cursor(after) if after else None
            candidates = sorted(
                (j for j in self.jobs.values() if j.state == SCHEDULED and j.queue_key == key),
                key=_order,
            )
            if start is not None:
                candidates = [j for j in candidates if _order(j) > start]
            page = candidates[:limit]
            return ScheduledPage(
                jobs=page,
                has_next_page=len(candidates) > len(page),
                end_cursor=_encode_cursor(page[-1]) if page else None,
                queue=queue,
            )

    def reserve(
        self, stack_key: str, job_ids: Sequence[str], expiry_seconds: int | None
    ) -> tuple[list[str], list[str]]:
        """Reserve or extend (docs/reference/stacks-api.md §3.4); returns (reserved,
        not_reserved)."""
        with self.lock:
            now = self.tick()
            self.stack(stack_key)
            seconds = _in_range(
                expiry_seconds,
                self.behaviour.default_reservation_seconds,
                self.behaviour.min_reservation_seconds,
                self.behaviour.max_reservation_seconds,
                "reservation_expiry_seconds",
            )
            expires_at = now + timedelta(seconds=seconds)
            reserved: list[str] = []
            not_reserved: list[str] = []
            for job_id in _unique(job_ids):
                job = self.jobs.get(job_id)
                if job is None or not self._reservable(job, stack_key):
                    not_reserved.append(job_id)
                    continue
                if job.state == SCHEDULED:
                    job.reservation = Reservation(stack_key, expires_at)
                    self._move(job, RESERVED, f"stack:{stack_key}", now)
                else:
                    job.reservation = Reservation(stack_key, expires_at)
                reserved.append(job_id)
            return reserved, not_reserved

    def _reservable(self, job: Job, stack_key: str) -> bool:
        if not self.behaviour.reserve_when_paused and self._queue(job.queue_key).dispatch_paused:
            return False
        if job.state == SCHEDULED:
            return True
        return (
            job.state == RESERVED
            and job.reservation is not None
            and job.reservation.stack_key == stack_key
        )

    def show_job(self, stack_key: str, job_id: str) -> Job:
        with self.lock:
            self.stack(stack_key)
            job = self.job(job_id)
            if not self.behaviour.show_job_any_state and job.state not in (SCHEDULED, RESERVED):
                raise NotFoundError(f"No job found with id {job_id}")
            return job

    def job_states(self, stack_key: str, job_ids: Iterable[str]) -> dict[str, str]:
        """Known jobs only; unknown UUIDs are left out (docs/reference/stacks-api.md §3.6, a
        choice)."""
        with self.lock:
            self.tick()
            self.stack(stack_key)
            return {i: self.jobs[i].state for i in _unique(job_ids) if i in self.jobs}

    def finish_by_stack(
        self,
        stack_key: str,
        job_id: str,
        *,
        exit_status: int,
        detail: object,
        signal_reason: str | None,
    ) -> Job:
        """The stack gives up on (or completed) a job no agent took
        (docs/reference/stacks-api.md §3.7)."""
        with self.lock:
            now = self.tick()
            self.stack(stack_key)
            job = self.job(job_id)
            if not isinstance(detail, str) or not detail:
                raise ValidationError("detail is required")
            limit = self.behaviour.finish_detail_max_bytes
            if len(detail.encode()) > limit:
                raise ValidationError(f"detail exceeds its length limit of {limit} bytes")
            if job.state not in self.behaviour.finishable_states:
                raise ValidationError(f"Job {job_id} can't be finished: it is {job.state}")
            if (
                self.behaviour.finish_requires_own_reservation
                and job.reservation is not None
                and job.reservation.stack_key != stack_key
            ):
                raise ValidationError(f"Job {job_id} is reserved by another stack")
            job.reservation = None
            job.exit_status = exit_status
            job.finish_detail = detail
            job.signal_reason = signal_reason
            job.finished_by = "stack"
            job.finished_at = now
            self._move(job, FINISHED, f"stack:{stack_key}", now)
            return job

    def add_notifications(self, stack_key: str, items: Sequence[object]) -> list[dict[str, Any]]:
        """Create the valid ones, group the rest by error (docs/reference/stacks-api.md §3.8)."""
        with self.lock:
            now = self.tick()
            self.stack(stack_key)
            errors: dict[str, list[int]] = {}
            for index, item in enumerate(items):
                error = self._add_notification(stack_key, item, now)
                if error is not None:
                    errors.setdefault(error, []).append(index)
            return [{"error": error, "indexes": indexes} for error, indexes in errors.items()]

    def _add_notification(self, stack_key: str, item: object, now: datetime) -> str | None:
        """Create one notification, or say why not (the docs' error texts where known)."""
        checked = self._notification_fields(item)
        if isinstance(checked, str):
            return checked
        job_id, detail, raw_timestamp = checked
        job = self.jobs.get(job_id)
        if job is None:
            return "job not found"
        timestamp = self._notification_time(job, raw_timestamp, now)
        if isinstance(timestamp, str):
            return timestamp
        if len(job.notifications) >= self.behaviour.notifications_per_job:
            return "job stack notification count exceeded"
        job.notifications.append(Notification(detail, timestamp, stack_key))
        return None

    def _notification_fields(self, item: object) -> tuple[str, str, object] | str:
        if not isinstance(item, dict):
            return "notification must be an object"
        job_id = item.get("job_uuid")
        detail = item.get("detail")
        if not isinstance(job_id, str) or not job_id:
            return "job_uuid is required"
        if not isinstance(detail, str) or not detail:
            return "detail is required"
        limit = self.behaviour.notification_detail_max_chars
        if len(detail) > limit:
            return f"detail exceeds its length limit of {limit}"
        return job_id, detail, item.get("timestamp")

    def _notification_time(self, job: Job, raw: object, now: datetime) -> datetime | str:
        b = self.behaviour
        finished_long_ago = job.finished_at is not None and (
            (now - job.finished_at).total_seconds() > b.notification_after_finish_seconds
        )
        if raw is None:
            return "job finished too long ago" if finished_long_ago else now
        try:
            timestamp = parse_iso(raw) if isinstance(raw, str) else None
        except ValueError:
            timestamp = None
        if timestamp is None:
            return "timestamp is invalid"
        if timestamp > now + timedelta(seconds=b.notification_future_tolerance_seconds):
            return "timestamp cannot be in the future"
        if timestamp < job.created_at:
            return "timestamp cannot be before the job was created"
        return "job finished too long ago" if finished_long_ago else timestamp

    def issue_jats(
        self,
        stack_key: str,
        job_ids: Sequence[str],
        lifetime_seconds: int | None,
        fault: TokenFault | None = None,
    ) -> tuple[list[AcquisitionToken], list[str]]:
        """Tokens only for jobs this stack holds reserved (docs/reference/stacks-api.md §3.9,
        a choice); ``fault`` shapes the answer for the first ``fault.jobs`` of them that no
        token fault has struck before."""
        with self.lock:
            now = self.tick()
            self.stack(stack_key)
            b = self.behaviour
            seconds = _in_range(
                lifetime_seconds,
                b.default_jat_lifetime_seconds,
                b.min_jat_lifetime_seconds,
                b.max_jat_lifetime_seconds,
                "token_lifetime_seconds",
            )
            issued: list[AcquisitionToken] = []
            not_issued: list[str] = []
            shaped = 0
            fault_seconds = timedelta(seconds=fault.seconds if fault is not None else 0.0)
            for job_id in _unique(job_ids):
                job = self.jobs.get(job_id)
                if job is None or job.reservation is None or job.reservation.stack_key != stack_key:
                    not_issued.append(job_id)
                    continue
                kind = None
                if fault is not None and shaped < fault.jobs and job_id not in self._token_struck:
                    kind = fault.kind
                if kind is not None:
                    shaped += 1
                    self._token_struck.add(job_id)
                expires_at = min(now + timedelta(seconds=seconds), job.reservation.expires_at)
                if kind == "reservation_lost":
                    # Lapsed and reserved by another stack in the same instant.
                    job.reservation = Reservation(OTHER_STACK_KEY, now + fault_seconds)
                    self._move(job, RESERVED, f"stack:{OTHER_STACK_KEY}", now)
                if kind in ("not_issued", "reservation_lost"):
                    self.withheld_jats.append((job_id, str(kind)))
                    not_issued.append(job_id)
                    continue
                if kind == "short_lifetime":
                    expires_at = now + fault_seconds
                token = AcquisitionToken(
                    token="bkjat_" + secrets.token_hex(20),
                    job_id=job_id,
                    stack_key=stack_key,
                    expires_at=expires_at,
                    fault=kind,
                )
                self._jats[token.token] = token
                issued.append(token)
            return issued, not_issued

    # ------------------------------------------------------------------- Agent API

    def register_agent(self, *, jat: str | None, name: str, tags: list[str]) -> Agent:
        """Register with the cluster token, or with a JAT that binds the agent to one job."""
        with self.lock:
            now = self.tick()
            only_job: str | None = None
            expires_at: datetime | None = None
            if jat is not None:
                token = self._jats.get(jat)
                if token is None:
                    raise UnauthorizedError("Invalid registration token")
                if token.expires_at <= now:
                    raise UnauthorizedError(JAT_EXPIRED)
                job = self.jobs.get(token.job_id)
                if job is None or not self._acquirable(job):
                    raise ValidationError(NOT_ELIGIBLE_AT_REGISTRATION)
                only_job, expires_at = token.job_id, token.expires_at
            agent = Agent(
                id=str(uuid.uuid4()),
                name=name or f"local-agent-{len(self.agents) + 1}",
                access_token="bkaa_" + secrets.token_hex(20),
                tags=tags,
                only_job=only_job,
                jat_expires_at=expires_at,
            )
            self.agents[agent.id] = agent
            self._agents_by_token[agent.access_token] = agent
            return agent

    def agent_for_token(self, token: str) -> Agent | None:
        with self.lock:
            return self._agents_by_token.get(token)

    def issued_jats(self) -> list[dict[str, str | None]]:
        with self.lock:
            return [
                {
                    "job_uuid": t.job_id,
                    "token": t.token,
                    "expires_at": t.expires_at.isoformat(),
                    "fault": t.fault,
                }
                for t in self._jats.values()
            ]

    def is_jat(self, token: str) -> bool:
        with self.lock:
            return token in self._jats

    def set_connection(self, agent: Agent, connection_state: str) -> Agent:
        with self.lock:
            agent.connection_state = connection_state
            return agent

    def _acquirable(self, job: Job) -> bool:
        if job.state == SCHEDULED:
            return True
        return job.state == RESERVED and self.behaviour.acquire_reserved_by_any_stack

    def acquire(self, agent: Agent, job_id: str) -> Job:
        """`PUT jobs/:id/acquire` (docs/reference/stacks-api.md §7): 200, 422 not eligible,
        423 locked."""
        with self.lock:
            now = self.tick()
            job = self.job(job_id)
            if agent.jat_expires_at is not None and agent.jat_expires_at <= now:
                # A choice: the session dies with its token (docs/emulator.md).
                raise UnauthorizedError(JAT_EXPIRED)
            if agent.only_job is not None and agent.only_job != job_id:
                raise ValidationError(f"This agent may only acquire job {agent.only_job}")
            if (
                job.agent == agent.id
                and job.state in AGENT_HELD
                and self.behaviour.acquire_idempotent_for_holder
            ):
                return job
            if not self._acquirable(job):
                raise ValidationError(NOT_ELIGIBLE.format(id=job_id))
            if job.locked:
                raise LockedError(
                    f"Job {job_id} is locked",
                    headers={"Retry-After": str(self.behaviour.locked_retry_after_seconds)},
                )
            job.reservation = None
            job.agent = agent.id
            job.job_token = "bkaj_" + secrets.token_hex(20)
            self._move(job, ACCEPTED, f"agent:{agent.id}", now)
            return job

    def job_for_token(self, token: str, job_id: str) -> Job:
        """The job, if `token` is its job token or the access token of the agent holding it."""
        with self.lock:
            job = self.job(job_id)
            agent = self._agents_by_token.get(token)
            if token == job.job_token or (agent is not None and agent.id == job.agent):
                return job
            raise UnauthorizedError("This token may not act on that job")

    def start_job(self, job: Job) -> Job:
        with self.lock:
            now = self.tick()
            if job.state == ACCEPTED:
                job.started_at = now
                self._move(job, RUNNING, f"agent:{job.agent}", now)
            elif job.state not in (RUNNING, CANCELING):
                raise ValidationError(f"Job {job.id} can't be started: it is {job.state}")
            return job

    def append_chunk(self, job: Job, offset: int, data: bytes) -> None:
        with self.lock:
            job.log_chunks[offset] = data

    def finish_by_agent(self, job: Job, *, exit_status: int, signal_reason: str | None) -> Job:
        """Agent finish: `finished`, or `canceled` when a cancel was pending."""
        with self.lock:
            now = self.tick()
            if job.state in (FINISHED, CANCELED) and job.finished_by == "agent":
                return job  # a retried finish after a lost response
            if job.state in (ACCEPTED, RUNNING):
                target = FINISHED
            elif job.state == CANCELING:
                target = CANCELED
            else:
                raise ValidationError(f"Job {job.id} can't be finished: it is {job.state}")
            job.exit_status = exit_status
            job.signal_reason = signal_reason
            job.finished_by = "agent"
            job.finished_at = now
            self._move(job, target, f"agent:{job.agent}", now)
            return job


def default_env(job: Job) -> dict[str, str]:
    """The BUILDKITE_* basics a stack and an agent read from a job
    (docs/reference/stacks-api.md §3.5)."""
    env = {
        "BUILDKITE": "true",
        "CI": "true",
        "BUILDKITE_JOB_ID": job.id,
        "BUILDKITE_COMMAND": job.command,
        "BUILDKITE_ORGANIZATION_SLUG": "local",
        "BUILDKITE_PIPELINE_SLUG": str(job.pipeline.get("slug") or ""),
        "BUILDKITE_PIPELINE_ID": str(job.pipeline.get("uuid") or ""),
        "BUILDKITE_BUILD_ID": str(job.build.get("uuid") or ""),
        "BUILDKITE_BUILD_NUMBER": str(job.build.get("number") or ""),
        "BUILDKITE_BRANCH": str(job.build.get("branch") or ""),
        "BUILDKITE_COMMIT": "HEAD",
        "BUILDKITE_AGENT_META_DATA_QUEUE": job.queue_key,
        "BUILDKITE_BUILD_URL": (
            f"http://buildkite.localhost/local/{job.pipeline.get('slug')}/builds/"
            f"{job.build.get('number')}"
        ),
    }
    if job.step.get("key"):
        env["BUILDKITE_STEP_KEY"] = str(job.step["key"])
    return env


def _opt(spec: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRequestError(f"{where}.{name} must be of type {kind.__name__}")
    return value


def _parse_time(text: str, where: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise BadRequestError(f"{where} is not an ISO-8601 timestamp") from exc


def _in_range(value: int | None, default: int, low: int, high: int, name: str) -> int:
    if value is None:
        return default
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low} and {high}")
    return value


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _order(job: Job) -> tuple[str, int]:
    return (iso(job.scheduled_at), job.seq)


def _encode_cursor(job: Job) -> str:
    raw = json.dumps(list(_order(job)), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[str, int]:
    """Accept either base64 alphabet: a `+` may arrive as a space through a query string."""
    text = cursor.strip().replace(" ", "+").replace("+", "-").replace("/", "_")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError("after is not a valid cursor") from exc
    match decoded:
        case [str(moment), int(seq)]:
            return moment, seq
        case _:
            raise BadRequestError("after is not a valid cursor")


def _validate_stack_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ValidationError("key is required")
    if len(key.encode()) > STACK_KEY_MAX_BYTES:
        raise ValidationError(f"key is longer than {STACK_KEY_MAX_BYTES} bytes")
    if not STACK_KEY_RE.fullmatch(key):
        raise ValidationError("key may only contain letters, digits, '_' and '-'")
    return key


def _validate_metadata(metadata: object) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise ValidationError("metadata is required and must be an object")
    if len(metadata) > METADATA_MAX_KEYS:
        raise ValidationError(f"metadata may have at most {METADATA_MAX_KEYS} keys")
    for name, value in metadata.items():
        if len(name) > METADATA_KEY_MAX_CHARS:
            raise ValidationError(f"metadata key {name[:20]!r}... exceeds {METADATA_KEY_MAX_CHARS}")
        if not isinstance(value, str):
            raise ValidationError(f"metadata value for {name!r} must be a string")
        if len(value) > METADATA_VALUE_MAX_CHARS:
            raise ValidationError(
                f"metadata value for {name!r} exceeds {METADATA_VALUE_MAX_CHARS} characters"
            )
    return dict(metadata)


def _pipeline(given: dict[str, Any]) -> dict[str, Any]:
    """A pipeline's uuid is the pipeline's, not the job's: every job of one slug gets the
    same one (derived from the slug) unless the spec names it, as Buildkite's listing gives
    the pipeline's uuid on each job (docs/reference/stacks-api.md §3.3)."""
    pipeline = {"slug": "local-pipeline", **given}
    pipeline.setdefault("uuid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"pipeline:{pipeline['slug']}")))
    return pipeline
