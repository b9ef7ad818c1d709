"""A simulated Fargate: takes each task the launcher started in moto through PROVISIONING,
PENDING, RUNNING and STOPPED, runs a simulated agent for its job against the emulator, and
emits ECS Task State Change events in the exact shape AWS sends.

moto starts tasks straight at RUNNING, sends no events and knows nothing of agents
(docs/reference/tooling.md §3), so this module plays ECS for the local world. Failure modes are
chosen per job by an env var the demo workload sets (``LOCAL_FAILURE``), because a real
failure (an image that cannot be pulled, a container killed for memory) has no cause the
simulation could observe otherwise.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import requests

ACQUIRE_JOB_ENV = "BUILDKITE_AGENT_ACQUIRE_JOB"
FAILURE_ENV = "LOCAL_FAILURE"
AGENT_EXIT_NOT_ACQUIRABLE = 27
# A token refused at registration (401): the agent exits 1 without retrying
# (docs/reference/stacks-api.md §3.9).
AGENT_EXIT_TOKEN_REFUSED = 1
# The 422 at registration that v4.0.3 agents exit 27 on, matched by status and text, as
# the agent does (buildkite/agent#4355; docs/reference/stacks-api.md §3.9).
NOT_ELIGIBLE_AT_REGISTRATION = "Job is not eligible for job acquisition registration"
_HTTP_TIMEOUT = 10.0


class Failure(StrEnum):
    NONE = ""
    IMAGE_PULL = "image_pull"
    SECRETS = "secrets"
    OUT_OF_MEMORY = "out_of_memory"
    SPOT = "spot"
    # PENDING for FargateTiming.slow_start_seconds more (a large image's pull).
    SLOW_START = "slow_start"
    # PENDING until stopped (no capacity, a pull that never ends).
    STUCK = "stuck"


class Phase(StrEnum):
    PROVISIONING = "PROVISIONING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


@dataclass
class SimTask:
    arn: str
    cluster_arn: str
    task_definition_arn: str
    started_by: str | None
    group: str | None
    overrides: dict[str, Any]
    created_at: datetime
    # When RunTask created the task (moto's createdAt): dispatch latency ends here.
    run_task_at: datetime
    job_uuid: str | None
    phase: Phase = Phase.PROVISIONING
    version: int = 1
    failure: Failure = Failure.NONE
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None
    agent: threading.Thread | None = None
    timeline: dict[str, datetime] = field(default_factory=dict)
    # The agent container's environment: the task definition's secrets (read with its
    # execution role) under the RunTask override, as ECS composes it.
    environment: dict[str, str] = field(default_factory=dict, repr=False)
    # The role the job's code runs as: the override's (PipelineTaskRoles), else the
    # definition's task role.
    task_role: str | None = None
    # The image the job ran in (the agent container's, per its task definition; an image
    # pulled through a cache by its upstream's qualified name).
    image: str | None = None
    # Set when something else stopped the task (StopTask: the stack's sweep), its reason.
    stopped_by: str | None = None
    # Its agent had acquired the job when it was stopped so.
    stopped_after_acquire: bool = False


@dataclass(frozen=True)
class FargateTiming:
    provisioning_seconds: float = 0.2
    pending_seconds: float = 0.2
    command_timeout_seconds: float = 30.0
    # The wait between two attempts of one agent call. The real agent waits 1-10 s
    # (docs/reference/aws.md §A.2); the local world compresses time, as for the phases.
    agent_retry_seconds: float = 0.5
    # Failure.SLOW_START's extra PENDING time: longer than the stack's 5 s sweep.
    slow_start_seconds: float = 8.0


# How many times the real agent tries each call before it gives up, retrying connection
# errors, timeouts, 429 and 5xx and nothing else (buildkite/agent `core/client.go` and
# `api/retryable.go`; docs/reference/aws.md §A.2). Without them the simulated agent exited 1
# on the first timeout of a 2,000-task burst, which the real one would have ridden out.
REGISTER_ATTEMPTS, CONNECT_ATTEMPTS, ACQUIRE_ATTEMPTS = 30, 10, 7
START_ATTEMPTS, FINISH_ATTEMPTS, DISCONNECT_ATTEMPTS = 7, 12, 4


class SimulatedAgent:
    """The slice of `buildkite-agent start --acquire-job` the local world needs: register,
    acquire (422 -> exit 27), start, run the command in a subprocess, finish."""

    def __init__(self, base_url: str, timing: FargateTiming) -> None:
        self._base = base_url
        self._timing = timing
        # (job uuid, token) of every task whose token Buildkite refused, at registration or
        # at acquire: the soak tells those it expired on purpose from the rest (which must
        # be none).
        self.refused: list[tuple[str, str]] = []
        # Jobs an agent acquired (the soak's "stopped after their agent took the job").
        self.acquired: set[str] = set()
        self._lock = threading.Lock()

    def took(self, job_uuid: str) -> bool:
        with self._lock:
            return job_uuid in self.acquired

    @property
    def tokens_refused(self) -> int:
        with self._lock:
            return len(self.refused)

    def _call(
        self,
        session: requests.Session,
        method: str,
        path: str,
        attempts: int,
        *,
        retry_statuses: frozenset[int] = frozenset({429}),
        **kwargs: Any,
    ) -> requests.Response:
        """One agent call with the real agent's retries: a connection error, a timeout, a
        5xx or a status in ``retry_statuses`` is tried again, up to ``attempts`` in all; the
        last failure is raised (the agent then exits 1)."""
        for attempt in range(1, attempts + 1):
            try:
                response = session.request(
                    method, self._base + path, timeout=_HTTP_TIMEOUT, **kwargs
                )
            except requests.RequestException:
                if attempt == attempts:
                    raise
            else:
                if response.status_code < 500 and response.status_code not in retry_statuses:
                    return response
                if attempt == attempts:
                    return response
            time.sleep(self._timing.agent_retry_seconds)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _refused(self, job_uuid: str, token: str) -> int:
        with self._lock:
            self.refused.append((job_uuid, token))
        return AGENT_EXIT_TOKEN_REFUSED

    def run(
        self,
        job_uuid: str,
        *,
        token: str,
        killed_while_running: bool = False,
        stopped: bool = False,
        environment: Mapping[str, str] | None = None,
    ) -> int:
        """The agent's exit code. ``killed_while_running`` plays a container killed (out of
        memory) after the job started: the job is never finished. ``stopped`` plays ECS
        stopping the task (a Spot interruption) while the job runs: the task's entrypoint
        turns ECS's SIGTERM into SIGQUIT, so the agent cancels the job and finishes it as
        the real one does, exit status -1, signal SIGTERM (the job process ends on the
        cancel signal) and signal reason ``agent_stop``, then exits 0
        (docs/reference/aws.md §H.20). ``token`` is what the task's environment holds
        (``BUILDKITE_AGENT_TOKEN``: a JAT, or the agent token's secret): a wrong or expired
        one fails registration, and the agent exits 1."""
        session = requests.Session()
        access = self._register(session, job_uuid, token)
        if isinstance(access, int):
            return access
        headers = {"Authorization": f"Token {access}"}
        self._call(session, "POST", "connect", CONNECT_ATTEMPTS, headers=headers)
        acquired = self._call(
            session,
            "PUT",
            f"jobs/{job_uuid}/acquire",
            ACQUIRE_ATTEMPTS,
            retry_statuses=frozenset({423, 429}),  # 423: waiting on a dependency
            headers={**headers, "X-Buildkite-Lock-Acquire-Job": "1"},
        )
        if acquired.status_code == 422:
            return AGENT_EXIT_NOT_ACQUIRABLE
        if acquired.status_code == 401:
            # The session died with its token. The agent logs any other 4xx and does not
            # retry (docs/reference/stacks-api.md §7); its exit code is UNCONFIRMED: 1.
            return self._refused(job_uuid, token)
        acquired.raise_for_status()
        with self._lock:
            self.acquired.add(job_uuid)
        job = acquired.json()
        self._call(session, "PUT", f"jobs/{job_uuid}/start", START_ATTEMPTS, headers=headers)
        if killed_while_running:
            return 137
        if stopped:
            self._finish(
                session,
                job_uuid,
                headers,
                {"exit_status": "-1", "signal": "SIGTERM", "signal_reason": "agent_stop"},
            )
            return 0
        exit_status = _checkout(job.get("env") or {}, environment or {})
        if exit_status == 0:
            exit_status = self._execute(
                str(job.get("command") or job.get("env", {}).get("BUILDKITE_COMMAND", "true"))
            )
        # The agent sends the exit status as a string.
        self._finish(session, job_uuid, headers, {"exit_status": str(exit_status)})
        return 0

    def _finish(
        self,
        session: requests.Session,
        job_uuid: str,
        headers: dict[str, str],
        body: dict[str, str],
    ) -> None:
        self._call(
            session, "PUT", f"jobs/{job_uuid}/finish", FINISH_ATTEMPTS, json=body, headers=headers
        )
        self._call(session, "POST", "disconnect", DISCONNECT_ATTEMPTS, headers=headers)

    def _register(self, session: requests.Session, job_uuid: str, token: str) -> str | int:
        """The session's access token, or the agent's exit code if registration failed."""
        registered = self._call(
            session,
            "POST",
            "register",
            REGISTER_ATTEMPTS,
            json={"name": f"fargate-{job_uuid[:8]}", "ignore_in_dispatches": True},
            headers={"Authorization": f"Token {token}"},
        )
        if registered.status_code == 401:
            return self._refused(job_uuid, token)
        if registered.status_code == 422 and _message(registered) == NOT_ELIGIBLE_AT_REGISTRATION:
            return AGENT_EXIT_NOT_ACQUIRABLE  # canceled, or taken, since its token was issued
        registered.raise_for_status()
        return str(registered.json()["access_token"])

    def _execute(self, command: str) -> int:
        try:
            done = subprocess.run(  # noqa: S602 - the job's command is a shell line, as for the agent
                command,
                shell=True,  # nosec B602
                capture_output=True,
                timeout=self._timing.command_timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return -1
        return done.returncode


def _checkout(job_env: Mapping[str, str], container: Mapping[str, str]) -> int:
    """The checkout's part the local world can check: a private repository needs the
    credential its remote uses in the container's environment, where ECS put the task
    definition's secrets (GitSshKeySecretArn: SSH_PRIVATE_RSA_KEY; GitCredentialsSecretArn:
    BUILDKITE_FARGATE_GIT_CREDENTIALS, naming the host). Without it git fails, exit 128."""
    repo = job_env.get("BUILDKITE_REPO", "")
    if repo.startswith("git@"):
        return 0 if container.get("SSH_PRIVATE_RSA_KEY", "").strip() else 128
    if repo.startswith("https://"):
        host = repo.split("/", 3)[2]
        return 0 if f"@{host}" in container.get("BUILDKITE_FARGATE_GIT_CREDENTIALS", "") else 128
    return 0


def _message(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _container_arn(task_arn: str) -> str:
    container_id = uuid.uuid5(uuid.NAMESPACE_URL, task_arn)
    return f"{task_arn.replace(':task/', ':container/')}/{container_id}"


def task_state_change_event(task: SimTask, *, account: str, region: str) -> dict[str, Any]:
    """An ECS Task State Change event shaped like the published captures in events/."""
    detail: dict[str, Any] = {
        "attachments": [],
        "availabilityZone": f"{region}a",
        "clusterArn": task.cluster_arn,
        "connectivity": "CONNECTED" if task.phase is not Phase.PROVISIONING else None,
        "containers": [
            {
                "containerArn": _container_arn(task.arn),
                "lastStatus": task.phase.value,
                "name": "agent",
                "taskArn": task.arn,
                **({"exitCode": task.exit_code} if task.exit_code is not None else {}),
                **({"reason": task.container_reason} if task.container_reason else {}),
            }
        ],
        "createdAt": _iso(task.created_at),
        "desiredStatus": "STOPPED" if task.phase is Phase.STOPPED else "RUNNING",
        "group": task.group,
        "launchType": "FARGATE",
        "lastStatus": task.phase.value,
        "overrides": task.overrides,
        "platformVersion": "1.4.0",
        "startedBy": task.started_by,
        "taskArn": task.arn,
        "taskDefinitionArn": task.task_definition_arn,
        "updatedAt": _iso(_now()),
        "version": task.version,
    }
    if task.phase is Phase.STOPPED:
        detail.update(
            {
                "stopCode": task.stop_code,
                "stoppedAt": _iso(_now()),
                "stoppedReason": task.stopped_reason,
                "stoppingAt": _iso(_now()),
            }
        )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account,
        "time": _iso(_now()),
        "region": region,
        "resources": [task.arn],
        "detail": detail,
    }


EventSink = Callable[[dict[str, Any]], None]
FailureLookup = Callable[[str], Failure]
AGENT_CONTAINER = "agent"


class TaskDefinitions:
    """Task definitions as ECS holds them, described once each: the simulated Fargate
    starts what they say, and the secrets puller reads their ``secrets``."""

    def __init__(self, ecs: Any) -> None:
        self._ecs = ecs
        self._found: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, arn: str) -> dict[str, Any]:
        with self._lock:
            if arn not in self._found:
                answer = self._ecs.describe_task_definition(taskDefinition=arn)
                self._found[arn] = answer["taskDefinition"]
            return self._found[arn]


# Docker Hub's unauthenticated pulls: 10 an hour per IPv4 address, each task's pull
# counted; the tasks share their NAT address (docs/reference/aws.md §H.7).
DOCKER_HUB_PULLS_PER_HOUR = 10
_DOCKER_HUB = "docker.io"


def qualified(image: str) -> str:
    """Docker's short names spelled out (node:22 -> docker.io/library/node:22), as a registry
    client resolves them: a first component with a dot or a port, or localhost, is a host."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"{_DOCKER_HUB}/{image}" if sep else f"{_DOCKER_HUB}/library/{image}"


