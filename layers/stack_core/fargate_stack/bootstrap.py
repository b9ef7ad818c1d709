"""The composition root: the only module that names concrete adapters.

Everything is built once per container, on first use (not at import, so a handler module
imports fast and tests build their own), from the validated settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol, cast

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.config import Config

from fargate_stack.aws.ecs import EcsTasks
from fargate_stack.aws.lease import DynamoLease
from fargate_stack.aws.ledger import DynamoFallbackLedger, DynamoImageLedger
from fargate_stack.aws.sqs import SqsLaunchQueue
from fargate_stack.aws.task_definitions import EcsTaskDefinitions
from fargate_stack.buildkite import BuildkiteStacks
from fargate_stack.clock import SystemClock
from fargate_stack.domain.launch import AgentTokenMode, LaunchConfig
from fargate_stack.domain.rules import StackTags
from fargate_stack.errors import ConfigurationError
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.observability import metrics
from fargate_stack.ports import Clock, Lease
from fargate_stack.settings import (
    CommonSettings,
    get_failure_handler_settings,
    get_launcher_settings,
    get_poller_settings,
)
from fargate_stack.stacksapi import RetryPolicy, StacksClient
from fargate_stack.usecases.handle_stopped import HandleStopped
from fargate_stack.usecases.job_tokens import BatchTokens
from fargate_stack.usecases.launch import LaunchJob, LaunchOptions
from fargate_stack.usecases.poll import LoopTiming, PollConfig, PollJobs
from fargate_stack.usecases.poller_lease import LeaseTiming, PollerLease
from fargate_stack.usecases.step_images import StepImageDefinitions, StepImageOptions
from fargate_stack.usecases.stop_starting import StopConfig, StopStartingTasks

STACK_VERSION = "0.1.0"
# The launch ledger keeps a job's record as long as ECS keeps a RunTask client token
# (24 h, docs/reference/aws.md §B.2): within that window neither layer starts a second task.
LEDGER_TTL_SECONDS = 24 * 60 * 60
# Adaptive retries for AWS calls: throttling backs off instead of failing the record.
_AWS_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 5})


# How long the cluster token is cached: a rotated secret is picked up within this time.
TOKEN_MAX_AGE_SECONDS = 300


@cache
def aws_session() -> boto3.session.Session:
    """One session for every AWS client the stack makes (the local world counts its calls)."""
    return boto3.session.Session()


def _token(settings: CommonSettings) -> str:
    if settings.buildkite_token is not None:
        return settings.buildkite_token.get_secret_value()
    secrets = parameters.SecretsProvider(boto3_session=aws_session())
    try:
        value = secrets.get(settings.cluster_token_secret_arn, max_age=TOKEN_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        # The cause is usually deployment (a wrong ARN, no access, the secret deleted):
        # name the parameter, not only the AWS error.
        msg = (
            f"CLUSTER_TOKEN_SECRET_ARN ({settings.cluster_token_secret_arn}, the template's "
            f"ClusterTokenSecretArn) could not be read: {exc}"
        )
        raise ConfigurationError(msg) from exc
    token = str(value).strip()
    if not token:
        msg = "CLUSTER_TOKEN_SECRET_ARN names an empty secret; store the cluster token in it"
        raise ConfigurationError(msg)
    return token


def _stacks(settings: CommonSettings, function: str) -> BuildkiteStacks:
    client = StacksClient(
        _token(settings),
        base_url=str(settings.buildkite_api_url),
        # The function as a User-Agent comment
        # (https://www.rfc-editor.org/rfc/rfc9110#name-user-agent), so Buildkite's request
        # logs, and the local world's faults, tell the poller's calls from the others'.
        user_agent_prefix=f"buildkite-fargate-stack/{STACK_VERSION} ({function})",
        timeout=settings.stacks_api_timeout_seconds,
        retry=RetryPolicy(),
    )
    return BuildkiteStacks(client)


def _set_metric_dimensions(settings: CommonSettings) -> None:
    # One account may run several stacks; the stack key tells their metrics apart.
    if metrics.default_dimensions.get("stack") != settings.stack_key:
        metrics.set_default_dimensions(stack=settings.stack_key)


class LaunchOnce(Protocol):
    """``LaunchJob.launch`` behind the launch ledger: a duplicate delivery of a job's
    message returns the first result instead of launching again."""

    def __call__(self, *, message: LaunchMessage, redelivered: bool) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class PollerWiring:
    """What the poller handler needs: the use case (which remembers whether this container
    registered the stack), its clock, the loop's timing and the lease that keeps one loop
    polling at a time."""

    jobs: PollJobs
    clock: Clock
    timing: LoopTiming
    lease: Lease
    stopper: StopStartingTasks
    lease_timing: LeaseTiming = field(default_factory=LeaseTiming)

    def lease_for(self, invocation_id: str) -> PollerLease:
        """The lease as this invocation holds it (each invocation is its own holder)."""
        return PollerLease(self.lease, self.clock, invocation_id, self.lease_timing)


@dataclass(frozen=True, slots=True)
class LauncherWiring:
    """What the launcher handler needs: the use case (deadline, notifications), the ledger's
    config (it needs the Lambda context) and the ledger-guarded launch of one record."""

    use_case: LaunchJob
    idempotency: IdempotencyConfig
    launch_once: LaunchOnce


@dataclass(frozen=True, slots=True)
class FailureHandlerWiring:
    """What the failure handler needs: the handle-stopped use case."""

    use_case: HandleStopped


@cache
def poller() -> PollerWiring:
    settings = get_poller_settings()
    _set_metric_dimensions(settings)
    clock = SystemClock()
    config = PollConfig(
        stack_key=settings.stack_key,
        queue_key=settings.queue_key,
        tags=StackTags.from_config(
            settings.queue_key, settings.extra_tags, default_queue=settings.default_queue
        ),
        page_size=settings.page_size,
        max_pages=settings.max_pages,
        reservation_expiry_seconds=settings.reservation_expiry_seconds,
        max_in_flight=settings.max_in_flight,
        cluster=settings.ecs_cluster,
        metadata={
            "stack_version": STACK_VERSION,
            "region": aws_session().region_name or "",
        },
    )
    api = _stacks(settings, "poller")
    ecs = EcsTasks(aws_session().client("ecs", config=_AWS_CONFIG))
    use_case = PollJobs(
        api=api,
        queue=SqsLaunchQueue(
            settings.launch_queue_url, aws_session().client("sqs", config=_AWS_CONFIG)
        ),
        tasks=ecs,
        clock=clock,
        config=config,
    )
    stopper = StopStartingTasks(
        api=api,
        tasks=ecs,
        clock=clock,
        config=StopConfig(
            stack_key=settings.stack_key,
            cluster=settings.ecs_cluster,
            provisioning_timeout_seconds=settings.provisioning_timeout_seconds,
        ),
    )
    timing = LoopTiming(
        interval_seconds=settings.poll_interval_seconds,
        safety_margin_seconds=settings.poll_safety_margin_seconds,
    )
    lease = DynamoLease(
        settings.lease_table, client=aws_session().client("dynamodb", config=_AWS_CONFIG)
    )
    return PollerWiring(jobs=use_case, clock=clock, timing=timing, lease=lease, stopper=stopper)


@cache
def launcher() -> LauncherWiring:
    """The launch use case and its idempotent entry point (keyed by the job uuid)."""
    settings = get_launcher_settings()
    _set_metric_dimensions(settings)
    options = LaunchOptions(
        config=LaunchConfig(
            stack_key=settings.stack_key,
            queue_key=settings.queue_key,
            cluster=settings.ecs_cluster,
            task_definition=settings.task_definition,
            container_name=settings.agent_container_name,
            default_cpu=settings.default_cpu,
            default_memory=settings.default_memory,
            subnets=settings.subnets,
            security_groups=settings.security_groups,
            assign_public_ip=settings.assign_public_ip,
            allow_size_overrides=settings.allow_size_overrides,
            default_disk_gib=settings.default_ephemeral_storage_gib,
            pipeline_task_roles=settings.pipeline_task_roles,
        ),
        strategy=settings.capacity_strategy,
        run_task_margin_seconds=settings.run_task_margin_seconds,
        launcher_timeout_seconds=settings.launcher_timeout_seconds,
        allowed_images=settings.allowed_images,
    )
    # One DynamoDB client for the ledger's two users (a client costs cold-start time).
    dynamodb = aws_session().client("dynamodb", config=_AWS_CONFIG)
    stacks = _stacks(settings, "launcher")
    tokens = (
        BatchTokens(
            api=stacks,
            stack_key=settings.stack_key,
            reservation_seconds=settings.reservation_expiry_seconds,
            lifetime_seconds=settings.jat_lifetime_seconds,
        )
        if settings.agent_token_mode is AgentTokenMode.JOB_ACQUISITION_TOKEN
        else None
    )
    ecs = aws_session().client("ecs", config=_AWS_CONFIG)
    images = (
        StepImageDefinitions(
            definitions=EcsTaskDefinitions(ecs),
            ledger=DynamoImageLedger(settings.idempotency_table, client=dynamodb),
            clock=SystemClock(),
            options=StepImageOptions(
                base_task_definition=settings.task_definition,
                container_name=settings.agent_container_name,
                family_prefix=settings.step_image_family_prefix,
                stack_key=settings.stack_key,
                registrations_per_day=settings.step_image_registrations_per_day,
                caches=settings.step_image_caches,
            ),
        )
        if settings.allowed_images
        else None
    )
    use_case = LaunchJob(
        api=stacks,
        tokens=tokens,
        images=images,
        tasks=EcsTasks(ecs),
        fallbacks=DynamoFallbackLedger(
            settings.idempotency_table, ttl_seconds=LEDGER_TTL_SECONDS, client=dynamodb
        ),
        clock=SystemClock(),
        options=options,
    )
    config = IdempotencyConfig(
        event_key_jmespath="job_uuid", expires_after_seconds=LEDGER_TTL_SECONDS
    )
    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
    guarded: Callable[..., object] = idempotent_function(
        data_keyword_argument="message", config=config, persistence_store=store
    )(use_case.launch)
    # Powertools' decorator is untyped; the wrapped function keeps launch's signature.
    return LauncherWiring(
        use_case=use_case, idempotency=config, launch_once=cast(LaunchOnce, guarded)
    )


@cache
def failure_handler() -> FailureHandlerWiring:
    settings = get_failure_handler_settings()
    _set_metric_dimensions(settings)
    use_case = HandleStopped(
        api=_stacks(settings, "failure-handler"),
        stack_key=settings.stack_key,
        agent_container=settings.agent_container_name,
        agent_log_group=settings.agent_log_group,
        tasks=EcsTasks(aws_session().client("ecs", config=_AWS_CONFIG)),
        cluster=settings.ecs_cluster,
    )
    return FailureHandlerWiring(use_case=use_case)


def reset() -> None:
    """Forget every cached client and setting; for tests and the local world, which build
    several stacks in one process (a Lambda container builds exactly one)."""
    for cached in (
        aws_session,
        poller,
        launcher,
        failure_handler,
        get_poller_settings,
        get_launcher_settings,
        get_failure_handler_settings,
    ):
        cached.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
