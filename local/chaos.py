"""The chaos plan of a soak: which faults, how often, from one seed.

Every fault is drawn from a ``random.Random`` seeded from the plan's seed, so a failing
soak is replayed by running it again with the seed it printed. Where each fault is made:

- Stacks API (429 with Retry-After, 5xx, slow answers, dropped connections, malformed
  JSON, per endpoint): the emulator's fault API, fed by a driver thread;
- AWS (RunTask Spot capacity failures, throttling and 5xx, DynamoDB throttling, SQS send
  errors): moto's request handlers in its process (local.aws_world);
- crashes: the launcher's runtime before or after RunTask (local.container), the poller's
  after reserving and before enqueueing (here, on the stack's session);
- duplicate SQS deliveries (local.lambda_runtime.SqsEventSource), duplicate and late
  (so out-of-order) ECS events (local.lambda_runtime.EventBridgeBridge);
- tasks failing before the agent acquires (image pull, secrets/resource initialization) or
  after (out of memory, Spot interruption): the simulated Fargate, per job;
- jobs canceled while queued or while launching: the driver thread, through the emulator;
  jobs canceled after their task got its token, before its agent registers: the simulated
  Fargate, per task (local.world);
- job acquisition token answers shaped (a token not issued, the reservation gone to another
  stack, a token that expires before the task starts): the emulator's token faults, fed by
  the driver thread.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from local.container import CRASHES_ENV
from local.emulator.behaviour import STACKS_ENDPOINTS as STACKS_API
from local.emulator.faults import TOKEN_KINDS
from local.fargate import Failure

# The endpoints the running stack calls: not the simulated agent's (not the product under
# test), nor register (once per container). Job acquisition tokens are the launcher's.
STACKS_ENDPOINTS = tuple(e for e in STACKS_API if e not in ("register", "deregister"))
STACKS_FAULT_KINDS = ("429", "5xx", "slow", "drop", "malformed_json")
# An outage's faults answer at most this many requests each; it ends by time (removed).
_OUTAGE = 100_000


def _default_aws() -> dict[str, float]:
    return {
        "runtask_spot_capacity": 0.03,
        "runtask_throttle": 0.02,
        "runtask_ec2_throttle": 0.01,
        "runtask_server_error": 0.01,
        "dynamodb_throttle": 0.02,
        "sqs_send_error": 0.05,
        # Per RegisterTaskDefinition call (a few dozen a soak: one per step image and
        # stack version): high, so that each run meets some.
        "register_throttle": 0.15,
        "register_server_error": 0.05,
    }


def _default_jat_faults() -> dict[str, float]:
    # Shares of the token faults (local.emulator.faults.TOKEN_KINDS).
    return {"not_issued": 1.0, "reservation_lost": 1.0, "short_lifetime": 1.0}


def _default_failures() -> dict[str, float]:
    return {
        Failure.IMAGE_PULL: 0.02,
        Failure.SECRETS: 0.01,
        Failure.OUT_OF_MEMORY: 0.01,
        Failure.SPOT: 0.01,
        # PENDING for seconds (half of them canceled meanwhile: cancel_while_starting)...
        Failure.SLOW_START: 0.02,
        # ...or for good: the stack stops them at ProvisioningTimeoutSeconds.
        Failure.STUCK: 0.005,
    }


@dataclass(frozen=True)
class ChaosPlan:
    seed: int
    # Stacks API faults: one (hitting 1-2 requests) every `stacks_fault_every` seconds on
    # average. The poller lists once a second: much more often and no poll would succeed.
    stacks_fault_every: float = 2.0
    # Buildkite unreachable for a while: every stack endpoint answers 503 for
    # `outage_seconds` (drawn uniformly), about once every `outage_every` seconds. Long
    # enough to use up Lambda's retries of a stop event (so some come back through its
    # dead-letter queue) and to make launch records fail and be redelivered.
    outage_every: float = 60.0
    outage_seconds: tuple[float, float] = (6.0, 15.0)
    aws: Mapping[str, float] = field(default_factory=_default_aws)
    crashes: Mapping[str, float] = field(
        default_factory=lambda: {
            "launcher.before_run_task": 0.01,
            "launcher.after_run_task": 0.01,
            "launcher.after_register": 0.05,
        }
    )
    # Per SendMessageBatch call (10 jobs): a 1,000-job poll makes 100, so a crash strands
    # the rest of that poll's reservations until they expire about 40% of the time.
    poller_crash_after_reserve: float = 0.005
    duplicate_delivery: float = 0.02  # per successfully handled launch record
    duplicate_event: float = 0.05  # per task state change event
    late_event: float = 0.05  # held back for a few flushes, so it arrives out of order
    task_failures: Mapping[str, float] = field(default_factory=_default_failures)
    # This share of the ordinary jobs names a step image (AllowedImages), drawn from
    # `step_images` images, so launchers race on each new one; of those, one in twenty
    # names an image the stack refuses and one in twenty one no registry has.
    step_image_share: float = 0.06
    step_images: int = 8
    cancel_every: float = 1.0  # seconds between cancels, on average...
    cancel_fraction: float = 0.02  # ...until this share of the jobs was canceled
    # Per task whose container starts: its job is canceled after its token was issued and
    # before its agent registers (the agent is refused and exits 27; no FailJob may follow).
    cancel_before_registration: float = 0.01
    # Per slow-starting task: its job is canceled as the task is created; the stack must
    # stop the task before it runs, and no FailJob may follow.
    cancel_while_starting: float = 0.5
    # Job acquisition token answers shaped (local.emulator.faults): one every
    # `jat_fault_every` seconds on average, for 1-2 of a request's jobs, the kind drawn by
    # these shares. `not_issued`: refused for now, the launcher retries the record;
    # `reservation_lost`: the reservation passed to another stack for `jat_lost_seconds`,
    # the record is acknowledged and the job listed again once that lapses;
    # `short_lifetime`: the token lives `jat_short_lifetime_seconds`, less than a task takes
    # to start (local.fargate), so the agent is refused and the job must be failed back.
    jat_fault_every: float = 8.0
    jat_faults: Mapping[str, float] = field(default_factory=_default_jat_faults)
    jat_lost_seconds: float = 10.0
    jat_short_lifetime_seconds: float = 0.1
    # The local world's SQS retry (Lambda: the visibility timeout, 360 s deployed) must
    # outlast a crashed invocation's idempotency lock (the function's timeout, 60 s
    # deployed), as it does deployed; the soak shortens both, keeping the order.
    launcher_timeout_seconds: float = 16.0
    launch_retry_seconds: int = 20
    # The launcher's RUN_TASK_MARGIN_SECONDS (10 s of a 60 s timeout deployed).
    run_task_margin_seconds: float = 4.0

    def rng(self, stream: str) -> random.Random:
        """An independent seeded stream per fault source, so adding one source does not
        shift another's dice."""
        return random.Random(f"{self.seed}/{stream}")  # noqa: S311 - fault dice, not secrets

    def aws_faults(self, report: str) -> dict[str, Any]:
        return {"seed": self.seed, "report": report, **self.aws}

    def crash_spec(self) -> dict[str, Any]:
        return {"seed": self.seed, **self.crashes}

    def launcher_env(self) -> dict[str, str]:
        """The launcher containers' extra environment: crash points, and the RunTask margin
        and timeout setting that match the shortened timeout."""
        return {
            CRASHES_ENV: json.dumps(self.crash_spec()),
            "RUN_TASK_MARGIN_SECONDS": str(self.run_task_margin_seconds),
            "LAUNCHER_TIMEOUT_SECONDS": str(self.launcher_timeout_seconds),
        }

    def failure_for(self, rng: random.Random) -> Failure:
        roll = rng.random()
        for failure, chance in self.task_failures.items():
            if roll < chance:
                return Failure(failure)
            roll -= chance
        return Failure.NONE