@dataclass
class Registry:
    """The images the local world's registries hold, by qualified reference -> whether it
    holds the agent (a step's toolchain image does not), and every tag of the agent's
    repository (a stack update may move AgentImage to another). ``caches`` are the ECR
    pull-through caches (upstream -> cache path): an image under one is its upstream's.
    Direct Docker Hub pulls share one hourly allowance (``docker_hub_pulls_per_hour``, 0:
    none)."""

    images: dict[str, bool]
    agent_repository: str = ""
    caches: Mapping[str, str] = field(default_factory=dict)
    docker_hub_pulls_per_hour: int = DOCKER_HUB_PULLS_PER_HOUR
    _pulls: list[float] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    rate_limited: int = 0

    def _agent(self, image: str) -> bool:
        return bool(self.agent_repository) and image.startswith(f"{self.agent_repository}:")

    def upstream(self, image: str) -> tuple[str, bool]:
        """The image's qualified upstream reference, and whether it comes from a cache."""
        for registry, path in self.caches.items():
            if image.startswith(f"{path}/"):
                return f"{registry}/{image.removeprefix(path + '/')}", True
        return qualified(image), False

    def pull(self, image: str) -> str | None:
        """Why pulling ``image`` fails now, or None."""
        if self._agent(image):
            return None
        source, cached = self.upstream(image)
        if source not in self.images:
            return _pull_error(image)
        if not cached and source.startswith(f"{_DOCKER_HUB}/") and not self._docker_hub_allows():
            return _rate_limited(image)
        return None

    def has_agent(self, image: str) -> bool:
        return self._agent(image) or self.images.get(self.upstream(image)[0], False)

    def _docker_hub_allows(self) -> bool:
        if not self.docker_hub_pulls_per_hour:
            return True
        with self._lock:
            now = time.monotonic()
            self._pulls = [t for t in self._pulls if now - t < 3600]
            if len(self._pulls) >= self.docker_hub_pulls_per_hour:
                self.rate_limited += 1
                return False
            self._pulls.append(now)
            return True


