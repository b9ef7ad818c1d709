"""When a task stopped, or a launch gave up, tell Buildkite if the job never ran.

FailJob only for jobs the agent never took (docs/design.md, invariant 3): the job state decides,
not the task. Only STOPPED events are acted on and STOPPED is final, so duplicate and
out-of-order events (docs/reference/aws.md §B.7) need no ordering by ``detail.version``: the first
STOPPED event fails the job, and every later one finds it ``finished`` and leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from fargate_stack.domain.task_identity import job_uuid_of_task, started_by
from fargate_stack.domain.task_logs import LOG_LINK_LEAD, console_link, log_stream
from fargate_stack.domain.triage import StopReason, triage
from fargate_stack.errors import JobGoneError, PermanentError
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.observability import Metric, count_by, logger
from fargate_stack.ports import StacksApi, TaskListing

if TYPE_CHECKING:
    # Annotations only: the event model pulls in Powertools' parser models (~50 ms of
    # import), which the poller and launcher, sharing the composition root, never use.
    from fargate_stack.models.ecs import TaskStateChangeEvent

AGENT_EXIT_RAN_JOB = 0
ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"  # botocore ecs TaskStopCode

# Job states in which no agent has the job (docs/reference/stacks-api.md §3.6 and §6).
NEVER_TAKEN_STATES = frozenset({"scheduled", "reserved"})
CANCELED_STATES = frozenset({"canceling", "canceled"})


class Ignored(StrEnum):
    """Why a stop (or DLQ record) led to no FailJob; a bounded metric dimension."""

    NOT_STOPPED = "not_stopped"
    NOT_OURS = "not_ours"
    JOB_NOT_ACQUIRABLE = "job_not_acquirable"
    AGENT_RAN_JOB = "agent_ran_job"
    AGENT_TOOK_JOB = "agent_took_job"
    UNKNOWN_JOB = "unknown_job"
    ALREADY_FINISHED = "already_finished"
    # Canceled on Buildkite (the stack stops a canceled job's starting task): nothing to
    # fail back.
    JOB_CANCELED = "job_canceled"
    # A launch message gave up, but a later one (the job listed and reserved again after
    # its reservation expired) started a task for the job: that task runs it, or its
    # STOPPED event fails it back.
    LAUNCHED_LATER = "launched_later"


@dataclass(frozen=True, slots=True)
class Decision:
    job_uuid: str | None
    failed: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"job_uuid": self.job_uuid, "failed": self.failed, "reason": self.reason}


class HandleStopped:
    def __init__(
        self,
        *,
        api: StacksApi,
        stack_key: str,
        agent_container: str,
        agent_log_group: str | None = None,
        tasks: TaskListing | None = None,
        cluster: str | None = None,
    ) -> None:
        self._api = api
        self._stack_key = stack_key
        self._agent_container = agent_container
        self._agent_log_group = agent_log_group
        self._tasks = tasks
        self._cluster = cluster

    def on_task_stopped(self, event: TaskStateChangeEvent) -> Decision:
        detail = event.detail
        if detail.last_status != "STOPPED":
            return self._ignore(None, Ignored.NOT_STOPPED)
        job_uuid = job_uuid_of_task(
            stack_key=self._stack_key,
            started_by_value=detail.started_by,
            group=detail.group,
        )
        if job_uuid is None:
            return self._ignore(None, Ignored.NOT_OURS, task_arn=event.task_arn)
        stopped = event.stopped_task(self._agent_container)
        if (
            stopped.agent_exit_code == AGENT_EXIT_RAN_JOB
            and stopped.stop_code == ESSENTIAL_CONTAINER_EXITED
        ):
            # The agent ended by itself with 0: `start --acquire-job` does that after running
            # its job, whatever the job's result (docs/reference/aws.md §A.2). Nothing to ask
            # Buildkite. (A stop by a user or Spot may also end in 0 before the agent took
            # the job, so those still ask.)
            return self._ignore(job_uuid, Ignored.AGENT_RAN_JOB, task_arn=event.task_arn)
        result = triage(stopped)
        if not result.may_fail_job:
            return self._ignore(job_uuid, Ignored.JOB_NOT_ACQUIRABLE, task_arn=event.task_arn)
        return self._fail_if_never_taken(
            job_uuid, self._with_log_link(event, result.detail), result.reason
        )

    def _with_log_link(self, event: TaskStateChangeEvent, detail: str) -> str:
        """The console link to the task's agent log (about 250 characters: too long for a
        notification, well inside FailJob's 4 KB detail)."""
        if not self._agent_log_group:
            return detail
        stream = log_stream(self._agent_container, event.task_arn.rsplit("/", 1)[-1])
        link = console_link(event.region, self._agent_log_group, stream)
        return f"{detail} {LOG_LINK_LEAD} {link}"

    def on_launch_gave_up(self, message: LaunchMessage, receive_count: int) -> Decision:
        detail = (
            f"The stack could not start a Fargate task for this job after {receive_count} "
            "attempts (throttling, capacity or an AWS error; the launcher's logs have each "
            "attempt's error)."
        )
        return self._fail_if_never_taken(
            str(message.job_uuid), detail, StopReason.LAUNCH_GAVE_UP, unless_launched_later=True
        )

    def _launched_later(self, job_uuid: str) -> Decision | None:
        """A task of this stack for the job, not stopped yet: a later message launched it
        (a dead letter can arrive minutes after its first try). None when there is none,
        or when the handler was built without ECS."""
        if self._tasks is None or self._cluster is None:
            return None
        owner = started_by(self._stack_key)
        for task in self._tasks.launched(cluster=self._cluster, started_by=owner):
            if task.job_uuid == job_uuid:
                return self._ignore(job_uuid, Ignored.LAUNCHED_LATER, task_arn=task.arn)
        return None

    def _fail_if_never_taken(
        self,
        job_uuid: str,
        detail: str,
        reason: StopReason,
        *,
        unless_launched_later: bool = False,
    ) -> Decision:
        states = self._api.get_job_states(stack_key=self._stack_key, job_uuids=[job_uuid])
        state = states.states.get(job_uuid)
        if state is None:
            # Buildkite no longer knows the job (get-states omits unknown uuids).
            return self._ignore(job_uuid, Ignored.UNKNOWN_JOB)
        if state not in NEVER_TAKEN_STATES:
            why = Ignored.JOB_CANCELED if state in CANCELED_STATES else Ignored.AGENT_TOOK_JOB
            return self._ignore(job_uuid, why, state=state)
        if unless_launched_later and (spared := self._launched_later(job_uuid)) is not None:
            return spared
        try:
            # Exit status -1 and no signal reason: the documented finish request has none, and
            # the Stacks API docs say the platform itself sets `stack_error`, which a step's
            # `retry: automatic` rule can exclude (docs/reference/aws.md §H.22; whether it
            # does so on every finish is UNCONFIRMED, docs/deploy.md gives rules safe either way).
            self._api.fail_job(
                stack_key=self._stack_key,
                job_uuid=job_uuid,
                detail=f"Buildkite Fargate Stack: {detail}",
                exit_status=-1,
            )
        except (JobGoneError, PermanentError) as exc:
            # A duplicate event or another handler got there first (finish is at most once).
            return self._ignore(job_uuid, Ignored.ALREADY_FINISHED, error=str(exc))
        logger.warning(
            "job failed back to Buildkite: its task never ran it",
            extra={"job_uuid": job_uuid, "reason": str(reason), "detail": detail, "state": state},
        )
        count_by(Metric.JOBS_FAILED, "reason", reason)
        return Decision(job_uuid=job_uuid, failed=True, reason=str(reason))

    @staticmethod
    def _ignore(job_uuid: str | None, why: Ignored, **extra: object) -> Decision:
        logger.info("no FailJob", extra={"job_uuid": job_uuid, "why": str(why), **extra})
        count_by(Metric.STOPS_IGNORED, "why", why)
        return Decision(job_uuid=job_uuid, failed=False, reason=str(why))
