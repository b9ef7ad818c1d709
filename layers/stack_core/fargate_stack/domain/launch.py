"""From a reserved job to the exact ECS RunTask request: every launch decision, pure.

Job data is untrusted input (it comes from whoever can push a pipeline): agent query rules
may ask for a size only where the operator allowed it, and never for another task
definition. The job's own env and command never enter the overrides (the agent fetches
them itself when it acquires the job), so nothing a job says can reach the agent's token or
the stack's variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import SecretStr

from fargate_stack.domain.fargate import InvalidTaskSizeError, validate_task_size
from fargate_stack.domain.task_identity import ACQUIRE_JOB_ENV, started_by, task_group

# The agent registers with this token; a JAT there, with BUILDKITE_AGENT_ACQUIRE_JOB, runs
# that one job (docs/reference/stacks-api.md §3.9). A variable's name, not a secret:
AGENT_TOKEN_ENV = "BUILDKITE_AGENT_TOKEN"  # noqa: S105  # nosec B105


class AgentTokenMode(StrEnum):
    """How a task gets its agent token (template AgentTokenMode)."""

    # Modes' names, not tokens.
    JOB_ACQUISITION_TOKEN = "job-acquisition-token"  # noqa: S105  # nosec B105
    AGENT_TOKEN = "agent-token"  # noqa: S105  # nosec B105


# Total size of RunTask `overrides`, JSON formatting included (botocore ecs TaskOverride;
# docs/reference/aws.md §B.1).
OVERRIDES_MAX_CHARS = 8192
# clientToken: at most 64 ASCII characters (botocore ecs RunTaskRequest.clientToken).
CLIENT_TOKEN_MAX = 64
# Tags: key <= 128, value <= 256 characters of letters, digits, spaces and + - = . _ : / @
# (botocore ecs Tag; docs/reference/aws.md §B.1).
_TAG_VALUE_MAX = 256
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9 +\-=._:/@]")
# An agent tag is k=v inside a comma-separated BUILDKITE_AGENT_TAGS; a comma or a control
# character in a job's rule would smuggle extra tags in, so such rules are not passed on.
# (Matched whole with fullmatch: `$` would let a trailing newline through.)
_AGENT_TAG_SAFE = re.compile(r"[A-Za-z0-9_.:/@+\-]+=[^,\x00-\x1f\x7f]*")

# PipelineTaskRoles: `<pipeline uuid>=<role arn>` pairs, comma-separated. A role's path and
# name may hold `=` and `,` in IAM, but here they would split a pair (and the template's
# PassRole list) in the wrong place, so they are refused; so are IAM's wildcards `*` `?`
# (a role ARN's form: docs/reference/aws.md §H.46). The template's AllowedPattern is the same.
PIPELINE_TASK_ROLES = "PipelineTaskRoles"
# The template's PassRole statement has this many slots, one per pair (template.yaml).
PIPELINE_TASK_ROLES_MAX = 20
_PIPELINE_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_ROLE_ARN = re.compile(
    r"arn:aws[a-z-]*:iam::[0-9]{12}:role/(?:[A-Za-z0-9_+.@-]+/)*[A-Za-z0-9_+.@-]+"
)

SIZE_RULES = ("cpu", "memory", "disk")
TASK_DEFINITION_RULE = "task-definition"
# Fargate's ephemeral storage (docs/reference/aws.md §B.5): 20 GiB unless the task definition
# or RunTask sets 21-200 GiB. 20 means "the default": it is never sent.
FARGATE_DEFAULT_DISK_GIB = 20
DISK_MIN_GIB = 21
DISK_MAX_GIB = 200


class Capacity(StrEnum):
    ON_DEMAND = "FARGATE"
    SPOT = "FARGATE_SPOT"


class CapacityStrategy(StrEnum):
    """The operator's choice; spot-with-fallback retries on on-demand when Spot has no
    capacity, instead of waiting for Spot to come back."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"
    SPOT_WITH_FALLBACK = "spot-with-fallback"

    def first_capacity(self) -> Capacity:
        return Capacity.ON_DEMAND if self is CapacityStrategy.ON_DEMAND else Capacity.SPOT

    def fallback(self, after: Capacity) -> Capacity | None:
        if self is CapacityStrategy.SPOT_WITH_FALLBACK and after is Capacity.SPOT:
            return Capacity.ON_DEMAND
        return None