def _rate_limited(image: str) -> str:
    # Docker's answer past the limit, as a pull error (docs/reference/aws.md §H.7; how ECS
    # wraps it is UNCONFIRMED: events/README.md).
    return (
        "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to "
        f"resolve ref {qualified(image)}: pulling from host registry-1.docker.io failed with "
        "status code [manifests 1]: 429 Too Many Requests - toomanyrequests: You have reached "
        "your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"
    )


def _pull_error(image: str) -> str:
    # The shape of a real pull failure (docs/reference/aws.md §B.6), with the reference.
    return (
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
        f"failed to resolve ref {image}: not found"
    )


class SimulatedFargate:
    """Drive with ``tick()`` from the local world's loop; agents run on their own threads."""

    def __init__(
        self,
        *,
        ecs: Any,
        cluster: str,
        agent: SimulatedAgent,
        emit: EventSink,
        failure_of: FailureLookup,
        timing: FargateTiming,
        account: str = "123456789012",
        region: str = "us-east-1",
        pull_secrets: Callable[[str], tuple[dict[str, str], str | None]] | None = None,
        before_agent: Callable[[str], None] | None = None,
        on_admit: Callable[[str], None] | None = None,
        definitions: TaskDefinitions | None = None,
        registry: Registry | None = None,
    ) -> None:
        self._ecs = ecs
        self.definitions = definitions or TaskDefinitions(ecs)
        # None: every image pulls and holds the agent (tests of other parts).
        self._registry = registry
        # Called with the job uuid as a task's container starts, before its agent registers
        # (the soak cancels some jobs there).
        self._before_agent = before_agent
        # Called with the job uuid as a task is created (PROVISIONING): the demo and the
        # soak cancel some jobs there, for the stack to stop their tasks.
        self._on_admit = on_admit
        # Fargate reads a task's `secrets` with its task execution role before the container
        # starts; this answers their values, or the error code if it could not.
        self._pull_secrets = pull_secrets
        self._cluster = cluster
        self.agent = agent
        self._emit = emit
        self._failure_of = failure_of
        self._timing = timing
        self._account = account
        self._region = region
        self.tasks: dict[str, SimTask] = {}
        self._results: dict[str, int] = {}
        self._lock = threading.Lock()

    def tick(self) -> None:
        self._discover()
        for task in list(self.tasks.values()):
            self._advance(task)

    def busy(self) -> bool:
        return any(task.phase is not Phase.STOPPED for task in self.tasks.values())

    def _discover(self) -> None:
        arns = self._ecs.list_tasks(cluster=self._cluster, desiredStatus="RUNNING").get(
            "taskArns", []
        )
        listed = set(arns)
        # Ours, not stopped by us, and no longer desired RUNNING: StopTask (the stack's).
        gone = [
            t.arn
            for t in self.tasks.values()
            if t.phase is not Phase.STOPPED and t.arn not in listed
        ]
        for start in range(0, len(gone), 100):
            described = self._ecs.describe_tasks(
                cluster=self._cluster, tasks=gone[start : start + 100]
            )
            for raw in described.get("tasks", []):
                self._stopped_by_call(self.tasks[raw["taskArn"]], raw.get("stoppedReason") or "")
        new = [arn for arn in arns if arn not in self.tasks]
        for start in range(0, len(new), 100):
            described = self._ecs.describe_tasks(
                cluster=self._cluster, tasks=new[start : start + 100]
            )
            for raw in described.get("tasks", []):
                self._admit(raw)

    def _admit(self, raw: dict[str, Any]) -> None:
        overrides = raw.get("overrides") or {}
        env = {
            item["name"]: item["value"]
            for container in overrides.get("containerOverrides", [])
            for item in container.get("environment", [])
        }
        job_uuid = env.get(ACQUIRE_JOB_ENV)
        definition = self.definitions.get(raw["taskDefinitionArn"])
        task = SimTask(
            environment=env,
            arn=raw["taskArn"],
            cluster_arn=raw["clusterArn"],
            task_definition_arn=raw["taskDefinitionArn"],
            started_by=raw.get("startedBy"),
            group=raw.get("group"),
            overrides=overrides,
            created_at=_now(),
            run_task_at=raw.get("createdAt") or _now(),
            job_uuid=job_uuid,
            failure=self._failure_of(job_uuid) if job_uuid else Failure.NONE,
            task_role=overrides.get("taskRoleArn") or definition.get("taskRoleArn"),
            image=self._ran_in(_container(definition, AGENT_CONTAINER).get("image")),
        )
        task.timeline["provisioning"] = task.created_at
        self.tasks[task.arn] = task
        self._publish(task)
        if self._on_admit is not None and job_uuid:
            self._on_admit(job_uuid)

    def _ran_in(self, image: str | None) -> str | None:
        """The image a task's job runs in, by its upstream's qualified name (a cache's
        path is its upstream's image)."""
        if image is None or self._registry is None:
            return image
        return self._registry.upstream(image)[0]

    def _start_problem(self, task: SimTask) -> str | None:
        """Why the task's containers cannot start as its definition says, or None: an image
        that cannot be pulled, or a job container whose image has no agent and no setup
        container (dependsOn SUCCESS) copying one in."""
        if self._registry is None:
            return None
        definition = self.definitions.get(task.task_definition_arn)
        containers = definition.get("containerDefinitions", [])
        for container in containers:
            problem = self._registry.pull(container["image"])
            if problem is not None:
                return problem
        job = _container(definition, AGENT_CONTAINER)
        setups = {
            d["containerName"] for d in job.get("dependsOn", []) if d["condition"] == "SUCCESS"
        }
        copied = any(
            c["name"] in setups
            and not c.get("essential", True)
            and self._registry.has_agent(c["image"])
            for c in containers
        )
        if not copied and not self._registry.has_agent(job["image"]):
            return (
                "CannotStartContainerError: ResourceInitializationError: failed to create new "
                'container runtime task: exec: "buildkite-agent": executable file not found '
                "in $PATH"
            )
        return None

    def _advance(self, task: SimTask) -> None:
        age = (_now() - task.created_at).total_seconds()
        if task.phase is Phase.PROVISIONING and age >= self._timing.provisioning_seconds:
            if task.failure is Failure.IMAGE_PULL:
                return self._stop(
                    task,
                    "TaskFailedToStart",
                    "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                    "failed to resolve ref docker.io/library/no-such-image:latest: not found",
                )
            if task.failure is Failure.SECRETS:
                return self._stop(
                    task,
                    "TaskFailedToStart",
                    "ResourceInitializationError: unable to pull secrets or registry auth: "
                    "execution resource retrieval failed: unable to retrieve secret from asm: "
                    "AccessDeniedException",
                )
            problem = self._start_problem(task)
            if problem is not None:
                return self._stop(task, "TaskFailedToStart", problem)
            secrets, denied = (
                self._pull_secrets(task.task_definition_arn) if self._pull_secrets else ({}, None)
            )
            task.environment = {**secrets, **task.environment}
            if denied:
                return self._stop(
                    task,
                    "TaskFailedToStart",
                    "ResourceInitializationError: unable to pull secrets or registry auth: "
                    f"execution resource retrieval failed: unable to retrieve secret from asm: "
                    f"{denied}",
                )
            self._move(task, Phase.PENDING)
        elif task.phase is Phase.PENDING and age >= self._pending_until(task):
            # Told to ECS first: a task stopped meanwhile (the stack's StopTask) never runs.
            answer = self._ecs.submit_task_state_change(
                cluster=self._cluster, task=task.arn, status=Phase.RUNNING.value
            )
            if answer.get("acknowledgment") == "STOPPED":
                return None  # the next _discover finds it stopped, with its reason
            self._move(task, Phase.RUNNING)
            self._start_agent(task)
        elif task.phase is Phase.RUNNING:
            self._finish_if_agent_done(task)
        return None

    def _pending_until(self, task: SimTask) -> float:
        if task.failure is Failure.STUCK:
            return float("inf")
        extra = self._timing.slow_start_seconds if task.failure is Failure.SLOW_START else 0.0
        return self._timing.provisioning_seconds + self._timing.pending_seconds + extra

    def _stopped_by_call(self, task: SimTask, reason: str) -> None:
        """StopTask from outside the simulation: ECS stops the task (UserInitiated) and
        its agent with it."""
        task.stop_code, task.stopped_reason, task.stopped_by = "UserInitiated", reason, reason
        if task.job_uuid is not None and task.agent is not None:
            task.stopped_after_acquire = self.agent.took(task.job_uuid)
        self._move(task, Phase.STOPPED)

    def _start_agent(self, task: SimTask) -> None:
        if task.job_uuid is None:
            return
        job = task.job_uuid

        killed = task.failure is Failure.OUT_OF_MEMORY
        stopped = task.failure is Failure.SPOT
        if self._before_agent is not None:
            self._before_agent(job)

        def run() -> None:
            try:
                code = self.agent.run(
                    job,
                    token=task.environment.get("BUILDKITE_AGENT_TOKEN", ""),
                    killed_while_running=killed,
                    stopped=stopped,
                    environment=task.environment,
                )
            except requests.RequestException:
                code = 1
            with self._lock:
                self._results[task.arn] = code

        task.agent = threading.Thread(target=run, name=f"agent-{job[:8]}", daemon=True)
        task.agent.start()

    def _finish_if_agent_done(self, task: SimTask) -> None:
        with self._lock:
            code = self._results.get(task.arn)
        if code is None:
            return
        # Both failures strike a job the agent runs; an agent that never took its job (token
        # refused, job not acquirable) exited by itself first (found by the soak).
        took_job = code not in (AGENT_EXIT_TOKEN_REFUSED, AGENT_EXIT_NOT_ACQUIRABLE)
        if task.failure is Failure.OUT_OF_MEMORY and took_job:
            task.exit_code, task.container_reason = (
                137,
                "OutOfMemoryError: Container killed due to memory usage",
            )
            self._stop(task, "EssentialContainerExited", "Essential container in task exited")
        elif task.failure is Failure.SPOT and took_job:
            task.exit_code = code  # the agent canceled its job and exited by itself
            self._stop(task, "SpotInterruption", "Your Spot Task was interrupted.")
        else:
            task.exit_code = code
            self._stop(task, "EssentialContainerExited", "Essential container in task exited")

    def _move(self, task: SimTask, phase: Phase) -> None:
        task.phase = phase
        task.version += 1
        task.timeline[phase.value.lower()] = _now()
        self._publish(task)

    def _stop(self, task: SimTask, code: str, reason: str) -> None:
        task.stop_code, task.stopped_reason = code, reason
        self._ecs.stop_task(cluster=self._cluster, task=task.arn, reason=reason)
        self._move(task, Phase.STOPPED)

    def _publish(self, task: SimTask) -> None:
        self._emit(task_state_change_event(task, account=self._account, region=self._region))


def _container(definition: dict[str, Any], name: str) -> dict[str, Any]:
    for container in definition.get("containerDefinitions", []):
        if container.get("name") == name:
            return dict(container)
    return {}


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
