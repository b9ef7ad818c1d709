"""The local world: the real handlers run the whole loop on one machine.

Buildkite is the emulator; AWS is moto in server mode provisioned from template.yaml; ECS's
task lifecycle and events come from the simulated Fargate. The poller is invoked as the
scheduler would (back to back, each invocation polling until its safety margin), the
launcher and the failure handler through SQS event source mappings, and task-stopped events
through a real EventBridge rule with the template's own pattern.

At the end the world judges the invariants (docs/design.md) from the emulator's job
histories and the tasks started (local/outcome.py), prints a table of every job, and exits
non-zero if any invariant broke. The handlers' metrics come from their EMF lines
(local/emf.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import requests
from botocore.exceptions import ClientError

from fargate_stack.domain.starting_tasks import STOP_REASON_PREFIX
from local.aws_world import REGION, AwsWorld, Identities, enable_iam, moto_server, provision, update
from local.chaos import ChaosDriver, ChaosPlan
from local.container import InvocationError, LambdaContainer, LocalCrash
from local.emf import emf_series, emf_totals, poll_times
from local.emulator import Emulator
from local.fargate import (
    AGENT_CONTAINER,
    FAILURE_ENV,
    Failure,
    FargateTiming,
    Registry,
    SimulatedAgent,
    SimulatedFargate,
    TaskDefinitions,
)
from local.iam import denials
from local.lambda_runtime import (
    PLUMBING,
    CallTimer,
    EventBridgeBridge,
    LocalContext,
    SqsEventSource,
    acting_as,
    as_role,
    load_handler,
    sign_by_thread,
)
from local.outcome import AGENT_STATES, Launch, WorldReport, judge, overlapping_polls

OUT = Path(__file__).resolve().parent / "out"
# What EventBridge Scheduler sends the poller each minute.
_TICK = {"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}}
_HTTP_TIMEOUT = 10.0
TERMINAL = frozenset({"finished", "canceled", "expired", "skipped", "broken", "timed_out"})
STATE_CHECK_SECONDS = 0.5
# The demo pipeline the local world gives its own task role (PipelineTaskRoles): a fixed
# uuid, as Buildkite's pipeline uuids are, and a role under a path of the operator's choice.
# What the demo's second build asks for with disk= (docs/configuration.md).
DEMO_DISK_GIB = 50
# The demo's step images (AllowedImages allows the first registry's official images): one
# the local registry holds, without the agent, and one the stack must refuse.
ALLOWED_IMAGES = "public.ecr.aws/docker/library/*,docker.io/library/*"
DEMO_STEP_IMAGE = "public.ecr.aws/docker/library/node:22-alpine"
DEMO_REFUSED_IMAGE = "docker.io/someone/miner:latest"
PRIVATE_SSH_LABEL = "private checkout over ssh"
CANCELED_WHILE_STARTING = "canceled while its task starts"
PRIVATE_HTTPS_LABEL = "private https checkout (node)"
# The soak's step images (ChaosPlan.step_images of them), and one no registry has.
SOAK_IMAGES = tuple(f"public.ecr.aws/docker/library/tool{n}:1" for n in range(32))
MISSING_IMAGE = "public.ecr.aws/docker/library/no-such-image:1"
# Docker Hub's, as steps name them (official images: short names), for the burst benchmark.
DOCKER_HUB_IMAGES = tuple(f"toolchain{n}:1" for n in range(64))
# Images of the local registry beyond the agent's (which holds the agent), by qualified
# reference: name -> False.
STEP_IMAGES = (
    {DEMO_STEP_IMAGE: False}
    | dict.fromkeys(SOAK_IMAGES, False)
    | dict.fromkeys((f"docker.io/library/{i}" for i in DOCKER_HUB_IMAGES), False)
)
DEPLOY_PIPELINE = {"slug": "deploy-app", "uuid": "5b0f6c1e-8d2a-4f3b-9c7e-2a1d4e6f8b90"}
DEPLOY_ROLE_PATH, DEPLOY_ROLE_NAME = "/buildkite-pipeline/", "deploy-app"
DEPLOY_LABEL = "deploys as its pipeline role"


class PipelineRole:
    """How the local world maps the demo pipeline (WorldOptions.pipeline_role)."""

    OFF = "off"
    # Mapped in the template; the role trusts ECS tasks: the job runs as it.
    PASSABLE = "passable"
    # Mapped in the template; the role trusts only Lambda: ECS cannot assume it.
    NOT_ASSUMABLE = "not-assumable"
    # Mapped in the launcher's environment only, not the template's parameter, so the
    # launcher's role may not pass it (a hand-edited function, a stale deploy).
    NOT_PASSABLE = "not-passable"


# EventsDeadLetterQueue's wait between the failure handler's tries of an event it failed on
# (its visibility timeout, 360 s deployed), shortened.
EVENT_RETRY_SECONDS = 5


@dataclass(frozen=True)
class WorldOptions:
    jobs: int = 8
    queue: str = "fargate"
    stack_key: str = "fargate-local"
    poll_interval: int = 1
    poll_invocation_seconds: float = 4.0
    # A second poller, in its own container, invoked half an invocation out of step with
    # the first (a tick that arrives while the previous one still loops, or a duplicate
    # delivery): the lease must keep their polls apart.
    overlapping_poller: bool = True
    reservation_expiry: int = 900
    # ProvisioningTimeoutSeconds (the template's minimum, so a stuck task of the soak ends
    # within its run).
    provisioning_timeout: int = 60
    max_in_flight: int = 0
    # The template's LauncherMaxConcurrency default: one container per concurrent batch.
    launcher_concurrency: int = 5
    # RunTask's rate limit, "<per second>/<burst>" (local.aws_world; "0/0" turns it off).
    runtask_rate: str = "20/100"
    timeout: float = 90.0
    pause_seconds: float = 2.0
    provisioning_seconds: float = 0.3
    pending_seconds: float = 0.3
    # Steady arrivals after the paused window: this many more ordinary jobs, one every
    # feed_interval seconds (the dispatch-latency benchmark uses it).
    feed_jobs: int = 0
    # The ordinary jobs name Docker Hub step images, this many of them in turn (the burst
    # benchmark's 20); 0: none. With docker_hub_cache off (DockerHubCacheSecretArn empty)
    # their tasks pull from Docker Hub itself, under its hourly limit.
    step_images: int = 0
    docker_hub_cache: bool = True
    feed_interval: float = 0.5
    # Arrivals are a Poisson process (exponential gaps, this seed): a fixed gap would lock
    # their phase to the poll loop's and make the median depend on that phase.
    seed: int = 1
    # The soak's faults (local.chaos); None for a world without them.
    chaos: ChaosPlan | None = None
    # Stacks API faults set once at the start (the emulator's fault specs, docs/local.md).
    stacks_faults: tuple[Mapping[str, Any], ...] = ()
    # A deploy in the middle of the run (docs/deploy.md#updating-a-running-stack): once
    # about half the launchable jobs have a task, update the stack in moto with these
    # parameter changes (a new agent image replaces the task definition; the launch queue's
    # redrive changes in place); functions' containers started after it run the new
    # environment, invocations in flight finish on the old ones.
    update_midway: bool = False
    update_changes: tuple[tuple[str, str], ...] = (
        ("AgentImage", "public.ecr.aws/buildkite/agent:3.88.0"),
        ("LaunchMaxReceives", "6"),
        ("PollIntervalSeconds", "2"),
    )
    # AgentTokenMode: each task's agent registers with its job's JAT (the default), or with
    # the agent token's secret.
    agent_token_mode: str = "job-acquisition-token"  # noqa: S105 - a mode, not a token
    # (role, action) pairs taken out of the stack's roles before the run (the IAM tests:
    # the world must then fail with AccessDenied where AWS would).
    iam_without: tuple[tuple[str, str], ...] = ()
    # The demo pipeline's own task role (PipelineRole).
    pipeline_role: str = PipelineRole.PASSABLE
    token: str = "bkct_local_0123456789abcdef"  # noqa: S105 - the emulator's own token
    out_dir: Path = OUT


def workload(opts: WorldOptions) -> list[tuple[str, dict[str, Any]]]:
    """Named demo jobs: normal ones of several priorities, and one of each hard case."""
    q = opts.queue

    def job(
        command: str,
        *,
        priority: int = 0,
        rules: list[str] | None = None,
        failure: Failure = Failure.NONE,
        slug: str = "demo-app",
        pipeline: Mapping[str, str] | None = None,
        image: str | None = None,
        repo: str | None = None,
    ) -> dict[str, Any]:
        env = {"BUILDKITE_PIPELINE_SLUG": slug, "BUILDKITE_BUILD_NUMBER": "1"}
        if failure:
            env["LOCAL_FAILURE"] = str(failure)
        if image:
            env["BUILDKITE_IMAGE"] = image  # what Buildkite sets from the step's image:
        if repo:
            env["BUILDKITE_REPO"] = repo
        return {
            "queue_key": q,
            "priority": priority,
            "command": command,
            "agent_query_rules": rules or [f"queue={q}", "os=linux"],
            "env": env,
            "pipeline": dict(pipeline or {"slug": slug}),
            "build": {"number": 1, "branch": "main"},
        }

    named: list[tuple[str, dict[str, Any]]] = []
    # Under chaos, some ordinary jobs' tasks fail too (before or after the agent acquires).
    dice = opts.chaos.rng("task-failures") if opts.chaos else None
    images = opts.chaos.rng("step-images") if opts.chaos else None
    for i in range(opts.jobs):
        command = "exit 1" if i % 5 == 4 else f"echo part {i + 1} ok"
        failure = opts.chaos.failure_for(dice) if opts.chaos and dice else Failure.NONE
        image = _soak_image(opts.chaos, images) if opts.chaos and images else None
        if opts.step_images:
            image = DOCKER_HUB_IMAGES[i % min(opts.step_images, len(DOCKER_HUB_IMAGES))]
        # The second asks for more disk (AllowSizeOverrides is on here): RunTask's
        # ephemeral storage override.
        disk = i == 1
        rules = [f"queue={q}", "os=linux", f"disk={DEMO_DISK_GIB}"] if disk else None
        label = f"build part {i + 1}" + (f" ({DEMO_DISK_GIB} GiB disk)" if disk else "")
        named.append(
            (
                label,
                job(command, priority=(0, 5, 1)[i % 3], failure=failure, rules=rules, image=image),
            )
        )
    named += [
        ("needs a GPU (not for this stack)", job("nvidia-smi", rules=[f"queue={q}", "gpu=true"])),
        ("runs in its own image (node)", job("node --version || true", image=DEMO_STEP_IMAGE)),
        ("image not allowed", job("true", image=DEMO_REFUSED_IMAGE)),
        (PRIVATE_SSH_LABEL, job("true", repo="git@github.com:demo/private-app.git")),
        (
            PRIVATE_HTTPS_LABEL,
            job("true", repo="https://github.com/demo/private-app.git", image=DEMO_STEP_IMAGE),
        ),
        ("image cannot be pulled", job("true", failure=Failure.IMAGE_PULL)),
        ("runs out of memory", job("true", failure=Failure.OUT_OF_MEMORY)),
        ("canceled while queued", job("true")),
        # A slow start (a large image): the user cancels as the task starts, and the stack
        # stops the task before it runs.
        (CANCELED_WHILE_STARTING, job("true", failure=Failure.SLOW_START)),
        (
            DEPLOY_LABEL,
            job("echo deploying", slug=DEPLOY_PIPELINE["slug"], pipeline=DEPLOY_PIPELINE),
        ),
    ]
    return named


def _soak_image(chaos: ChaosPlan, dice: random.Random) -> str | None:
    """A soak job's step image, or None for the agent image (ChaosPlan.step_image_share)."""
    if dice.random() >= chaos.step_image_share:
        return None
    roll = dice.random()
    if roll < 0.05:
        return DEMO_REFUSED_IMAGE  # failed back at once, naming AllowedImages
    if roll < 0.10:
        return MISSING_IMAGE  # allowed, registered, and its pull fails
    return SOAK_IMAGES[dice.randrange(min(chaos.step_images, len(SOAK_IMAGES)))]