class LaunchRejection(StrEnum):
    """Why a job can never launch as asked: the launch spec's own refusals and ECS refusing
    the RunTask. One bounded list, the ``reason`` dimension of ``LaunchFailed``."""

    SIZE_NOT_ALLOWED = "size_not_allowed"
    INVALID_SIZE = "invalid_task_size"
    TASK_DEFINITION_NOT_ALLOWED = "task_definition_not_allowed"
    OVERRIDES_TOO_LARGE = "overrides_too_large"
    ECS_REJECTED = "ecs_rejected"
    # Buildkite refused job acquisition tokens themselves (AgentTokenMode).
    JAT_UNAVAILABLE = "jat_unavailable"
    # ECS or IAM refused the pipeline's task role (PipelineTaskRoles): not passable, not
    # assumable by ECS, or missing. Retrying the same role cannot help.
    TASK_ROLE_REJECTED = "task_role_rejected"
    # A step's image (AllowedImages): not a valid reference, not allowed, a new task
    # definition over StepImageRegistrationsPerDay, or ECS refused to register it.
    INVALID_IMAGE = "invalid_image"
    IMAGE_NOT_ALLOWED = "image_not_allowed"
    IMAGE_REGISTRATIONS_EXHAUSTED = "image_registrations_exhausted"
    IMAGE_DEFINITION_REJECTED = "image_definition_rejected"
    # Any other permanent error's reason: the dimension stays bounded whatever it says.
    OTHER = "other"

    @classmethod
    def _missing_(cls, value: object) -> LaunchRejection:
        return cls.OTHER


class LaunchRejectedError(ValueError):
    def __init__(self, reason: LaunchRejection, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class LaunchConfig:
    """What the operator configured (from LauncherSettings)."""

    stack_key: str
    queue_key: str
    cluster: str
    task_definition: str
    container_name: str
    default_cpu: int
    default_memory: int
    subnets: Sequence[str]
    security_groups: Sequence[str]
    assign_public_ip: bool
    allow_size_overrides: bool = False
    # DefaultEphemeralStorageGiB (set in the task definition; here for the messages).
    default_disk_gib: int = FARGATE_DEFAULT_DISK_GIB
    # PipelineTaskRoles: pipeline uuid (lower case) -> task role ARN; empty = every job runs
    # as the task definition's own task role.
    pipeline_task_roles: Mapping[str, str] = field(default_factory=dict)


class PipelineTaskRolesError(ValueError):
    """PipelineTaskRoles does not parse; the message names the parameter and the pair."""


def parse_pipeline_task_roles(text: str) -> dict[str, str]:
    """``<pipeline uuid>=<role arn>,...`` -> {uuid (lower case): arn}; empty text, none.

    UUIDs, not slugs: a slug can be renamed, and a freed slug reused by another pipeline.
    A pipeline named twice is refused even with the same role: it is a copy-paste slip
    that would hide which line the operator meant."""
    roles: dict[str, str] = {}
    for index, pair in enumerate((p.strip() for p in text.split(",")), start=1):
        if not pair:
            if text.strip():
                raise PipelineTaskRolesError(f"{PIPELINE_TASK_ROLES}: pair {index} is empty")
            continue
        pipeline, sep, role = (part.strip() for part in pair.partition("="))
        if not sep:
            raise PipelineTaskRolesError(
                f"{PIPELINE_TASK_ROLES}: pair {index} {pair!r} is not <pipeline uuid>=<role arn>"
            )
        if not _PIPELINE_UUID.fullmatch(pipeline):
            raise PipelineTaskRolesError(
                f"{PIPELINE_TASK_ROLES}: pair {index}: {pipeline!r} is not a pipeline UUID "
                "(slugs can be renamed and reused)"
            )
        if not _ROLE_ARN.fullmatch(role):
            raise PipelineTaskRolesError(
                f"{PIPELINE_TASK_ROLES}: pair {index}: {role!r} is not an IAM role ARN, "
                "arn:<partition>:iam::<12 digits>:role/<path and name> (no = , * or ?)"
            )
        key = pipeline.lower()
        if key in roles:
            raise PipelineTaskRolesError(
                f"{PIPELINE_TASK_ROLES}: pipeline {key} is mapped more than once"
            )
        roles[key] = role
    if len(roles) > PIPELINE_TASK_ROLES_MAX:
        raise PipelineTaskRolesError(
            f"{PIPELINE_TASK_ROLES}: {len(roles)} pipelines; at most {PIPELINE_TASK_ROLES_MAX} "
            "(the launcher may pass only that many roles)"
        )
    return roles


def task_role_for(config: LaunchConfig, pipeline_uuid: str | None) -> str | None:
    """The operator's role for the job's pipeline, or None: no override, so the task runs
    as the task definition's default task role. The pipeline uuid is the scheduled-jobs
    listing's `pipeline.uuid` (Buildkite's, carried in the launch message), never the job's
    env, which a pipeline's author writes."""
    if pipeline_uuid is None:
        return None
    return config.pipeline_task_roles.get(pipeline_uuid.lower())


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """One RunTask request, already validated; ``to_run_task_kwargs`` is the boto3 call."""

    job_uuid: str
    cluster: str
    task_definition: str
    container_name: str
    cpu: int
    memory: int
    capacity: Capacity
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: bool
    environment: tuple[tuple[str, str], ...]
    started_by: str
    group: str
    client_token: str
    tags: tuple[tuple[str, str], ...]
    # The job acquisition token (AgentTokenMode=job-acquisition-token): only in the RunTask
    # request itself; a SecretStr, so no repr or log line shows it.
    agent_token: SecretStr | None = None
    # The pipeline's task role (PipelineTaskRoles), or None for the definition's own.
    task_role_arn: str | None = None
    # A job's disk= (GiB, RunTask's ephemeral storage override), or None for the definition's.
    disk_gib: int | None = None
    # The step image's own task definition (``task_definition`` then names it), or None.
    step_task_definition: str | None = None

    def overrides(self) -> dict[str, object]:
        environment = list(self.environment)
        if self.agent_token is not None:
            environment.append((AGENT_TOKEN_ENV, self.agent_token.get_secret_value()))
        role = {"taskRoleArn": self.task_role_arn} if self.task_role_arn else {}
        disk = {"ephemeralStorage": {"sizeInGiB": self.disk_gib}} if self.disk_gib else {}
        return {
            **role,
            **disk,
            "cpu": str(self.cpu),
            "memory": str(self.memory),
            "containerOverrides": [
                {
                    "name": self.container_name,
                    "environment": [{"name": k, "value": v} for k, v in environment],
                }
            ],
        }

    def to_run_task_kwargs(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "count": 1,
            "capacityProviderStrategy": [{"capacityProvider": str(self.capacity), "weight": 1}],
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": list(self.subnets),
                    "securityGroups": list(self.security_groups),
                    "assignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED",
                }
            },
            "overrides": self.overrides(),
            "startedBy": self.started_by,
            "group": self.group,
            "clientToken": self.client_token,
            "tags": [{"key": k, "value": v} for k, v in self.tags],
            "propagateTags": "TASK_DEFINITION",
            "enableECSManagedTags": True,
        }

    def describe(self) -> str:
        """The stack notification a developer sees on the job while the task starts."""
        kind = "spot" if self.capacity is Capacity.SPOT else "on-demand"
        disk = f", {self.disk_gib} GiB disk" if self.disk_gib else ""
        return f"{self.cpu} CPU units / {self.memory} MiB{disk}, {kind}"


