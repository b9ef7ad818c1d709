"""Stop the stack's tasks that should never run: their job ended while they started, or they
have been starting for longer than ``ProvisioningTimeoutSeconds`` (domain/starting_tasks.py).

One sweep: list this stack's tasks, read the states of the starting ones' jobs in one
batched get-states call (at most 1000 a request; the client splits), decide, then look at
the tasks again and stop only those still starting. The second look is what keeps a task
whose agent took the job from being stopped: a task still starting after the states were
read had no agent then, and a job that had ended by then can never be taken again.
Stopped tasks reach the failure handler as STOPPED events (stopCode ``UserInitiated``),
which fails the job back when it was the timeout and no agent took it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from fargate_stack.domain.starting_tasks import StopCause, StopOrder, stop_order
from fargate_stack.domain.task_identity import started_by
from fargate_stack.errors import TransientError
from fargate_stack.observability import Metric, count_by, logger
from fargate_stack.ports import Clock, LaunchedTasks, StacksApi

# How often the poller sweeps: agent-stack-k8s checks pending pods' jobs every 5 s
# (`job-cancel-checker-poll-interval`, docs/reference/stacks-api.md §6).
SWEEP_INTERVAL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class StopConfig:
    stack_key: str
    cluster: str
    provisioning_timeout_seconds: int


@dataclass
class SweepSummary:
    starting: int = 0
    stopped: Counter[str] = field(default_factory=Counter)
    # Ordered to stop, but running (or gone) at the second look.
    spared: int = 0
    stop_failed: int = 0

    def as_log(self) -> dict[str, object]:
        return {
            "starting": self.starting,
            "stopped": dict(self.stopped),
            "spared": self.spared,
            "stop_failed": self.stop_failed,
        }


class StopStartingTasks:
    def __init__(
        self, *, api: StacksApi, tasks: LaunchedTasks, clock: Clock, config: StopConfig
    ) -> None:
        self._api = api
        self._tasks = tasks
        self._clock = clock
        self._config = config

    def sweep(self) -> SweepSummary:
        """One sweep; raises TransientError when ECS or Buildkite did not answer (the
        next sweep tries again)."""
        cfg = self._config
        owner = started_by(cfg.stack_key)
        summary = SweepSummary()
        starting = [
            t for t in self._tasks.launched(cluster=cfg.cluster, started_by=owner) if t.starting
        ]
        summary.starting = len(starting)
        if not starting:
            return summary
        states = self._api.get_job_states(
            stack_key=cfg.stack_key, job_uuids=sorted({t.job_uuid for t in starting})
        ).states
        now = self._clock.now()
        orders = [
            order
            for task in starting
            if (
                order := stop_order(
                    task,
                    states.get(task.job_uuid),
                    now=now,
                    timeout_seconds=cfg.provisioning_timeout_seconds,
                )
            )
        ]
        if orders:
            self._stop(orders, owner, summary)
        if summary.stopped or summary.spared or summary.stop_failed:
            logger.info("starting tasks swept", extra=summary.as_log())
        return summary

    def _stop(self, orders: list[StopOrder], owner: str, summary: SweepSummary) -> None:
        cfg = self._config
        again = {
            t.arn: t
            for t in self._tasks.describe(
                cluster=cfg.cluster, started_by=owner, arns=[o.task.arn for o in orders]
            )
        }
        for order in orders:
            now_seen = again.get(order.task.arn)
            if now_seen is None or not now_seen.starting:
                summary.spared += 1
                continue
            try:
                self._tasks.stop(cluster=cfg.cluster, arn=order.task.arn, reason=order.reason)
            except TransientError as exc:
                summary.stop_failed += 1
                logger.warning(
                    "could not stop a starting task; the next sweep tries again",
                    extra={"job_uuid": order.task.job_uuid, "error": str(exc)},
                )
                continue
            summary.stopped[str(order.cause)] += 1
            count_by(Metric.TASKS_STOPPED, "cause", StopCause(order.cause))
            logger.warning(
                "task stopped before it ran",
                extra={
                    "job_uuid": order.task.job_uuid,
                    "task_arn": order.task.arn,
                    "cause": str(order.cause),
                    "last_status": now_seen.last_status,
                    "reason": order.reason,
                },
            )