class ContainerSlot:
    """One of a function's concurrent executions. After a deploy (``generation`` moved on)
    its container is replaced before the next invocation, and the invocation in flight
    finishes on the old one, as Lambda does with a new version."""

    def __init__(self, start: Callable[[], LambdaContainer], generation: Callable[[], int]) -> None:
        self._start = start
        self._generation = generation
        self._at = generation()
        self.container = start()
        self.started = 1
        # What the replaced containers counted: (call durations, retries, crashes).
        self.retired: list[tuple[dict[str, list[float]], dict[str, int], dict[str, int]]] = []

    def wait_ready(self) -> None:
        self.container.wait_ready()

    def invoke(self, event: dict[str, Any], context: LocalContext) -> Any:
        if self._generation() != self._at:
            self._at = self._generation()
            self.retired.append(self.container.close())
            self.container = self._start()
            self.container.wait_ready()
            self.started += 1
        return self.container.invoke(event, context)

    def close(self) -> list[tuple[dict[str, list[float]], dict[str, int], dict[str, int]]]:
        return [*self.retired, self.container.close()]


@dataclass
class Plumbing:
    # One event source per launcher container: the mapping's concurrent batches.
    launches: list[SqsEventSource]
    containers: list[ContainerSlot]
    gave_up: SqsEventSource
    # EventsDeadLetterQueue: the stop events the failure handler failed on, retried.
    event_retries: SqsEventSource
    bridge: EventBridgeBridge
    fargate: SimulatedFargate

    def step_failures(self) -> int:
        """One round of the failure handler's sources; returns how many it handled."""
        return self.gave_up.poll() + self.event_retries.poll() + len(self.bridge.deliver())

    def step_fargate(self) -> None:
        self.fargate.tick()
        self.bridge.flush()

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """The event sources' own threads, so launches do not wait for Fargate's
        bookkeeping; each launcher thread waits on its own container."""

        def run(step: Callable[[], int]) -> None:
            while not stop.is_set():
                if not step():
                    time.sleep(0.02)

        threads = [
            threading.Thread(target=run, args=(source.poll,), name=f"launcher-{i}", daemon=True)
            for i, source in enumerate(self.launches)
        ]
        threads.append(
            threading.Thread(target=run, args=(self.step_failures,), name="failures", daemon=True)
        )
        for thread in threads:
            thread.start()
        return threads

    def drain(self) -> None:
        """Deliver what the last ticks published, so the counts are complete."""
        self.bridge.flush()
        while (
            sum(source.poll() for source in self.launches) + self.step_failures()
            or self.bridge.held()
            or self.bridge.pending_retries()
        ):
            self.bridge.flush()
            time.sleep(0.05)

    def close(self, into: CallTimer) -> Counter[str]:
        """Stop the containers; their AWS calls join the stack's counts. Returns their
        crashes by point."""
        crashes: Counter[str] = Counter()
        for slot in self.containers:
            for durations, retries, crashed in slot.close():
                for operation, times in durations.items():
                    into.durations[operation].extend(times)
                for operation, count in retries.items():
                    into.retries[operation] += count
                crashes.update(crashed)
        return crashes

    def evidence(self, errors: list[str]) -> dict[str, list[str]]:
        return {
            "sqs messages": [
                b for s in (*self.launches, self.gave_up, self.event_retries) for b in s.bodies
            ],
            "launch messages": [b for s in self.launches for b in s.bodies],
            "ecs events": list(self.bridge.sent),
            # what the rule's input transformer delivered to the failure handler
            "failure handler events": list(self.bridge.received),
            "task overrides": [json.dumps(t.overrides) for t in self.fargate.tasks.values()],
            "errors": [*errors, *(reason for _, reason in self.bridge.dead_letters)],
        }

    def handler_seconds(self) -> dict[str, float]:
        return {
            "launcher": sum(source.stats.seconds for source in self.launches),
            "failure_handler": self.gave_up.stats.seconds
            + self.event_retries.stats.seconds
            + self.bridge.seconds,
        }

    def counts(self) -> dict[str, int]:
        return {
            "launcher_containers": sum(slot.started for slot in self.containers),
            "launcher_invocations": sum(source.stats.invocations for source in self.launches),
            "launcher_failures": sum(source.stats.failures for source in self.launches),
            "sqs_duplicate_deliveries": sum(s.stats.duplicates for s in self.launches),
            "events_duplicated": self.bridge.duplicated,
            "events_delayed": self.bridge.delayed,
            "events_retried": self.bridge.retried,
            "dlq_records": self.gave_up.stats.records,
            "events_published": self.bridge.published,
            "events_delivered": self.bridge.delivered,
            "events_dead_lettered": len(self.bridge.dead_letters),
            "event_retry_records": self.event_retries.stats.records,
            "event_source_errors": sum(
                s.stats.receive_errors for s in (*self.launches, self.gave_up, self.event_retries)
            ),
        }