class ChaosDriver:
    """A thread adding Stacks API faults and canceling jobs at seeded random moments."""

    def __init__(
        self,
        plan: ChaosPlan,
        control: Callable[[str, str, object], Any],
        job_ids: Callable[[], list[str]],
    ) -> None:
        self._plan = plan
        self._control = control
        self._job_ids = job_ids
        self._rng = plan.rng("driver")
        self._jat_rng = plan.rng("jat")
        self.counts: Counter[str] = Counter()
        self.canceled: set[str] = set()
        self._added: dict[str, str] = {}  # fault id -> its count key
        self._outage_ends: list[tuple[float, list[str]]] = []  # (when, fault ids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        # Count what was injected, not what was added: faults never hit are taken back.
        for fault in self._control("GET", "faults", None)["faults"]:
            key = self._added.get(fault["id"])
            if key:
                self.counts[key] -= fault["count"]
        self.counts = +self.counts
        self._control("DELETE", "faults", None)

    def _run(self) -> None:
        next_fault = self._rng.expovariate(1 / self._plan.stacks_fault_every)
        next_cancel = self._rng.expovariate(1 / self._plan.cancel_every)
        next_outage = self._rng.expovariate(1 / self._plan.outage_every)
        next_jat = self._jat_rng.expovariate(1 / self._plan.jat_fault_every)
        elapsed = 0.0
        step = 0.1
        while not self._stop.wait(step):
            elapsed += step
            if elapsed >= next_fault:
                self._add_fault()
                next_fault = elapsed + self._rng.expovariate(1 / self._plan.stacks_fault_every)
            if elapsed >= next_cancel:
                self._cancel()
                next_cancel = elapsed + self._rng.expovariate(1 / self._plan.cancel_every)
            if elapsed >= next_outage:
                self._outage(elapsed)
                next_outage = elapsed + self._rng.expovariate(1 / self._plan.outage_every)
            if elapsed >= next_jat:
                self._add_jat_fault()
                next_jat = elapsed + self._jat_rng.expovariate(1 / self._plan.jat_fault_every)
            self._end_outages(elapsed)

    def _add_fault(self) -> None:
        endpoint = self._rng.choice(STACKS_ENDPOINTS)
        kind = self._rng.choice(STACKS_FAULT_KINDS)
        spec: dict[str, Any] = {"endpoint": endpoint, "count": self._rng.randint(1, 2)}
        if kind == "429":
            spec.update(kind="status", status=429, retry_after="1")
        elif kind == "5xx":
            spec.update(kind="status", status=self._rng.choice((500, 502, 503)))
        elif kind == "slow":
            spec.update(kind="latency", seconds=round(self._rng.uniform(0.2, 1.5), 2))
        else:
            spec.update(kind=kind)
        added = self._control("POST", "faults", spec)
        key = f"stacks_api.{endpoint}.{kind}"
        self._added[added["id"]] = key
        self.counts[key] += spec["count"]

    def _add_jat_fault(self) -> None:
        """Shape the next token answer. Not counted here: the emulator lists what each one
        did to which job (local.world counts that). At most one waits at a time: faults piled
        up while few tokens are asked for (the run's tail) would all strike its last jobs,
        again and again (found by the short soak)."""
        if any(f["kind"] in TOKEN_KINDS for f in self._control("GET", "faults", None)["faults"]):
            return
        kinds, shares = zip(*self._plan.jat_faults.items(), strict=True)
        (kind,) = self._jat_rng.choices(kinds, weights=shares)
        seconds = {
            "reservation_lost": self._plan.jat_lost_seconds,
            "short_lifetime": self._plan.jat_short_lifetime_seconds,
        }.get(kind, 0.0)
        spec = {
            "endpoint": "job-acquisition-tokens",
            "kind": kind,
            "jobs": self._jat_rng.randint(1, 2),
            "seconds": seconds,
        }
        self._control("POST", "faults", spec)

    def _outage(self, now: float) -> None:
        """Every stack endpoint fails until the outage ends (its faults are then removed;
        only the requests they answered are counted)."""
        self.counts["stacks_api.outages"] += 1
        ids = []
        for endpoint in STACKS_ENDPOINTS:
            spec = {"endpoint": endpoint, "kind": "status", "status": 503, "count": _OUTAGE}
            added = self._control("POST", "faults", spec)
            self._added[added["id"]] = f"stacks_api.{endpoint}.outage"
            self.counts[f"stacks_api.{endpoint}.outage"] += _OUTAGE
            ids.append(added["id"])
        self._outage_ends.append((now + self._rng.uniform(*self._plan.outage_seconds), ids))

    def _end_outages(self, now: float) -> None:
        due = [ids for end, ids in self._outage_ends if end <= now]
        self._outage_ends = [(end, ids) for end, ids in self._outage_ends if end > now]
        for fault_id in (fault_id for ids in due for fault_id in ids):
            key = self._added.pop(fault_id)
            try:
                left = self._control("DELETE", f"faults/{fault_id}", None)
            except requests.HTTPError:  # used up: every request it was meant for came
                continue
            self.counts[key] -= left["count"]

    def _cancel(self) -> None:
        jobs = self._job_ids()
        if len(self.canceled) >= max(1, round(self._plan.cancel_fraction * len(jobs))):
            return
        candidates = [job for job in jobs if job not in self.canceled]
        if not candidates:
            return
        job = self._rng.choice(candidates)
        view = self._control("GET", f"jobs/{job}", None)
        if view["state"] not in ("scheduled", "reserved"):
            return
        self._control("POST", f"jobs/{job}/cancel", None)
        self.canceled.add(job)
        self.counts[f"cancel.{view['state']}"] += 1
