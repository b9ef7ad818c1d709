"""The small interfaces the use cases need, so they never name an adapter.

Buildkite-side shapes are Protocols of the fields the use cases read, which the Stacks API
client's pydantic models satisfy; tests may satisfy them with plain dataclasses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fargate_stack.domain.launch import LaunchSpec
from fargate_stack.domain.starting_tasks import LaunchedTask
from fargate_stack.domain.step_image import ImageReference
from fargate_stack.models.messages import LaunchMessage


class ListedPipeline(Protocol):
    @property
    def uuid(self) -> str | None: ...


class ListedJob(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def scheduled_at(self) -> datetime: ...
    @property
    def agent_query_rules(self) -> list[str]: ...
    @property
    def pipeline(self) -> ListedPipeline: ...


class QueueState(Protocol):
    @property
    def dispatch_paused(self) -> bool: ...


class JobsPage(Protocol):
    @property
    def jobs(self) -> Sequence[ListedJob]: ...
    @property
    def cluster_queue(self) -> QueueState: ...


class Reservation(Protocol):
    @property
    def reserved(self) -> list[str]: ...
    @property
    def not_reserved(self) -> list[str]: ...


class JobData(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def command(self) -> str: ...


class JobStates(Protocol):
    @property
    def states(self) -> Mapping[str, str]: ...


class StacksApi(Protocol):
    def register_stack(
        self, *, key: str, type: str, queue_key: str, metadata: Mapping[str, str]
    ) -> object: ...

    def iter_scheduled_jobs(
        self, *, stack_key: str, queue_key: str, page_size: int | None, max_pages: int | None
    ) -> Iterator[JobsPage]: ...

    def batch_reserve_jobs(
        self, *, stack_key: str, job_uuids: Sequence[str], reservation_expiry_seconds: int | None
    ) -> Reservation: ...

    def get_job(self, *, stack_key: str, job_uuid: str) -> JobData: ...

    def get_job_states(self, *, stack_key: str, job_uuids: Sequence[str]) -> JobStates: ...

    def fail_job(
        self, *, stack_key: str, job_uuid: str, detail: str, exit_status: int = -1
    ) -> object: ...

    def create_stack_notifications(
        self, *, stack_key: str, notifications: Sequence[Mapping[str, str]]
    ) -> object: ...


@dataclass
class SendResult:
    sent: list[str] = field(default_factory=list)
    # job uuid -> why it could not be sent
    failed: dict[str, str] = field(default_factory=dict)


class LaunchQueue(Protocol):
    def send(self, messages: Sequence[LaunchMessage]) -> SendResult: ...

    def depth(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StartedTask:
    arn: str
    # When ECS created the task (RunTask's `createdAt`); older than the call means ECS
    # replayed an earlier RunTask with the same client token. None when not reported.
    created_at: datetime | None = None


class TaskRunner(Protocol):
    def run(self, spec: LaunchSpec) -> StartedTask: ...

    def count_in_flight(self, *, cluster: str, started_by: str) -> int: ...


class TaskListing(Protocol):
    """The stack's tasks not stopped yet, each with its job (the failure handler looks
    there for a later launch of a job whose first launch gave up)."""

    def launched(self, *, cluster: str, started_by: str) -> Sequence[LaunchedTask]: ...


class LaunchedTasks(TaskListing, Protocol):
    """The stack's tasks not stopped yet, and StopTask (usecases/stop_starting.py)."""

    def describe(
        self, *, cluster: str, started_by: str, arns: Sequence[str]
    ) -> Sequence[LaunchedTask]: ...

    def stop(self, *, cluster: str, arn: str, reason: str) -> None: ...


class FallbackLedger(Protocol):
    """Remembers that a job's launch moved to its fallback capacity, so a redelivery
    repeats the fallback's RunTask (and client token) instead of the first one's."""

    def record_fallback(self, job_uuid: str) -> None: ...

    def fell_back(self, job_uuid: str) -> bool: ...


class StepImages(Protocol):
    """The task definition that runs a step's image (usecases/step_images.py)."""

    def resolve(self, image: ImageReference) -> str: ...


class TaskDefinitions(Protocol):
    """ECS task definitions: the stack's base, and the ones derived for step images."""

    def describe(self, task_definition: str) -> Mapping[str, Any]: ...

    def register(self, request: Mapping[str, Any]) -> str: ...

    def families(self, prefix: str) -> Sequence[str]: ...

    def active_revisions(self, family: str) -> Sequence[str]: ...

    def deregister(self, task_definition: str) -> None: ...


class ImageDefinitionLedger(Protocol):
    """Which task definition runs which step image, shared by every launcher: a family's
    ARN once registered, a claim while one launcher registers it, and the day's count."""

    def arn_of(self, family: str) -> str | None: ...

    def claim(self, family: str, holder: str, *, seconds: float) -> bool: ...

    def complete(self, family: str, holder: str, arn: str) -> None: ...

    def release(self, family: str, holder: str) -> None: ...

    def count_registration(self, day: str, limit: int) -> bool: ...


class Lease(Protocol):
    """A lease only one holder can have until it expires (the poller's single loop)."""

    def claim(self, holder: str, *, now: float, seconds: float) -> bool: ...

    def release(self, holder: str) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...