def parse_rules(rules: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for rule in rules:
        key, sep, value = rule.partition("=")
        if sep and key:
            parsed[key] = value
    return parsed


def client_token(job_uuid: str, capacity: Capacity) -> str:
    """Same job + same capacity = same token, so an SQS redelivery cannot start a second
    task within ECS's 24 h idempotency window; a fallback to on-demand changes the request,
    so it needs its own token (docs/reference/aws.md §B.2)."""
    suffix = "" if capacity is Capacity.SPOT else "-od"
    token = f"{job_uuid}{suffix}"
    if len(token) > CLIENT_TOKEN_MAX:
        raise ValueError(f"client token {token!r} exceeds {CLIENT_TOKEN_MAX} characters")
    return token


def _int_rule(rules: Mapping[str, str], key: str, default: int) -> int:
    if key not in rules:
        return default
    try:
        return int(rules[key])
    except ValueError:
        raise LaunchRejectedError(
            LaunchRejection.INVALID_SIZE, f"agent query rule {key}={rules[key]!r} is not a number"
        ) from None


def _size(config: LaunchConfig, rules: Mapping[str, str]) -> tuple[int, int]:
    asked = [k for k in SIZE_RULES if k in rules and rules[k] not in ("", "*")]
    if asked and not config.allow_size_overrides:
        raise LaunchRejectedError(
            LaunchRejection.SIZE_NOT_ALLOWED,
            f"this stack does not allow jobs to choose their size ({', '.join(asked)}= given); "
            f"it runs every job at {config.default_cpu} CPU units / {config.default_memory} MiB "
            f"with {config.default_disk_gib} GiB of disk (AllowSizeOverrides)",
        )
    cpu = _int_rule(rules, "cpu", config.default_cpu) if "cpu" in asked else config.default_cpu
    memory = (
        _int_rule(rules, "memory", config.default_memory)
        if "memory" in asked
        else config.default_memory
    )
    try:
        validate_task_size(cpu, memory)
    except InvalidTaskSizeError as exc:
        raise LaunchRejectedError(LaunchRejection.INVALID_SIZE, str(exc)) from None
    return cpu, memory


def _disk(config: LaunchConfig, rules: Mapping[str, str]) -> int | None:
    """A job's disk= in GiB, checked against Fargate's range, or None (the task definition's
    own: DefaultEphemeralStorageGiB). ``_size`` has already refused it when not allowed."""
    text = rules.get("disk")
    if text in (None, "", "*"):
        return None
    # Digits only: int() would also take "+60" or "5_0".
    disk = int(text) if text is not None and text.isascii() and text.isdigit() else None
    if disk is None or not DISK_MIN_GIB <= disk <= DISK_MAX_GIB:
        raise LaunchRejectedError(
            LaunchRejection.INVALID_SIZE,
            f"agent query rule disk={text!r}: Fargate gives a task {DISK_MIN_GIB}-{DISK_MAX_GIB} "
            f"GiB of ephemeral storage, in whole GiB; without the rule this stack gives "
            f"{config.default_disk_gib} GiB",
        )
    return disk


def _task_definition(config: LaunchConfig, rules: Mapping[str, str]) -> str:
    """Every job runs in the stack's task definition. A job may not pick another: RunTask and
    iam:PassRole are granted for the stack's own family and roles only, so AWS would refuse
    it; such a job is failed back at once with the reason instead of failing at RunTask."""
    wanted = rules.get(TASK_DEFINITION_RULE)
    if wanted not in (None, "", "*"):
        raise LaunchRejectedError(
            LaunchRejection.TASK_DEFINITION_NOT_ALLOWED,
            f"task-definition={wanted!r}: this stack runs every job in its own task "
            "definition; a step chooses its environment with its image",
        )
    return config.task_definition


def agent_tags(config: LaunchConfig, rules: Sequence[str], capacity: Capacity) -> str:
    """Tags the agent reports: the job's own (safe) rules, so the UI and the job's
    BUILDKITE_AGENT_META_DATA_* look as on a normal agent, plus where it runs."""
    tags = {"queue": config.queue_key}
    for rule in rules:
        if _AGENT_TAG_SAFE.fullmatch(rule):
            key, _, value = rule.partition("=")
            if key != "queue" and value not in ("", "*"):
                tags[key] = value
    tags["fargate-stack"] = config.stack_key
    tags["fargate-capacity"] = "spot" if capacity is Capacity.SPOT else "on-demand"
    return ",".join(f"{k}={v}" for k, v in tags.items())


def _tag_value(text: str) -> str:
    return _TAG_UNSAFE.sub("_", text)[:_TAG_VALUE_MAX]


def build_launch_spec(
    config: LaunchConfig,
    *,
    job_uuid: str,
    agent_query_rules: Sequence[str],
    job_env: Mapping[str, str],
    capacity: Capacity,
    agent_token: SecretStr | None = None,
    pipeline_uuid: str | None = None,
    task_definition: str | None = None,
) -> LaunchSpec:
    """Decide everything about one launch, or raise LaunchRejectedError with a reason a
    developer can act on. ``agent_token``: the job's acquisition token (JAT mode), which
    the agent container gets in its environment override. ``pipeline_uuid``: the listing's,
    which picks the task role (``task_role_for``). ``task_definition``: the one registered
    for the step's image (usecases/step_images.py), or None for the stack's."""
    rules = parse_rules(agent_query_rules)
    cpu, memory = _size(config, rules)
    disk = _disk(config, rules)
    stack_definition = _task_definition(config, rules)
    environment = (
        (ACQUIRE_JOB_ENV, job_uuid),
        ("BUILDKITE_AGENT_TAGS", agent_tags(config, agent_query_rules, capacity)),
    )
    tags = (
        ("buildkite:stack", _tag_value(config.stack_key)),
        ("buildkite:job", _tag_value(job_uuid)),
        ("buildkite:pipeline", _tag_value(job_env.get("BUILDKITE_PIPELINE_SLUG", "unknown"))),
        ("buildkite:build", _tag_value(job_env.get("BUILDKITE_BUILD_NUMBER", "unknown"))),
    )
    spec = LaunchSpec(
        job_uuid=job_uuid,
        cluster=config.cluster,
        task_definition=task_definition or stack_definition,
        container_name=config.container_name,
        cpu=cpu,
        memory=memory,
        capacity=capacity,
        subnets=tuple(config.subnets),
        security_groups=tuple(config.security_groups),
        assign_public_ip=config.assign_public_ip,
        environment=environment,
        started_by=started_by(config.stack_key),
        group=task_group(job_uuid),
        client_token=client_token(job_uuid, capacity),
        tags=tags,
        agent_token=agent_token,
        task_role_arn=task_role_for(config, pipeline_uuid),
        disk_gib=disk,
        step_task_definition=task_definition,
    )
    size = len(json.dumps(spec.overrides(), separators=(",", ":")))
    if size > OVERRIDES_MAX_CHARS:
        raise LaunchRejectedError(
            LaunchRejection.OVERRIDES_TOO_LARGE,
            f"the task overrides for this job are {size} characters; ECS allows "
            f"{OVERRIDES_MAX_CHARS} (too many or too long agent query rules?)",
        )
    return spec
