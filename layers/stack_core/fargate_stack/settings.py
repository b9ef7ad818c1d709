"""Configuration from environment variables, validated once at cold start.

template.yaml is the single source of defaults: it sets every variable, so fields here
have defaults only where a local run or a test benefits and the value is not a choice an
operator makes. A bad value fails the cold start with ``ConfigurationError`` naming the
variable, instead of failing a job later with a confusing AWS error.

Plain pydantic models validated from ``os.environ`` (as aws-lambda-env-modeler, the
cookbook's, does), not pydantic-settings: its import (with the argparse of its CLI source)
cost each cold start ≈25-40 ms (docs/performance.md), for a case-insensitive read of the
environment that ``_environment`` does in one line.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fargate_stack.domain.fargate import InvalidTaskSizeError, validate_task_size
from fargate_stack.domain.launch import (
    DISK_MAX_GIB,
    FARGATE_DEFAULT_DISK_GIB,
    AgentTokenMode,
    CapacityStrategy,
    PipelineTaskRolesError,
    parse_pipeline_task_roles,
)
from fargate_stack.domain.rules import LAUNCH_OPTION_KEYS, parse_tags
from fargate_stack.domain.step_image import (
    AllowedImagesError,
    StepImageCachesError,
    parse_allowed_images,
    parse_caches,
)
from fargate_stack.errors import ConfigurationError

_STACK_KEY = r"^[A-Za-z0-9_-]{1,80}$"  # docs/reference/stacks-api.md §3.1
_SM_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"
_SUBNET = r"^subnet-[0-9a-f]{8,17}$"
_SECURITY_GROUP = r"^sg-[0-9a-f]{8,17}$"
_ID_FORMATS = {
    "subnets": (_SUBNET, "subnet ids"),
    "security_groups": (_SECURITY_GROUP, "security group ids"),
}


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class CommonSettings(BaseModel):
    """What every function needs: who we are on Buildkite and how to reach it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stack_key: str = Field(pattern=_STACK_KEY)
    queue_key: str = Field(min_length=1, max_length=255)
    buildkite_api_url: HttpUrl = HttpUrl("https://agent.buildkite.com/v3/")
    # ARN of the Secrets Manager secret holding the cluster agent token (bkct_...).
    cluster_token_secret_arn: str = Field(pattern=_SM_ARN)
    # A token given directly (local runs only); never set by the template.
    buildkite_token: SecretStr | None = None
    stacks_api_timeout_seconds: float = Field(default=10.0, gt=0, le=60)


class PollerSettings(CommonSettings):
    agent_tags: str = ""
    default_queue: bool = False
    poll_interval_seconds: float = Field(ge=1, le=60)
    # Stop looping this long before the function's timeout (and release the lease, so
    # the next tick's invocation polls at once).
    poll_safety_margin_seconds: float = Field(default=10, ge=1, le=120)
    max_pages: int = Field(ge=1, le=20)
    page_size: int = Field(ge=1, le=1000)
    reservation_expiry_seconds: int = Field(ge=60, le=3600)
    max_in_flight: int = Field(ge=0)
    launch_queue_url: str = Field(min_length=1)
    ecs_cluster: str = Field(min_length=1)
    # The launch ledger, which also holds the poller's lease item.
    lease_table: str = Field(min_length=1)
    # A task still starting (PROVISIONING/PENDING/ACTIVATING) this long after ECS created
    # it is stopped, and its job failed back if no agent took it; the template's range.
    provisioning_timeout_seconds: int = Field(default=900, ge=60, le=3600)

    @field_validator("agent_tags")
    @classmethod
    def _tags_parse(cls, value: str) -> str:
        tags = parse_tags(value)
        if "queue" in tags:
            raise ValueError("must not set queue; QUEUE_KEY does")
        # The matcher ignores launch options (a job asks the launcher for them), so such a
        # tag would match every job instead of filtering.
        options = sorted(LAUNCH_OPTION_KEYS & set(tags))
        if options:
            raise ValueError(
                f"must not set {', '.join(options)}: launch options a job asks for, not tags"
            )
        return value

    @property
    def extra_tags(self) -> dict[str, str]:
        return parse_tags(self.agent_tags)


