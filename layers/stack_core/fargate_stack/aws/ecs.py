"""ECS: start one task per job, count this stack's tasks in flight, stop starting ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from fargate_stack.domain.launch import PIPELINE_TASK_ROLES, LaunchRejection, LaunchSpec
from fargate_stack.domain.starting_tasks import LaunchedTask
from fargate_stack.domain.task_identity import job_uuid_of_task
from fargate_stack.errors import (
    AlreadyLaunchedError,
    CapacityUnavailableError,
    PermanentError,
    TransientError,
)
from fargate_stack.ports import StartedTask

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
else:
    ECSClient = Any


DESCRIBE_TASKS_MAX = 100


class _Verdict(Enum):
    TRANSIENT = "transient"  # retried from the queue; the DLQ fails it back at the end
    PERMANENT = "permanent"  # failed back at once with ECS's message


@dataclass(frozen=True)
class _ErrorRule:
    """One row of what a RunTask error means. ``code`` None matches any code; ``text``
    None matches any message. The first matching row decides."""

    code: str | None
    text: str | None
    verdict: _Verdict
    source: str


_RUN_API = (
    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#API_RunTask_Errors"
)

# By message first: ECS reuses its permanent-looking codes for conditions that pass.
# Then by code: the RunTask errors of the API reference that retrying the same request
# will not fix. Anything else (ThrottlingException, ServerException, 5xx, network) is
# transient.
RUN_TASK_ERRORS: tuple[_ErrorRule, ...] = (
    # EC2 throttling behind the security-group lookup, answered as InvalidParameterException.
    _ErrorRule(None, "Request limit exceeded", _Verdict.TRANSIENT, "docs/reference/aws.md §H.4"),
    _ErrorRule(None, "Rate exceeded", _Verdict.TRANSIENT, "docs/reference/aws.md §B.4"),
    # The ECS service-linked role is created with the first cluster and can take a moment
    # to be assumable; if it is truly missing, the DLQ fails the job back with this text
    # and `make preflight` names the fix.
    _ErrorRule(
        None,
        "Unable to assume the service linked role",
        _Verdict.TRANSIENT,
        "docs/reference/aws.md §H.3",
    ),
    *(
        _ErrorRule(code, None, _Verdict.PERMANENT, _RUN_API)
        for code in (
            "AccessDeniedException",
            "BlockedException",
            "ClientException",
            "ClusterNotFoundException",
            "InvalidParameterException",
            "PlatformTaskDefinitionIncompatibilityException",
            "PlatformUnknownException",
            "UnsupportedFeatureException",
        )
    ),
)

# RunTask `failures[].reason` texts meaning Fargate has no room for the task now: the
# launcher falls back to on-demand or retries later (docs/reference/aws.md §B.3). The vCPU
# quota's wording is from third-party reports only (UNCONFIRMED), so it is matched loosely.
_CAPACITY_MARKERS = (
    "Capacity is unavailable",
    "RESOURCE:",
    "reached the limit on the number of",
)


# A pipeline's task role (PipelineTaskRoles) refused (docs/reference/aws.md §H.46): IAM's
# PassRole denial is an AccessDeniedException naming the role; a role ECS cannot assume
# (missing, or not trusting ecs-tasks.amazonaws.com) reads "ECS was unable to assume the
# role '<arn>' that was provided for this task", its RunTask error code UNCONFIRMED
# (ClientException or InvalidParameterException). Only these codes, and only a message
# that names the role or says that sentence, are the role's fault.
_ROLE_REFUSAL_CODES = frozenset(
    {"AccessDeniedException", "ClientException", "InvalidParameterException"}
)
_ROLE_NOT_ASSUMABLE = "unable to assume the role"


def verdict_of(code: str, message: str) -> _Verdict:
    for rule in RUN_TASK_ERRORS:
        if (rule.code is None or rule.code == code) and (rule.text is None or rule.text in message):
            return rule.verdict
    return _Verdict.TRANSIENT


class EcsTasks:
    def __init__(self, client: ECSClient | None = None) -> None:
        self._client: ECSClient = client or boto3.client("ecs")

    def run(self, spec: LaunchSpec) -> StartedTask:
        """Start the job's task, or raise the error class that decides between retry
        (transient), fallback (capacity) and FailJob (permanent).

        A RunTask repeated with the same client token and parameters within 24 h returns
        the first call's task instead of starting another (docs/reference/aws.md §B.2): that is
        what makes a redelivery after a crash safe, and its `createdAt` tells it apart."""
        try:
            answer = self._client.run_task(**spec.to_run_task_kwargs())  # type: ignore[arg-type]
        except ClientError as exc:
            raise _classify(exc, spec) from exc
        except BotoCoreError as exc:
            raise TransientError(f"RunTask did not complete: {exc}") from exc
        tasks = answer.get("tasks", [])
        if tasks:
            return StartedTask(arn=tasks[0]["taskArn"], created_at=tasks[0].get("createdAt"))
        failures = answer.get("failures", [])
        reasons = "; ".join(
            f"{f.get('reason', 'unknown')}{': ' + f['detail'] if f.get('detail') else ''}"
            for f in failures
        )
        if any(marker in reasons for marker in _CAPACITY_MARKERS):
            raise CapacityUnavailableError(f"Fargate capacity unavailable: {reasons}")
        raise TransientError(f"RunTask started no task: {reasons or 'no reason given'}")

    def count_in_flight(self, *, cluster: str, started_by: str) -> int:
        """Tasks this stack started that are not stopped yet (desired RUNNING includes
        PROVISIONING and PENDING)."""
        total = 0
        try:
            pages = self._client.get_paginator("list_tasks").paginate(
                cluster=cluster, startedBy=started_by, desiredStatus="RUNNING"
            )
            for page in pages:
                total += len(page.get("taskArns", []))
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not count tasks in flight: {exc}") from exc
        return total

    def launched(self, *, cluster: str, started_by: str) -> list[LaunchedTask]:
        """This stack's tasks not stopped yet (desired RUNNING), each with its job."""
        arns: list[str] = []
        try:
            pages = self._client.get_paginator("list_tasks").paginate(
                cluster=cluster, startedBy=started_by, desiredStatus="RUNNING"
            )
            for page in pages:
                arns.extend(page.get("taskArns", []))
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not list the stack's tasks: {exc}") from exc
        return self.describe(cluster=cluster, started_by=started_by, arns=arns)

    def describe(self, *, cluster: str, started_by: str, arns: Sequence[str]) -> list[LaunchedTask]:
        found: list[LaunchedTask] = []
        # DescribeTasks takes "Up to 100 tasks"
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html).
        for start in range(0, len(arns), DESCRIBE_TASKS_MAX):
            try:
                answer = self._client.describe_tasks(
                    cluster=cluster, tasks=list(arns[start : start + DESCRIBE_TASKS_MAX])
                )
            except (ClientError, BotoCoreError) as exc:
                raise TransientError(f"could not describe the stack's tasks: {exc}") from exc
            for task in answer.get("tasks", []):
                job = job_uuid_of_task(
                    stack_key=started_by,
                    started_by_value=task.get("startedBy"),
                    group=task.get("group"),
                )
                if job is None:
                    continue
                created = task.get("createdAt")
                found.append(
                    LaunchedTask(
                        arn=task["taskArn"],
                        job_uuid=job,
                        last_status=str(task.get("lastStatus", "")),
                        created_at=created if isinstance(created, datetime) else None,
                    )
                )
        return found

    def stop(self, *, cluster: str, arn: str, reason: str) -> None:
        try:
            self._client.stop_task(cluster=cluster, task=arn, reason=reason)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not stop task {arn}: {exc}") from exc