class World:
    def __init__(self, opts: WorldOptions, console: TextIO) -> None:
        self.opts = opts
        self.console = console
        self.labels: dict[str, str] = {}
        self.created: dict[str, dict[str, Any]] = {}
        self.registry: Registry | None = None
        # Faults injected by kind (soak only), and DLQ/parked records nobody handled.
        self.faults: Counter[str] = Counter()
        self.dlq_left = self.events_left = self.parked = 0
        # Jobs the soak canceled as their task started, before its agent registered, and
        # when (the emulator's clock, as its call log writes it).
        self.canceled_before_registration: dict[str, str] = {}
        # Jobs canceled while their task was still PROVISIONING (the demo's, the soak's
        # slow starts): the stack must stop those tasks before they run.
        self.canceled_while_starting: dict[str, str] = {}
        # The deployed version: moves on with a mid-run update (containers started after it
        # run the new environment). When it happened (time.time()), and the stack as updated.
        self.generation = 0
        self.updated_at: float | None = None
        self._aws: AwsWorld | None = None
        self._stack_calls: CallTimer | None = None
        self._identities: Identities | None = None
        # PipelineTaskRoles as the local world maps its demo pipeline ("" until made).
        self._pipeline_roles = ""

    # ------------------------------------------------------------------ setup
    def control(self, emu: Emulator, method: str, path: str, body: object = None) -> Any:
        answer = requests.request(method, emu.control_url + path, json=body, timeout=_HTTP_TIMEOUT)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def say(self, text: str) -> None:
        print(text, file=self.console, flush=True)

    def seed(self, emu: Emulator) -> None:
        for label, spec in workload(self.opts):
            (created,) = self.control(emu, "POST", "jobs", spec)["jobs"]
            self.labels[created["id"]] = label
            self.created[created["id"]] = created
            if label == "canceled while queued":
                self.control(emu, "POST", f"jobs/{created['id']}/cancel")

    def parameters(self, emu: Emulator) -> dict[str, str]:
        o = self.opts
        return {
            "StackKey": o.stack_key,
            "QueueKey": o.queue,
            "BuildkiteApiUrl": emu.base_url,
            "PollIntervalSeconds": str(o.poll_interval),
            "ReservationExpirySeconds": str(o.reservation_expiry),
            "ProvisioningTimeoutSeconds": str(o.provisioning_timeout),
            "MaxInFlight": str(o.max_in_flight),
            "LauncherMaxConcurrency": str(o.launcher_concurrency),
            "AgentTokenMode": o.agent_token_mode,
            "AllowSizeOverrides": "true",
            "AllowedImages": ALLOWED_IMAGES,
            # Without the cache, step images from Docker Hub are pulled from Docker Hub.
            **({} if o.docker_hub_cache else {"DockerHubCacheSecretArn": ""}),
            **({"PipelineTaskRoles": self._pipeline_roles} if self._template_maps_role() else {}),
        }

    def _template_maps_role(self) -> bool:
        return self.opts.pipeline_role in {PipelineRole.PASSABLE, PipelineRole.NOT_ASSUMABLE}

    def create_pipeline_role(self) -> None:
        """The demo pipeline's task role, made in moto before the stack (an operator's
        role, not the stack's): trusted by ECS tasks of this account, or, to show a role
        ECS cannot assume, by Lambda only."""
        if self.opts.pipeline_role == PipelineRole.OFF:
            return
        service = (
            "lambda.amazonaws.com"
            if self.opts.pipeline_role == PipelineRole.NOT_ASSUMABLE
            else "ecs-tasks.amazonaws.com"
        )
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        arn = PLUMBING.client("iam").create_role(
            RoleName=DEPLOY_ROLE_NAME,
            Path=DEPLOY_ROLE_PATH,
            AssumeRolePolicyDocument=json.dumps(trust),
        )["Role"]["Arn"]
        self._pipeline_roles = f"{DEPLOY_PIPELINE['uuid']}={arn}"

    # ------------------------------------------------------------------ run
    def run(self) -> WorldReport:
        o = self.opts
        o.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = o.out_dir / "lambda.log"
        # Appended to, not rewritten: the launcher containers write to it too.
        log_path.write_text("")
        fault_report = o.out_dir / "aws-faults.json"
        fault_report.unlink(missing_ok=True)
        iam_record = o.out_dir / "iam.json"
        iam_record.unlink(missing_ok=True)
        aws_faults = o.chaos.aws_faults(str(fault_report)) if o.chaos else None
        with (
            Emulator(token=o.token, port=0) as emu,
            moto_server(o.runtask_rate, aws_faults, o.out_dir / "moto.log", iam_record) as endpoint,
            log_path.open("a") as log,
            contextlib.redirect_stdout(log),
            # The handlers' stderr (the Stacks API client's retry lines) is CloudWatch's too.
            contextlib.redirect_stderr(log),
        ):
            self.say(f"emulator:  {emu.base_url}")
            self.say(f"moto:      {endpoint}")
            self.create_pipeline_role()
            aws = provision(endpoint, self.parameters(emu), o.token)
            self.say(f"stack:     {len(aws.physical_ids)} resources from template.yaml")
            self._identities = identities = enable_iam(aws, o.iam_without)
            self.say("iam:       enforced; each function calls AWS as its own role (out/iam.json)")
            with _environment(_functions_env(aws), identities):
                self.seed(emu)
                self.say(f"workload:  {len(self.labels)} jobs on queue {o.queue!r}")
                report = self._loop(emu, aws)
        report.metrics = emf_totals(log_path)
        report.metric_series = emf_series(log_path)
        report.violations += overlapping_polls(poll_times(log_path))
        if fault_report.exists():  # written by moto's process as it stopped
            self.faults.update(
                {f"aws.{k}": v for k, v in json.loads(fault_report.read_text()).items()}
            )
        report.faults = dict(self.faults)
        if iam_record.exists():  # written by moto's process as it stopped
            report.iam = _by_role(json.loads(iam_record.read_text()), self._identities)
            report.violations += denials(report.iam)
            report.counts["iam_denied"] = sum(e["count"] for e in report.iam if not e["allowed"])
        report.counts.update(
            dlq_left=self.dlq_left, events_left=self.events_left, parked=self.parked
        )
        return report

    def _plumbing(self, emu: Emulator, aws: AwsWorld) -> Plumbing:
        """The handlers wired as AWS wires them: SQS mappings, the rule, ECS (simulated)."""
        o = self.opts
        ids = self._identities
        assert ids is not None
        failure_handler = as_role(
            "FailureHandlerFunctionRole", load_handler("failure_handler").lambda_handler
        )
        chaos = o.chaos
        launcher_env = {
            **(chaos.launcher_env() if chaos else {}),
            **ids.env_of("LauncherFunctionRole"),
            **(
                {"PIPELINE_TASK_ROLES": self._pipeline_roles}
                if o.pipeline_role == PipelineRole.NOT_PASSABLE
                else {}
            ),
        }
        log = o.out_dir / "lambda.log"

        def starter(index: int) -> Callable[[], LambdaContainer]:
            return lambda: LambdaContainer("launcher", log, index, launcher_env)

        containers = [
            ContainerSlot(starter(index), lambda: self.generation)
            for index in range(o.launcher_concurrency)
        ]
        for container in containers:
            container.wait_ready()
        sqs = PLUMBING.client("sqs", region_name=REGION)

        def source(
            logical_id: str,
            handler: Any,
            function_name: str,
            role: str,
            *,
            index: int = 0,
            retry_after_seconds: int = 1,
        ) -> SqsEventSource:
            url = _url_of(sqs, aws.id_of(logical_id))
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            tuning: dict[str, Any] = {"retry_after_seconds": retry_after_seconds}
            if chaos is not None and logical_id == "LaunchQueue":
                # The soak's shortened launcher timeout and retry wait, and duplicates.
                tuning = {
                    "timeout_seconds": chaos.launcher_timeout_seconds,
                    "retry_after_seconds": chaos.launch_retry_seconds,
                    "duplicates": (chaos.duplicate_delivery, chaos.rng(f"sqs-{index}")),
                }
            return SqsEventSource(
                queue_url=url,
                queue_arn=attrs["Attributes"]["QueueArn"],
                handler=handler,
                function_name=function_name,
                session=ids.session_of(role),
                **tuning,
            )

        bridge = EventBridgeBridge(
            rule_name=aws.id_of("FailureHandlerFunctionTaskStopped"),
            handler=failure_handler,
            function_name="failure-handler",
            function_session=ids.session_of("FailureHandlerFunctionRole"),
            disorder=(chaos.duplicate_event, chaos.late_event, chaos.rng("events"))
            if chaos
            else None,
            on_failure_url=_url_of(sqs, aws.id_of("EventsDeadLetterQueue")),
        )
        timing = FargateTiming(o.provisioning_seconds, o.pending_seconds, 30.0)

        def failure_of(job: str) -> Failure:
            env = self.created.get(job, {}).get("env", {})
            return Failure(env.get("LOCAL_FAILURE", ""))

        ecs = PLUMBING.client("ecs", region_name=REGION)
        definitions = TaskDefinitions(ecs)
        base = definitions.get(aws.environments["LauncherFunction"]["TASK_DEFINITION"])
        agent_image = next(
            c["image"] for c in base["containerDefinitions"] if c["name"] == AGENT_CONTAINER
        )
        fargate = SimulatedFargate(
            ecs=ecs,
            definitions=definitions,
            registry=self._registry(aws, agent_image),
            cluster=aws.environments["LauncherFunction"]["ECS_CLUSTER"],
            agent=SimulatedAgent(emu.base_url, timing),
            emit=bridge.publish,
            failure_of=failure_of,
            timing=timing,
            pull_secrets=_secrets_puller(ids, definitions),
            before_agent=self._cancel_before_registration(emu, chaos) if chaos else None,
            on_admit=self._cancel_while_starting(emu, chaos),
        )
        return Plumbing(
            launches=[
                source(
                    "LaunchQueue", container.invoke, "launcher", "LauncherFunctionRole", index=index
                )
                for index, container in enumerate(containers)
            ],
            containers=containers,
            gave_up=source(
                "LaunchDeadLetterQueue",
                failure_handler,
                "failure-handler",
                "FailureHandlerFunctionRole",
            ),
            # Deployed, a failed event waits the queue's 360 s visibility timeout between its
            # 10 receives (an hour); locally 5 s (under a minute of Buildkite faults).
            event_retries=source(
                "EventsDeadLetterQueue",
                failure_handler,
                "failure-handler",
                "FailureHandlerFunctionRole",
                retry_after_seconds=EVENT_RETRY_SECONDS,
            ),
            bridge=bridge,
            fargate=fargate,
        )

    def _registry(self, aws: AwsWorld, agent_image: str) -> Registry:
        """The local registries: the agent's, the step images', and the ECR pull-through
        caches the launcher names (STEP_IMAGE_CACHES), each serving its upstream."""
        caches = {}
        for pair in aws.environments["LauncherFunction"].get("STEP_IMAGE_CACHES", "").split(","):
            upstream, sep, path = pair.partition("=")
            if sep:
                caches[upstream] = path
        self.registry = Registry(
            {agent_image: True, **STEP_IMAGES},
            agent_repository=agent_image.rpartition(":")[0],
            caches=caches,
        )
        return self.registry

    def _drive_poller(self, stop: threading.Event, errors: list[str]) -> None:
        """The scheduler: invoke the poller back to back, each invocation polling until
        its safety margin, as the deployed one-minute schedule does."""
        poller = load_handler("poller")
        generation = self.generation
        while not stop.is_set():
            if generation != self.generation:
                # A new execution environment of the new version: nothing cached survives.
                generation = self.generation
                self._restart_in_process_functions()
            try:
                with acting_as("PollerFunctionRole"):
                    poller.lambda_handler(_TICK, self._poller_context())
            except LocalCrash:
                # The runtime died after reserving, before enqueueing: those reservations
                # expire and the jobs are listed again. (Its module state survives here,
                # which a new runtime's would not: it re-registers on its first 404 anyway.)
                self.faults["crash.poller.after_reserve"] += 1
            except Exception as exc:  # noqa: BLE001 - a failed invocation is reported, not fatal
                errors.append(repr(exc))
                time.sleep(self.opts.poll_interval)

    def _poller_context(self) -> LocalContext:
        """One poller invocation's context: it loops until its safety margin, as deployed."""
        margin = float(os.environ.get("POLL_SAFETY_MARGIN_SECONDS", "10"))
        return LocalContext("poller", margin + self.opts.poll_invocation_seconds)

    def _drive_overlapping_poller(self, stop: threading.Event, errors: list[str]) -> None:
        """Another execution environment of the poller, its invocations starting half an
        invocation after the first's: without the lease both would poll."""
        slot = ContainerSlot(
            lambda: LambdaContainer(
                "poller",
                self.opts.out_dir / "lambda.log",
                index=1000,
                env=self._identities.env_of("PollerFunctionRole") if self._identities else None,
            ),
            lambda: self.generation,
        )
        try:
            slot.wait_ready()
            stop.wait(self.opts.poll_invocation_seconds / 2)
            while not stop.is_set():
                try:
                    slot.invoke(_TICK, self._poller_context())
                except InvocationError as exc:
                    errors.append(str(exc))
                    stop.wait(self.opts.poll_interval)
        finally:
            slot.close()

    def _start_pollers(self, stop: threading.Event, errors: list[str]) -> list[threading.Thread]:
        drivers = [("poller", self._drive_poller)]
        if self.opts.overlapping_poller:
            drivers.append(("poller-2", self._drive_overlapping_poller))
        threads = [
            threading.Thread(target=run, args=(stop, errors), name=name, daemon=True)
            for name, run in drivers
        ]
        for thread in threads:
            thread.start()
        return threads

    def _loop(self, emu: Emulator, aws: AwsWorld) -> WorldReport:
        o = self.opts
        from fargate_stack.bootstrap import aws_session  # noqa: PLC0415 - layer path set above

        # Before any client is made: a client copies its session's hooks when created.
        stack_calls, plumbing_calls = CallTimer(aws_session()), CallTimer(PLUMBING)
        self._stack_calls, self._aws = stack_calls, aws
        if o.chaos:
            self._crash_poller_after_reserve(aws_session().events, o.chaos)
        plumbing = self._plumbing(emu, aws)
        self.control(emu, "DELETE", "calls")
        for fault in o.stacks_faults:
            self.control(emu, "POST", "faults", dict(fault))
        stop = threading.Event()
        poller_errors: list[str] = []
        self.control(emu, "POST", f"queues/{o.queue}/pause", {"paused": True})
        self.say(f"queue:     paused for {o.pause_seconds:.0f} s (the poller must launch nothing)")
        pollers = self._start_pollers(stop, poller_errors)
        sources = plumbing.start(stop)
        feeder = threading.Thread(target=self._feed, args=(emu,), name="feeder", daemon=True)
        driver = None
        if o.chaos:
            driver = ChaosDriver(
                o.chaos,
                lambda method, path, body: self.control(emu, method, path, body),
                lambda: list(self.labels),
            )
            driver.start()
        try:
            self._watch(emu, plumbing, feeder)
        finally:
            if driver is not None:
                driver.stop()
                self.faults.update(driver.counts)
            stop.set()
            for poller in pollers:
                poller.join(timeout=30)
            for source in sources:
                source.join(timeout=30)
            plumbing.drain()
            stack_calls.close()
            for point, n in plumbing.close(into=stack_calls).items():
                self.faults[f"crash.{point}"] += n
            plumbing_calls.close()
            self.dlq_left = _messages_left(aws, "LaunchDeadLetterQueue")
            self.events_left = _messages_left(aws, "EventsDeadLetterQueue")
            self.parked = _messages_left(aws, "ParkedQueue")
        report = self._report(emu, plumbing.fargate)
        report.counts.update(
            plumbing.counts(),
            poller_errors=len(poller_errors),
            docker_hub_pulls_refused=self.registry.rate_limited if self.registry else 0,
        )
        if self.updated_at is not None:
            report.counts.update(self._update_counts(plumbing.fargate))
        report.evidence = plumbing.evidence(poller_errors)
        report.handler_seconds = plumbing.handler_seconds()
        report.aws_calls = {op: len(times) for op, times in stack_calls.durations.items()}
        report.aws_retries = dict(stack_calls.retries)
        report.aws_latency_ms = {**plumbing_calls.durations, **stack_calls.durations}
        calls = [
            c
            for c in self.control(emu, "GET", "calls")["calls"]
            if c["endpoint"] and not c["endpoint"].startswith("agent-")
        ]
        report.stacks_calls = dict(Counter(c["endpoint"] for c in calls))
        self._token_outcomes(emu, report, plumbing.fargate, calls)
        for call in calls:
            report.stacks_latency_ms.setdefault(call["endpoint"], []).append(call["duration_ms"])
        return report

    def _token_outcomes(
        self,
        emu: Emulator,
        report: WorldReport,
        fargate: SimulatedFargate,
        calls: list[dict[str, Any]],
    ) -> None:
        """What the token faults did, and the figures that must stay 0 under them: a task
        refused its token that no fault made expire, a FailJob for a job canceled as its
        task started."""
        jats = self.control(emu, "GET", "job-acquisition-tokens")
        report.jats = [t["token"] for t in jats["tokens"]]
        short = {t["token"] for t in jats["tokens"] if t["fault"] == "short_lifetime"}
        refused = list(fargate.agent.refused)
        report.token_expired_jobs = sorted({job for job, token in refused if token in short})
        withheld = Counter(w["fault"] for w in jats["withheld"])
        for kind in ("not_issued", "reservation_lost"):
            self.faults[f"jat.{kind}"] += withheld[kind]
        self.faults["jat.short_lifetime"] += len(short)
        self.faults["cancel.before_registration"] += len(self.canceled_before_registration)
        self.faults["cancel.while_starting"] += len(self.canceled_while_starting)
        canceled = {**self.canceled_before_registration, **self.canceled_while_starting}
        stopped = [t for t in fargate.tasks.values() if t.stopped_by]
        report.counts.update(
            tasks_without_a_valid_token=sum(token not in short for _, token in refused),
            tasks_whose_token_expired_first=sum(token in short for _, token in refused),
            tasks_stopped_by_the_stack=sum(
                1 for t in stopped if (t.stopped_by or "").startswith(STOP_REASON_PREFIX)
            ),
            tasks_stopped_after_acquire=sum(1 for t in stopped if t.stopped_after_acquire),
            failjob_on_canceled_before_registration=sum(
                1
                for c in calls
                if c["endpoint"] == "finish-job"
                and any(job in canceled and c["at"] >= canceled[job] for job in c["job_uuids"])
            ),
        )

    def _cancel_while_starting(
        self, emu: Emulator, plan: ChaosPlan | None
    ) -> Callable[[str], None]:
        """The user cancels a job whose task has just been created: the demo's job, and
        under chaos a share of the slow starts (ChaosPlan.cancel_while_starting)."""
        rng = plan.rng("cancel-while-starting") if plan else None

        def cancel(job: str) -> None:
            slow = (self.created.get(job, {}).get("env") or {}).get(FAILURE_ENV) == str(
                Failure.SLOW_START
            )
            chosen = self.labels.get(job) == CANCELED_WHILE_STARTING or (
                plan is not None
                and rng is not None
                and slow
                and rng.random() < plan.cancel_while_starting
            )
            if not chosen:
                return
            if self.control(emu, "GET", f"jobs/{job}")["state"] not in ("scheduled", "reserved"):
                return
            view = self.control(emu, "POST", f"jobs/{job}/cancel")
            self.canceled_while_starting[job] = view["history"][-1]["at"]

        return cancel

    def _cancel_before_registration(self, emu: Emulator, plan: ChaosPlan) -> Callable[[str], None]:
        """The user cancels a job as its task starts: after the launcher issued its token
        and started the task, before the agent registers."""
        rng = plan.rng("cancel-before-registration")

        def cancel(job: str) -> None:
            if rng.random() >= plan.cancel_before_registration:
                return
            if self.control(emu, "GET", f"jobs/{job}")["state"] not in ("scheduled", "reserved"):
                return
            view = self.control(emu, "POST", f"jobs/{job}/cancel")
            self.canceled_before_registration[job] = view["history"][-1]["at"]

        return cancel

    def _watch(self, emu: Emulator, plumbing: Plumbing, feeder: threading.Thread) -> None:
        """Run Fargate and show progress until every job settles (or the timeout)."""
        o = self.opts
        started = time.monotonic()
        paused = True
        last_progress, next_check = "", 0.0
        while time.monotonic() - started < o.timeout:
            if paused and time.monotonic() - started >= o.pause_seconds:
                self.control(emu, "POST", f"queues/{o.queue}/pause", {"paused": False})
                paused = False
                feeder.start()
            plumbing.step_fargate()
            if o.update_midway and self.updated_at is None and self._midway(plumbing.fargate):
                self._update()
            # Reading every job's state costs as much as a launch batch at 2,000 jobs:
            # check (and show progress) a few times a second, not every step.
            if time.monotonic() < next_check:
                time.sleep(0.05)
                continue
            next_check = time.monotonic() + STATE_CHECK_SECONDS
            states = self._states(emu)
            progress = ", ".join(f"{k} {v}" for k, v in sorted(Counter(states.values()).items()))
            if progress != last_progress:
                self.say(f"  t={time.monotonic() - started:5.1f}s  {progress}")
                last_progress = progress
            settled = self._settled(states) and not plumbing.fargate.busy()
            if not paused and not feeder.is_alive() and settled:
                return
            time.sleep(0.05)

    # ------------------------------------------------------------------ mid-run update
    def _midway(self, fargate: SimulatedFargate) -> bool:
        """About half the jobs the stack will launch have a task."""
        # + image pull, out of memory, the deploy under its pipeline's role
        launchable = self.opts.jobs + self.opts.feed_jobs + 3
        return len(fargate.tasks) >= max(1, launchable // 2)

    def _update(self) -> None:
        """`sam deploy` of a new version: the stack updated in moto, the functions'
        environment resolved again, and a new generation of containers."""
        assert self._aws is not None
        started = time.monotonic()
        self._aws = update(self._aws, dict(self.opts.update_changes))
        os.environ.update(_functions_env(self._aws))
        self.updated_at = time.time()
        self.generation += 1
        changes = ", ".join(f"{k}={v}" for k, v in self.opts.update_changes)
        took = time.monotonic() - started
        self.say(f"  update:  the stack was updated ({changes}) in {took:.1f} s")

    def _restart_in_process_functions(self) -> None:
        """The in-process functions' new execution environment: bootstrap's caches
        forgotten (new settings, clients and session), the call counter and the chaos hooks
        on the new session."""
        from fargate_stack import bootstrap  # noqa: PLC0415 - layer path set by then

        bootstrap.reset()
        if self._identities is not None:
            sign_by_thread(bootstrap.aws_session(), self._identities.roles)
        if self._stack_calls is not None:
            self._stack_calls.attach(bootstrap.aws_session().events)
        if self.opts.chaos:
            self._crash_poller_after_reserve(bootstrap.aws_session().events, self.opts.chaos)

    def _update_counts(self, fargate: SimulatedFargate) -> dict[str, int]:
        """Launches before and after the update, and by task definition revision."""
        assert self.updated_at is not None and self._aws is not None
        current = self._aws.environments["LauncherFunction"]["TASK_DEFINITION"]
        tasks = [t for t in fargate.tasks.values() if t.job_uuid]
        after = [t for t in tasks if t.run_task_at.timestamp() >= self.updated_at]
        return {
            "stack_updates": self.generation,
            "launched_before_update": len(tasks) - len(after),
            "launched_after_update": len(after),
            "launched_after_update_on_old_revision": sum(
                t.task_definition_arn != current for t in after
            ),
        }

    def _crash_poller_after_reserve(self, events: Any, plan: ChaosPlan) -> None:
        rng = plan.rng("poller-crash")

        def crash(**_: Any) -> None:
            if threading.current_thread().name == "poller" and (
                rng.random() < plan.poller_crash_after_reserve
            ):
                raise LocalCrash("poller.after_reserve")

        events.register("before-call.sqs.SendMessageBatch", crash)

    def _feed(self, emu: Emulator) -> None:
        """Steady arrivals: ordinary jobs ``feed_interval`` seconds apart on average."""
        q = self.opts.queue
        gaps = random.Random(self.opts.seed)  # noqa: S311 - arrival times, not secrets
        for i in range(self.opts.feed_jobs):
            if self.opts.update_midway and i == self.opts.feed_jobs - 1:
                # The last arrival comes after the deploy, so some launch runs the new version
                # however long the update takes (on a loaded machine it outlasted the rest
                # of the feed, found by the e2e test).
                self._wait_for_update()
            spec = {
                "queue_key": q,
                "priority": 0,
                "command": f"echo arrival {i + 1}",
                "agent_query_rules": [f"queue={q}", "os=linux"],
            }
            (created,) = self.control(emu, "POST", "jobs", spec)["jobs"]
            self.created[created["id"]] = created
            self.labels[created["id"]] = f"arrival {i + 1}"
            time.sleep(gaps.expovariate(1 / self.opts.feed_interval))

    def _wait_for_update(self) -> None:
        deadline = time.monotonic() + self.opts.timeout
        while self.updated_at is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def _states(self, emu: Emulator) -> dict[str, str]:
        jobs = self.control(emu, "GET", "jobs")["jobs"]
        return {j["id"]: j["state"] for j in jobs if j["id"] in self.labels}

    def _settled(self, states: Mapping[str, str]) -> bool:
        """Every job is terminal, in an agent's hands, or one this stack must not take."""
        for job, state in states.items():
            if state in TERMINAL or state in AGENT_STATES:
                continue
            if state == "scheduled" and self.labels[job].endswith("(not for this stack)"):
                continue
            return False
        return True

    # ------------------------------------------------------------------ verdict
    def _report(self, emu: Emulator, fargate: SimulatedFargate) -> WorldReport:
        views = {job_id: self.control(emu, "GET", f"jobs/{job_id}") for job_id in self.labels}
        launches = [
            Launch(
                job_uuid=task.job_uuid,
                task_arn=task.arn,
                run_task_at=task.run_task_at,
                task_role=task.task_role,
                image=task.image,
                stopped_by=task.stopped_by,
            )
            for task in fargate.tasks.values()
            if task.job_uuid
        ]
        return judge(self.labels, views, launches)


@contextlib.contextmanager
def _environment(values: Mapping[str, str], identities: Identities) -> Iterator[None]:
    """The functions' environment for this run only; the composition root's caches are
    cleared on the way in and out, since they hold clients bound to this run's servers.
    The in-process functions' session signs each call with the calling thread's role."""
    from fargate_stack import bootstrap  # noqa: PLC0415 - after sys.path is set
    from fargate_stack.observability import logger  # noqa: PLC0415 - after sys.path is set

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    bootstrap.reset()
    sign_by_thread(bootstrap.aws_session(), identities.roles)
    # Powertools' Logger keeps the stream it was created with; point it at this run's log
    # (sys.stdout is redirected there), as each Lambda container has its own stdout.
    handler = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        raise TypeError("Powertools' Logger no longer logs through a StreamHandler")
    previous = handler.stream
    handler.stream = sys.stdout
    try:
        yield
    finally:
        handler.stream = sys.__stdout__ if getattr(previous, "closed", False) else previous
        bootstrap.reset()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _functions_env(aws: AwsWorld) -> dict[str, str]:
    """Every function's environment as the stack resolves it, in one process's variables."""
    env: dict[str, str] = {}
    for variables in aws.environments.values():
        env.update(variables)
    env["POWERTOOLS_SERVICE_NAME"] = "local"
    return env


def _secrets_puller(
    identities: Identities, definitions: TaskDefinitions
) -> Callable[[str], tuple[dict[str, str], str | None]]:
    """What Fargate does before a task's container starts: read its definition's
    ``secrets`` with the definition's task execution role. Returns the variables they
    become, and the error code of the first that fails (AccessDeniedException when the role
    may not) or None."""
    clients: dict[str, Any] = {}

    def pull(definition_arn: str) -> tuple[dict[str, str], str | None]:
        found = definitions.get(definition_arn)
        role_arn = str(found.get("executionRoleArn", ""))
        secrets = [
            (s["name"], s["valueFrom"])
            for c in found["containerDefinitions"]
            for s in c.get("secrets", [])
        ]
        if not secrets:
            return {}, None
        role = identities.logical.get(role_arn.rsplit("/", 1)[-1])
        if role is None:
            return {}, f"no credentials in the local world for {role_arn!r}"
        if role not in clients:
            clients[role] = identities.session_of(role).client("secretsmanager")
        values: dict[str, str] = {}
        for name, secret in secrets:
            try:
                values[name] = clients[role].get_secret_value(SecretId=secret)["SecretString"]
            except ClientError as exc:
                return {}, str(exc.response["Error"]["Code"])
        return values, None

    return pull


def _by_role(entries: list[dict[str, Any]], identities: Identities | None) -> list[dict[str, Any]]:
    """The moto process's record with each role named by its logical id."""
    names = dict(identities.logical) if identities else {}
    return [{**e, "caller": names.get(e["caller"], e["caller"])} for e in entries]


def _messages_left(aws: AwsWorld, logical_id: str) -> int:
    sqs = PLUMBING.client("sqs", region_name=REGION)
    url = _url_of(sqs, aws.id_of(logical_id))
    answer = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    return sum(int(value) for value in answer["Attributes"].values())


def _url_of(sqs: Any, physical_id: str) -> str:
    name = physical_id.rstrip("/").rsplit("/", 1)[-1]
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
