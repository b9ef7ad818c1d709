"""Launch one reserved job: GetJob -> launch spec -> RunTask -> notify.

What happens to the SQS record is decided by the outcome: a returned result acknowledges
it; a ``TransientError`` leaves it for redelivery (and, after N receives, the DLQ and the
failure handler). A job that can never launch as asked is failed back to Buildkite here,
with the reason, so its build does not wait for a reservation to expire.

No double launch: the composition root wraps ``launch`` in Powertools idempotency keyed by
the job uuid (duplicate and concurrent deliveries), and RunTask's client token, derived
from the job uuid and capacity, makes ECS return the first task instead of starting a
second for 24 h (a *redelivered* message after a crash between RunTask and the ledger's
save). A redelivery repeats the RunTask the crashed attempt made: the fallback's, if the
ledger says the job fell back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pydantic import SecretStr

from fargate_stack.domain.launch import (
    Capacity,
    CapacityStrategy,
    LaunchConfig,
    LaunchRejectedError,
    LaunchRejection,
    LaunchSpec,
    build_launch_spec,
)
from fargate_stack.domain.step_image import ImageDecision, ImageVerdict, decide_image
from fargate_stack.domain.task_logs import launch_note, log_stream
from fargate_stack.errors import (
    AlreadyLaunchedError,
    CapacityUnavailableError,
    JobGoneError,
    PermanentError,
    StackError,
    TransientError,
)
from fargate_stack.models.messages import LaunchMessage, remaining_reservation_seconds
from fargate_stack.observability import Metric, count, count_by, logger, milliseconds
from fargate_stack.ports import (
    Clock,
    FallbackLedger,
    StacksApi,
    StartedTask,
    StepImages,
    TaskRunner,
)
from fargate_stack.usecases.job_tokens import BatchTokens


class LaunchOutcome(StrEnum):
    LAUNCHED = "launched"
    ALREADY_LAUNCHED = "already_launched"
    FAILED_BACK = "failed_back"
    JOB_GONE = "job_gone"


class CapacityLabel(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on-demand"


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    config: LaunchConfig
    strategy: CapacityStrategy
    # RunTask is not started with less of the invocation left than this: the ledger's
    # in-progress lock ends with the invocation, and a RunTask still running after it could
    # race a redelivery's launch (found by the chaos soak: 13 double launches in 5,000).
    run_task_margin_seconds: float = 10.0
    # The function's Timeout: an earlier attempt's idempotency lock lasts until its
    # invocation's deadline, so a message for a job scheduled less than this ago cannot
    # follow a crashed attempt.
    launcher_timeout_seconds: float = 60.0
    # AllowedImages' patterns; empty: a step's image is ignored (with a notification).
    allowed_images: tuple[str, ...] = ()


# A task created this long before its RunTask was sent is ECS replaying an earlier RunTask
# with the same client token, not a new task (clocks of Lambda and ECS agree within this).
REPLAY_SLACK = timedelta(seconds=5)


class LaunchJob:
    def __init__(
        self,
        *,
        api: StacksApi,
        tasks: TaskRunner,
        fallbacks: FallbackLedger,
        clock: Clock,
        options: LaunchOptions,
        tokens: BatchTokens | None = None,
        images: StepImages | None = None,
    ) -> None:
        self._api = api
        # The task definitions of step images (needed only when AllowedImages is set).
        self._images = images
        # AgentTokenMode=job-acquisition-token: each task gets its job's JAT; None: the
        # task definition's secret (agent-token mode).
        self.tokens = tokens
        self._tasks = tasks
        self._fallbacks = fallbacks
        self._clock = clock
        self._options = options
        # Notifications wait for the end of the invocation and go out as one request
        # (the endpoint takes 1000): one Stacks API call per batch instead of per job.
        self._notes: list[dict[str, str]] = []
        self._time_left: Callable[[], float] | None = None

    def prepare_tokens(self, messages: Sequence[LaunchMessage]) -> None:
        """The invocation's batch, for its one token request (JAT mode; no-op otherwise)."""
        if self.tokens is not None:
            now = self._clock.now()
            self.tokens.prepare(
                {str(m.job_uuid): remaining_reservation_seconds(m, now) for m in messages}
            )

    def set_deadline(self, seconds_left: Callable[[], float]) -> None:
        """The invocation's clock (the handler passes its Lambda context's)."""
        self._time_left = seconds_left

    def launch(self, message: LaunchMessage, *, redelivered: bool = False) -> dict[str, str]:
        """Launch the job; the returned dict is what the idempotency record keeps."""
        job_uuid = str(message.job_uuid)
        logger.append_keys(job_uuid=job_uuid)
        try:
            return self._launch(message, job_uuid, redelivered=redelivered)
        finally:
            logger.remove_keys(["job_uuid"])

    def _launch(
        self, message: LaunchMessage, job_uuid: str, *, redelivered: bool
    ) -> dict[str, str]:
        cfg = self._options.config
        late = -remaining_reservation_seconds(message, self._clock.now())
        if late > 0:
            # Still launched: the agent can acquire a job that is scheduled again, and a
            # second listing's message for it finds this launch in the ledger.
            logger.warning(
                "reservation expired before the launch; launching anyway",
                extra={"late_seconds": round(late, 1)},
            )
        try:
            job = self._api.get_job(stack_key=cfg.stack_key, job_uuid=job_uuid)
        except JobGoneError:
            logger.warning("job is gone from Buildkite; nothing to launch")
            count_by(Metric.LAUNCH_FAILED, "reason", LaunchOutcome.JOB_GONE, with_total=True)
            return {"outcome": LaunchOutcome.JOB_GONE}
        image = decide_image(job.env, self._options.allowed_images)
        try:
            definition = self._task_definition(image)
            # After GetJob (a job gone needs no token), before the spec: a token is asked
            # for only when a task is about to start; the fallback reuses it.
            token = self.tokens.token_for(job_uuid) if self.tokens is not None else None
            capacity = self._first_capacity(message, redelivered=redelivered)
            first = self._launch_spec(message, dict(job.env), capacity, token, definition)
            sent_at = self._clock.now()
            task, spec = self._run(message, dict(job.env), first)
        except LaunchRejectedError as exc:
            return self._fail_back(job_uuid, exc.detail, exc.reason)
        except AlreadyLaunchedError as exc:
            return self._already_launched(exc.task_arn or "unknown")
        except PermanentError as exc:
            return self._fail_back(job_uuid, exc.detail, LaunchRejection(exc.reason))
        if task.created_at is not None and task.created_at < sent_at - REPLAY_SLACK:
            # ECS answered with the task an earlier attempt started (same client token).
            return self._already_launched(task.arn)
        if image.verdict is ImageVerdict.IGNORED:
            count(Metric.STEP_IMAGES_IGNORED)
            self._notify(job_uuid, image.detail)
        return self._launched(message, job_uuid, spec, task.arn, image)

    def _task_definition(self, image: ImageDecision) -> str | None:
        """The step image's own task definition, or None for the stack's."""
        if image.verdict is ImageVerdict.REFUSED:
            reason = (
                LaunchRejection.INVALID_IMAGE
                if image.image is None
                else LaunchRejection.IMAGE_NOT_ALLOWED
            )
            raise LaunchRejectedError(reason, image.detail)
        if image.verdict is not ImageVerdict.USE or image.image is None:
            return None
        if self._images is None:
            msg = "AllowedImages is set but the launcher has no step-image definitions"
            raise PermanentError(msg, reason=LaunchRejection.OTHER)
        return self._images.resolve(image.image)

    def _first_capacity(self, message: LaunchMessage, *, redelivered: bool) -> Capacity:
        """Where this attempt starts. If an earlier attempt for the job may have crashed
        after falling back, only the fallback's RunTask (and its client token) finds that
        attempt's task, so the ledger is asked: one read, and only for a redelivery or a
        job re-listed after its reservation expired, never on the common path. A re-listed
        job was reserved again at least one reservation (ReservationExpirySeconds, 60 s or
        more) after it was scheduled, so the gap from scheduled to *this* reservation
        tells it apart; its age now would not: in a burst most first deliveries wait in the
        queue longer than that (1,030 needless reads in 2,006 launches, the burst bench)."""
        strategy = self._options.strategy
        first = strategy.first_capacity()
        fallback = strategy.fallback(first)
        if fallback is None:
            return first
        waited_for_reservation = message.reserved_at - message.scheduled_at
        lock = timedelta(seconds=self._options.launcher_timeout_seconds)
        may_follow_a_crash = redelivered or waited_for_reservation > lock - REPLAY_SLACK
        if may_follow_a_crash and self._fallbacks.fell_back(str(message.job_uuid)):
            logger.info(
                "an earlier attempt fell back; repeating its launch",
                extra={"capacity": str(fallback), "redelivered": redelivered},
            )
            count_by(Metric.LAUNCH_RETRIED, "reason", _Retry.REPEAT_FALLBACK)
            return fallback
        return first

    def _launch_spec(
        self,
        message: LaunchMessage,
        env: dict[str, str],
        capacity: Capacity,
        token: SecretStr | None,
        task_definition: str | None,
    ) -> LaunchSpec:
        return build_launch_spec(
            self._options.config,
            job_uuid=str(message.job_uuid),
            agent_query_rules=message.agent_query_rules,
            job_env=env,
            capacity=capacity,
            agent_token=token,
            pipeline_uuid=str(message.pipeline_uuid) if message.pipeline_uuid else None,
            task_definition=task_definition,
        )

    def _run(
        self, message: LaunchMessage, env: dict[str, str], spec: LaunchSpec
    ) -> tuple[StartedTask, LaunchSpec]:
        """Run the spec; returns the task and the spec that actually ran (after fallback)."""
        try:
            return self._run_unless_out_of_time(spec), spec
        except CapacityUnavailableError:
            fallback = self._options.strategy.fallback(spec.capacity)
            if fallback is None:
                count_by(Metric.LAUNCH_RETRIED, "reason", _Retry.CAPACITY)
                raise
            logger.warning("Fargate Spot has no capacity; falling back to on-demand")
            count_by(Metric.LAUNCH_RETRIED, "reason", _Retry.SPOT_FALLBACK)
            on_demand = self._launch_spec(
                message, env, fallback, spec.agent_token, spec.step_task_definition
            )
            self._fallbacks.record_fallback(str(message.job_uuid))
            return self._run_unless_out_of_time(on_demand), on_demand

    def _run_unless_out_of_time(self, spec: LaunchSpec) -> StartedTask:
        """RunTask, unless too little of the invocation is left for the ledger to guard it."""
        left = self._time_left() if self._time_left else None
        if left is not None and left < self._options.run_task_margin_seconds:
            count_by(Metric.LAUNCH_RETRIED, "reason", _Retry.NO_TIME_LEFT)
            msg = (
                f"only {left:.1f} s of the invocation left (< "
                f"{self._options.run_task_margin_seconds} s): not starting a task the "
                "ledger could no longer guard; the record is retried"
            )
            raise TransientError(msg)
        return self._tasks.run(spec)

    def _launched(
        self,
        message: LaunchMessage,
        job_uuid: str,
        ran: LaunchSpec,
        task_arn: str,
        image: ImageDecision,
    ) -> dict[str, str]:
        task_id = task_arn.rsplit("/", 1)[-1]
        shown = image.image.text if image.verdict is ImageVerdict.USE and image.image else ""
        latency_ms = (self._clock.now() - message.scheduled_at).total_seconds() * 1000
        logger.info(
            "task started for job",
            extra={
                "task_arn": task_arn,
                "cpu": ran.cpu,
                "memory": ran.memory,
                "capacity": str(ran.capacity),
                "image": shown or None,
                "dispatch_latency_ms": round(latency_ms),
            },
        )
        label = CapacityLabel.SPOT if ran.capacity is Capacity.SPOT else CapacityLabel.ON_DEMAND
        count_by(Metric.TASKS_LAUNCHED, "capacity", label, with_total=True)
        milliseconds(Metric.DISPATCH_LATENCY, latency_ms)
        stream = log_stream(self._options.config.container_name, task_id)
        self._notify(job_uuid, launch_note(task_id, stream, ran.describe(), shown or None))
        return {"outcome": LaunchOutcome.LAUNCHED, "task_arn": task_arn}

    def _already_launched(self, task_arn: str) -> dict[str, str]:
        logger.info("job already has a task; not launching another", extra={"task_arn": task_arn})
        count(Metric.LAUNCHES_DUPLICATE)
        return {"outcome": LaunchOutcome.ALREADY_LAUNCHED, "task_arn": task_arn}

    def _fail_back(self, job_uuid: str, detail: str, reason: LaunchRejection) -> dict[str, str]:
        cfg = self._options.config
        logger.warning(
            "job cannot be launched; failing it back to Buildkite",
            extra={"reason": reason, "detail": detail},
        )
        self._api.fail_job(
            stack_key=cfg.stack_key,
            job_uuid=job_uuid,
            detail=f"Buildkite Fargate Stack could not launch this job: {detail}",
            exit_status=-1,
        )
        count_by(Metric.LAUNCH_FAILED, "reason", reason, with_total=True)
        return {"outcome": LaunchOutcome.FAILED_BACK, "reason": str(reason)}

    def _notify(self, job_uuid: str, detail: str) -> None:
        self._notes.append({"job_uuid": job_uuid, "detail": detail})

    def flush_notifications(self) -> None:
        """Send the invocation's notifications in one request. Best effort: a lost
        notification must never undo or repeat a launch."""
        notes, self._notes = self._notes, []
        if not notes:
            return
        try:
            self._api.create_stack_notifications(
                stack_key=self._options.config.stack_key, notifications=notes
            )
        except StackError as exc:
            logger.warning(
                "stack notifications not sent", extra={"error": str(exc), "count": len(notes)}
            )


class _Retry(StrEnum):
    CAPACITY = "capacity"
    SPOT_FALLBACK = "spot_fallback"
    NO_TIME_LEFT = "no_time_left"
    REPEAT_FALLBACK = "repeat_fallback"  # a later attempt of a job that fell back
