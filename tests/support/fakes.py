"""In-memory fakes of the stack's own ports (never of boto3 or the HTTP client)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from fargate_stack.domain.launch import LaunchSpec
from fargate_stack.domain.starting_tasks import LaunchedTask
from fargate_stack.domain.step_image import ImageReference
from fargate_stack.errors import AlreadyLaunchedError, JobGoneError, TransientError
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.ports import SendResult, StartedTask

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@dataclass
class Pipeline:
    uuid: str | None = None


@dataclass
class Job:
    id: str
    priority: int
    scheduled_at: datetime
    agent_query_rules: list[str]
    pipeline: Pipeline = field(default_factory=Pipeline)


def job(
    priority: int = 0, rules: list[str] | None = None, age: int = 0, pipeline: str | None = None
) -> Job:
    return Job(
        id=str(uuid.uuid4()),
        priority=priority,
        scheduled_at=T0 - timedelta(seconds=age),
        agent_query_rules=rules if rules is not None else ["queue=fargate"],
        pipeline=Pipeline(pipeline),
    )


@dataclass
class Queue:
    dispatch_paused: bool = False


@dataclass
class Page:
    jobs: list[Job]
    cluster_queue: Queue


@dataclass
class Reserved:
    reserved: list[str]
    not_reserved: list[str]


@dataclass
class JobData:
    id: str
    env: dict[str, str]
    command: str


@dataclass
class States:
    states: dict[str, str]


@dataclass
class FakeStacksApi:
    pages: list[list[Job]] = field(default_factory=list)
    paused: bool = False
    refuse: set[str] = field(default_factory=set)
    reserve_calls: list[list[str]] = field(default_factory=list)
    registered: list[dict[str, object]] = field(default_factory=list)
    # The next N reserve calls reserve on "Buildkite's side", then lose the answer.
    lose_reserve_answers: int = 0

    def register_stack(
        self, *, key: str, type: str, queue_key: str, metadata: Mapping[str, str]
    ) -> object:
        self.registered.append({"key": key, "type": type, "queue_key": queue_key})
        return None

    def iter_scheduled_jobs(
        self, *, stack_key: str, queue_key: str, page_size: int | None, max_pages: int | None
    ) -> Iterator[Page]:
        for jobs in self.pages[: max_pages or None]:
            yield Page(jobs=jobs, cluster_queue=Queue(self.paused))

    def batch_reserve_jobs(
        self, *, stack_key: str, job_uuids: Sequence[str], reservation_expiry_seconds: int | None
    ) -> Reserved:
        self.reserve_calls.append(list(job_uuids))
        if self.lose_reserve_answers:
            self.lose_reserve_answers -= 1
            raise TransientError("PUT .../batch-reserve: ConnectionError: connection reset")
        return Reserved(
            reserved=[u for u in job_uuids if u not in self.refuse],
            not_reserved=[u for u in job_uuids if u in self.refuse],
        )

    jobs_data: dict[str, JobData] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    failed: dict[str, tuple[str, int]] = field(default_factory=dict)
    notifications: list[tuple[str, str]] = field(default_factory=list)
    notify_error: Exception | None = None
    notification_requests: int = 0
    states_requests: int = 0

    def get_job(self, *, stack_key: str, job_uuid: str) -> JobData:
        if job_uuid not in self.jobs_data:
            raise JobGoneError(f"job {job_uuid} not found")
        return self.jobs_data[job_uuid]

    def get_job_states(self, *, stack_key: str, job_uuids: Sequence[str]) -> States:
        self.states_requests += 1
        return States({u: self.states[u] for u in job_uuids if u in self.states})

    def fail_job(
        self, *, stack_key: str, job_uuid: str, detail: str, exit_status: int = -1
    ) -> None:
        assert job_uuid not in self.failed, "a job is finished at most once"
        self.failed[job_uuid] = (detail, exit_status)

    def create_stack_notifications(
        self, *, stack_key: str, notifications: Sequence[Mapping[str, str]]
    ) -> None:
        self.notification_requests += 1
        if self.notify_error:
            raise self.notify_error
        self.notifications += [(n["job_uuid"], n["detail"]) for n in notifications]


@dataclass
class FakeLaunchQueue:
    sent: list[LaunchMessage] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    waiting: int = 0

    def send(self, messages: Sequence[LaunchMessage]) -> SendResult:
        result = SendResult()
        for m in messages:
            if str(m.job_uuid) in self.fail:
                result.failed[str(m.job_uuid)] = "InternalError"
            else:
                self.sent.append(m)
                result.sent.append(str(m.job_uuid))
        return result

    def depth(self) -> int:
        return self.waiting


@dataclass
class FakeTasks:
    """ECS as the launcher sees it, client tokens included: the same token and request
    within 24 h answers the first task (with its creation time); the same token with a
    different request is a conflict naming that task (docs/reference/aws.md §B.2)."""

    running: int = 0
    launched: list[LaunchSpec] = field(default_factory=list)
    # errors raised by the next run() calls, in order
    errors: list[Exception] = field(default_factory=list)
    clock: FakeClock | None = None
    tokens: dict[str, tuple[dict[str, object], StartedTask]] = field(default_factory=dict)

    def run(self, spec: LaunchSpec) -> StartedTask:
        if self.errors:
            raise self.errors.pop(0)
        request = spec.to_run_task_kwargs()
        token = str(request.pop("clientToken"))
        if token in self.tokens:
            first_request, first_task = self.tokens[token]
            if first_request != request:
                raise AlreadyLaunchedError(first_task.arn)
            return first_task
        self.launched.append(spec)
        arn = f"arn:aws:ecs:us-east-1:123456789012:task/bk/t{len(self.launched)}"
        task = StartedTask(arn, self.clock.current if self.clock else None)
        self.tokens[token] = (request, task)
        return task

    def count_in_flight(self, *, cluster: str, started_by: str) -> int:
        return self.running


@dataclass
class FakeFallbacks:
    marked: set[str] = field(default_factory=set)
    reads: int = 0

    def record_fallback(self, job_uuid: str) -> None:
        self.marked.add(job_uuid)

    def fell_back(self, job_uuid: str) -> bool:
        self.reads += 1
        return job_uuid in self.marked


@dataclass
class FakeClock:
    current: datetime = T0
    mono: float = 0.0
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += seconds
        self.current += timedelta(seconds=seconds)


@dataclass
class FakeLease:
    """The poller lease's rule in memory (the DynamoDB one is tested against moto):
    a holder may claim when nobody holds it, it holds it already, or the lease expired."""

    holder: str | None = None
    until: float = 0.0
    claims: list[tuple[str, bool]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def claim(self, holder: str, *, now: float, seconds: float) -> bool:
        won = self.holder in (None, holder) or self.until < now
        if won:
            self.holder, self.until = holder, now + seconds
        self.claims.append((holder, won))
        return won

    def release(self, holder: str) -> None:
        if self.holder == holder:
            self.until = 0.0
            self.released.append(holder)


@dataclass
class FakeStepImages:
    """Our StepImages port: a definition per image, or the next error."""

    resolved: list[str] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def resolve(self, image: ImageReference) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.resolved.append(image.text)
        return f"arn:aws:ecs:us-east-1:123456789012:task-definition/bk-step-1-{len(image.text)}:1"


@dataclass
class FakeLaunchedTasks:
    """The stack's tasks as ECS reports them; ``after_launched`` runs between the first
    listing and the second look (a task moving on meanwhile)."""

    tasks: dict[str, LaunchedTask] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    stop_errors: list[Exception] = field(default_factory=list)
    after_launched: Callable[[], None] | None = None

    def add(self, job_uuid: str, status: str, created_at: datetime | None = T0) -> LaunchedTask:
        arn = f"arn:aws:ecs:us-east-1:123456789012:task/bk/t{len(self.tasks) + 1}"
        self.tasks[arn] = LaunchedTask(arn, job_uuid, status, created_at)
        return self.tasks[arn]

    def move(self, arn: str, status: str) -> None:
        self.tasks[arn] = replace(self.tasks[arn], last_status=status)

    def launched(self, *, cluster: str, started_by: str) -> list[LaunchedTask]:
        found = [t for t in self.tasks.values() if t.arn not in self.stopped]
        if self.after_launched:
            self.after_launched()
        return found

    def describe(self, *, cluster: str, started_by: str, arns: Sequence[str]) -> list[LaunchedTask]:
        return [self.tasks[a] for a in arns if a in self.tasks]

    def stop(self, *, cluster: str, arn: str, reason: str) -> None:
        if self.stop_errors:
            raise self.stop_errors.pop(0)
        self.stopped[arn] = reason
        self.move(arn, "STOPPED")
