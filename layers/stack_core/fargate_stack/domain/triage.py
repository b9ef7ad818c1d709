"""Why an ECS task stopped, in words a developer can act on.

The failure handler calls FailJob only when the agent never took the job; this module
only explains the stop. The table is ordered: the first row whose matcher fits wins, so
specific causes (image pull, secrets) come before the generic stop codes. Every row cites
where the stop code or reason text is documented or was observed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from fargate_stack.domain.starting_tasks import is_timeout_stop

# Exit code of `buildkite-agent start --acquire-job` when Buildkite refuses the job
# (canceled, already running elsewhere, already ran): buildkite/agent
# clicommand/agent_start.go (ErrJobAcquisitionRejected -> 27); docs/reference/stacks-api.md §7.
AGENT_EXIT_JOB_NOT_ACQUIRABLE = 27

# The agent's exit for a fatal error, among them a token Buildkite refuses at registration
# (invalid or expired: exit 1, no retries): docs/reference/stacks-api.md §3.9, from
# buildkite/agent#4355.
AGENT_EXIT_FATAL = 1
_EXIT_1_HINT = (
    " It could not register or take the job: Buildkite refused its token (a job acquisition"
    " token that expired before the task started, for one) or could not be reached; the"
    " task's log has the agent's error."
)

# The stack's own entrypoint (template.yaml) exits 78 (EX_CONFIG) when it cannot store
# GitCredentialsSecretArn's credentials for git, before the agent starts.
ENTRYPOINT_EXIT_GIT_CREDENTIALS = 78
_HINTS = {
    AGENT_EXIT_FATAL: _EXIT_1_HINT,
    ENTRYPOINT_EXIT_GIT_CREDENTIALS: (
        " The stack's entrypoint could not store GitCredentialsSecretArn's credentials for"
        " git (is git in the image?); the task's log has the line."
    ),
}

# Container `reason` is at most 1024 characters (botocore ecs Container.reason); we quote
# at most this much of any AWS text so a FailJob detail stays readable and under 4 KB.
_QUOTE_MAX = 600


class StopReason(StrEnum):
    """Bounded set of stop causes: a metric dimension and the first word of a FailJob."""

    IMAGE_PULL = "image_pull"
    # A registry refused the pull for its rate limit (Docker Hub: 10 unauthenticated pulls
    # an hour per address; every task pulls afresh).
    REGISTRY_RATE_LIMIT = "registry_rate_limit"
    SECRETS = "secrets"
    RESOURCE_INITIALIZATION = "resource_initialization"
    NETWORK_PROVISIONING = "network_provisioning"
    CAPACITY = "capacity"
    OUT_OF_MEMORY = "out_of_memory"
    SPOT_INTERRUPTION = "spot_interruption"
    TASK_FAILED_TO_START = "task_failed_to_start"
    USER_INITIATED = "user_initiated"
    JOB_NOT_ACQUIRABLE = "job_not_acquirable"
    AGENT_EXITED = "agent_exited"
    UNKNOWN = "unknown"
    # No task ever ran: the launcher's retries ran out and the record reached its DLQ.
    LAUNCH_GAVE_UP = "launch_gave_up"
    # The stack stopped the task: still starting past ProvisioningTimeoutSeconds.
    PROVISIONING_TIMEOUT = "provisioning_timeout"


@dataclass(frozen=True, slots=True)
class StoppedTask:
    """The parts of a STOPPED task (event detail or DescribeTasks) that explain the stop."""

    task_arn: str
    stop_code: str | None
    stopped_reason: str | None
    agent_exit_code: int | None
    agent_reason: str | None


@dataclass(frozen=True, slots=True)
class Triage:
    reason: StopReason
    detail: str
    # False only when the agent itself says Buildkite refused the job: failing it would
    # overwrite a cancelation or a run by another agent.
    may_fail_job: bool = True


def _text(task: StoppedTask) -> str:
    return f"{task.stopped_reason or ''}\n{task.agent_reason or ''}"


def _quote(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 1] + "…"


def _task_id(task: StoppedTask) -> str:
    return task.task_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class _Row:
    reason: StopReason
    matches: Callable[[StoppedTask], bool]
    explain: Callable[[StoppedTask], str]
    source: str


def _contains(*needles: str) -> Callable[[StoppedTask], bool]:
    return lambda task: any(n in _text(task) for n in needles)


def _stop_code(*codes: str) -> Callable[[StoppedTask], bool]:
    return lambda task: task.stop_code in codes


def _reason_of(task: StoppedTask) -> str:
    return _quote(task.agent_reason or task.stopped_reason)


TRIAGE_TABLE: tuple[_Row, ...] = (
    _Row(
        StopReason.PROVISIONING_TIMEOUT,
        lambda t: is_timeout_stop(t.stop_code, t.stopped_reason),
        lambda t: (
            "The task never started running: the stack stopped it "
            f"({_quote(t.stopped_reason)}). Fargate had no capacity for it or its image pull "
            "did not end; docs/operations.md, 'Stuck and canceled tasks', says what to check."
        ),
        "domain/starting_tasks.py (the stack's own StopTask reason, stopCode UserInitiated)",
    ),
    _Row(
        StopReason.JOB_NOT_ACQUIRABLE,
        lambda t: t.agent_exit_code == AGENT_EXIT_JOB_NOT_ACQUIRABLE,
        lambda t: (
            "The agent could not acquire the job (exit 27): it was canceled, "
            "or already ran or is running elsewhere."
        ),
        "buildkite/agent clicommand/agent_start.go: ErrJobAcquisitionRejected exits 27",
    ),
    _Row(
        StopReason.REGISTRY_RATE_LIMIT,
        _contains("toomanyrequests", "pull rate limit", "429 Too Many Requests"),
        lambda t: (
            "The registry refused the image pull for its rate limit (Docker Hub allows 10 "
            "unauthenticated pulls an hour per address, and every task pulls afresh): pull "
            "Docker Hub images through the stack's ECR pull-through cache "
            f"(DockerHubCacheSecretArn), or from ECR: {_reason_of(t)}"
        ),
        "docs/reference/aws.md §H.7 (Docker Hub pull usage and limits)",
    ),
    _Row(
        StopReason.IMAGE_PULL,
        _contains("CannotPullContainerError", "pull image manifest", "PullImageError"),
        lambda t: (
            "The task's image could not be pulled, the agent image or the step's image: "
            "(check the image name, registry access, PrivateImageRepositoryArns for a "
            f"private ECR image, and the subnets' route to the registry): {_reason_of(t)}"
        ),
        "docs/reference/aws.md §B.6 (CannotPullContainerError)",
    ),
    _Row(
        StopReason.SECRETS,
        _contains("unable to pull secrets", "retrieve secret from asm", "Fetching secret data"),
        lambda t: (
            "The task could not read its secrets (check that the secrets the stack names "
            "exist: AgentTokenSecretArn, GitSshKeySecretArn, GitCredentialsSecretArn; that "
            "a customer key is SecretsKmsKeyArn; and the network path to Secrets Manager): "
            f"{_reason_of(t)}"
        ),
        "re:Post ecs-fargate-pull-container-error; sample ecs-stopped-resource-init-secret",
    ),
    _Row(
        StopReason.NETWORK_PROVISIONING,
        _contains("Timeout waiting for network interface provisioning"),
        lambda t: (
            "Fargate timed out attaching the task's network interface (subnet IPs "
            f"or ENI limits): {_reason_of(t)}"
        ),
        "dagster-aws ecs/utils.py is_transient_task_stopped_reason (observed text)",
    ),
    _Row(
        StopReason.RESOURCE_INITIALIZATION,
        _contains("ResourceInitializationError", "Timeout waiting for EphemeralStorage"),
        lambda t: f"Fargate could not initialise the task's resources: {_reason_of(t)}",
        "docs/reference/aws.md §B.6 (ResourceInitializationError)",
    ),
    _Row(
        StopReason.CAPACITY,
        _contains("Capacity is unavailable", "RESOURCE:"),
        lambda t: (
            f"Fargate had no capacity for the task; Buildkite may retry the job: {_reason_of(t)}"
        ),
        "re:Post ecs-fargate-runtask-capacity; ECS api_failures_messages",
    ),
    _Row(
        StopReason.OUT_OF_MEMORY,
        _contains("OutOfMemoryError"),
        lambda t: (
            "The agent container ran out of memory (raise the task memory, e.g. "
            f"with a memory= agent tag if allowed): {_reason_of(t)}"
        ),
        "sample ecs-stopped-oom (DEFRA capture): OutOfMemoryError with exit code 1",
    ),
    _Row(
        StopReason.SPOT_INTERRUPTION,
        _stop_code("SpotInterruption", "TerminationNotice"),
        lambda t: f"Fargate Spot reclaimed the task: {_quote(t.stopped_reason)}",
        "docs/reference/aws.md §B.6 (TaskStopCode; Spot interruption)",
    ),
    _Row(
        StopReason.TASK_FAILED_TO_START,
        _stop_code("TaskFailedToStart"),
        lambda t: f"The Fargate task failed to start: {_reason_of(t)}",
        "botocore ecs TaskStopCode TaskFailedToStart",
    ),
    _Row(
        StopReason.USER_INITIATED,
        _stop_code("UserInitiated"),
        lambda t: f"The task was stopped by a user or API call: {_quote(t.stopped_reason)}",
        "botocore ecs TaskStopCode UserInitiated; sample ecs-stopped-user-initiated",
    ),
    _Row(
        StopReason.AGENT_EXITED,
        lambda t: t.agent_exit_code is not None,
        lambda t: (
            f"The agent container exited with code {t.agent_exit_code} before running the job."
            + _HINTS.get(t.agent_exit_code or 0, "")
        ),
        "docs/reference/aws.md §B.6 (EssentialContainerExited: containers[].exitCode); "
        "buildkite/agent#4355 (a refused token exits 1, no retries); template.yaml's "
        "entrypoint (78: git credentials not stored)",
    ),
)


def triage(task: StoppedTask) -> Triage:
    """Explain a stop; the detail always names the task so an operator can find it."""
    for row in TRIAGE_TABLE:
        if row.matches(task):
            detail = f"{row.explain(task)} (ECS task {_task_id(task)})"
            return Triage(
                reason=row.reason,
                detail=detail,
                may_fail_job=row.reason is not StopReason.JOB_NOT_ACQUIRABLE,
            )
    detail = (
        f"The Fargate task stopped ({task.stop_code or 'no stop code'}): "
        f"{_quote(task.stopped_reason) or 'no reason given'} (ECS task {_task_id(task)})"
    )
    return Triage(reason=StopReason.UNKNOWN, detail=detail)
