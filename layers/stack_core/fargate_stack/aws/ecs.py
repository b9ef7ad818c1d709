"""ECS: start one task per job, count this stack's tasks in flight."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from fargate_stack.domain.launch import LaunchSpec
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

# Error codes that will not go away by retrying the same request (botocore ecs RunTask
# errors; docs/reference/aws.md §B.1). Everything else (throttling, ServerException, 5xx,
# network) is transient.
_PERMANENT_CODES = frozenset(
    {
        "ClientException",
        "InvalidParameterException",
        "ClusterNotFoundException",
        "PlatformUnknownException",
        "PlatformTaskDefinitionIncompatibilityException",
        "UnsupportedFeatureException",
        "AccessDeniedException",
        "BlockedException",
    }
)
# RunTask `failures[].reason` text for Fargate capacity (re:Post ecs-fargate-runtask-capacity).
_CAPACITY_MARKERS = ("Capacity is unavailable", "RESOURCE:")


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
            raise _classify(exc) from exc
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


def _classify(exc: ClientError) -> Exception:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "")
    if code == "ConflictException":
        # ECS names the task the token already started (botocore ConflictException.resourceIds).
        ids = exc.response.get("resourceIds")
        first = ids[0] if isinstance(ids, list) and ids else None
        return AlreadyLaunchedError(str(first) if first else None)
    if code in _PERMANENT_CODES:
        return PermanentError(
            f"ECS refused to start the task ({code}): {message}", reason="ecs_rejected"
        )
    return TransientError(f"RunTask failed ({code or 'error'}): {message}")