def _task_role_refused(spec: LaunchSpec, code: str, message: str) -> PermanentError | None:
    role = spec.task_role_arn
    if role is None or code not in _ROLE_REFUSAL_CODES:
        return None
    if role not in message and _ROLE_NOT_ASSUMABLE not in message.lower():
        return None
    return PermanentError(
        f"the task role {PIPELINE_TASK_ROLES} maps this pipeline to, {role}, was refused "
        f"({code}): {message}. The operator must fix the mapping or the role (it must exist, "
        "trust ecs-tasks.amazonaws.com, and be one the stack may pass).",
        reason=LaunchRejection.TASK_ROLE_REJECTED,
    )


def _classify(exc: ClientError, spec: LaunchSpec) -> Exception:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "")
    refused = _task_role_refused(spec, code, message)
    if refused is not None:
        return refused
    if code == "ConflictException":
        # ECS names the task the token already started (botocore ConflictException.resourceIds).
        ids = exc.response.get("resourceIds")
        first = ids[0] if isinstance(ids, list) and ids else None
        return AlreadyLaunchedError(str(first) if first else None)
    if verdict_of(code, message) is _Verdict.PERMANENT:
        return PermanentError(
            f"ECS refused to start the task ({code}): {message}", reason="ecs_rejected"
        )
    return TransientError(f"RunTask failed ({code or 'error'}): {message}")