class LauncherSettings(CommonSettings):
    ecs_cluster: str = Field(min_length=1)
    task_definition: str = Field(min_length=1)
    agent_container_name: str = Field(min_length=1, max_length=255)
    subnets: list[str] = Field(min_length=1, max_length=16)
    security_groups: list[str] = Field(min_length=1, max_length=5)
    assign_public_ip: bool
    capacity_strategy: CapacityStrategy
    default_cpu: int
    default_memory: int
    # DefaultEphemeralStorageGiB: 20 is Fargate's default (docs/reference/aws.md §B.5).
    default_ephemeral_storage_gib: int = Field(
        default=FARGATE_DEFAULT_DISK_GIB, ge=FARGATE_DEFAULT_DISK_GIB, le=DISK_MAX_GIB
    )
    # Whether jobs may ask for cpu=/memory=/disk= via agent query rules.
    allow_size_overrides: bool = False
    # No RunTask with less of the invocation left (usecases/launch.py says why).
    run_task_margin_seconds: float = Field(default=10.0, ge=0, le=60)
    # The function's own Timeout (template.yaml; a template test keeps them equal): how
    # long a crashed attempt's idempotency lock can last (usecases/launch.py).
    launcher_timeout_seconds: float = Field(default=60.0, gt=0, le=900)
    idempotency_table: str = Field(min_length=1)
    # How tasks get their agent token (template AgentTokenMode; usecases/job_tokens.py).
    agent_token_mode: AgentTokenMode = AgentTokenMode.JOB_ACQUISITION_TOKEN
    # JAT mode: a reservation too short for a token is extended to this first (the poller's
    # ReservationExpirySeconds), and a token lives at most jat_lifetime_seconds (a Fargate
    # start and an image pull, well within it).
    reservation_expiry_seconds: int = Field(default=900, ge=60, le=3600)
    jat_lifetime_seconds: int = Field(default=600, ge=60, le=3600)
    # Template PipelineTaskRoles: pipeline uuid -> task role ARN, parsed here so a bad
    # mapping fails the cold start, not a job. Empty: every job gets the default role.
    pipeline_task_roles: dict[str, str] = Field(default_factory=dict)
    # Template AllowedImages: patterns a step's image: must match to run (domain/step_image.py);
    # empty: steps run in the agent image. The families derived for them start with
    # step_image_family_prefix (the template's, which its IAM statements name).
    allowed_images: tuple[str, ...] = ()
    step_image_family_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,200}$")
    step_image_registrations_per_day: int = Field(default=50, ge=1, le=1000)
    # Upstream registry -> its ECR pull-through cache path (the template's, from
    # DockerHubCacheSecretArn and AgentImageCache): step images from there pull through it.
    step_image_caches: dict[str, str] = Field(default_factory=dict)

    _split_subnets = field_validator("subnets", "security_groups", mode="before")(_split)

    @field_validator("subnets", "security_groups")
    @classmethod
    def _aws_ids(cls, value: list[str], info: ValidationInfo) -> list[str]:
        pattern, what = _ID_FORMATS[str(info.field_name)]
        bad = [item for item in value if not re.fullmatch(pattern, item)]
        if bad:
            raise ValueError(f"not {what}: {', '.join(bad)}")
        return value

    @field_validator("pipeline_task_roles", mode="before")
    @classmethod
    def _pipeline_task_roles(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_pipeline_task_roles(value)
        except PipelineTaskRolesError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("allowed_images", mode="before")
    @classmethod
    def _allowed_images(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_allowed_images(value)
        except AllowedImagesError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("step_image_caches", mode="before")
    @classmethod
    def _caches(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return parse_caches(value)
        except StepImageCachesError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _family_prefix(self) -> LauncherSettings:
        if self.allowed_images and not self.step_image_family_prefix:
            msg = (
                "STEP_IMAGE_FAMILY_PREFIX: AllowedImages is set, so the step images' family "
                "prefix is needed"
            )
            raise ValueError(msg)
        return self

    @field_validator("default_memory")
    @classmethod
    def _valid_size(cls, memory: int, info: ValidationInfo) -> int:
        cpu = info.data.get("default_cpu")
        if cpu is not None:
            try:
                validate_task_size(cpu, memory)
            except InvalidTaskSizeError as exc:
                raise ValueError(str(exc)) from exc
        return memory


class FailureHandlerSettings(CommonSettings):
    ecs_cluster: str = Field(min_length=1)
    agent_container_name: str = Field(min_length=1, max_length=255)
    # The agent's log group: FailJob details link to the task's stream; unset, no link.
    agent_log_group: str | None = Field(default=None, min_length=1, max_length=512)


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def _environment() -> dict[str, str]:
    """The environment with lower-case names: fields are named as their variables, and a
    variable matches whatever its case (as ``case_sensitive=False`` did)."""
    return {name.lower(): value for name, value in os.environ.items()}


def load(model: type[SettingsT]) -> SettingsT:
    """Build settings from the environment or raise an error that names each variable."""
    try:
        return model.model_validate(_environment())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


@cache
def get_poller_settings() -> PollerSettings:
    return load(PollerSettings)


@cache
def get_launcher_settings() -> LauncherSettings:
    return load(LauncherSettings)


@cache
def get_failure_handler_settings() -> FailureHandlerSettings:
    return load(FailureHandlerSettings)
