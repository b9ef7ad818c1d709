"""ECS task definitions for step images: describe the base, register, list and deregister."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from fargate_stack.domain.launch import LaunchRejection
from fargate_stack.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
else:
    ECSClient = Any

# RegisterTaskDefinition errors that the same request will meet again: the derived
# definition itself was refused, so its job is failed back with ECS's message
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html#API_RegisterTaskDefinition_Errors).
# Throttling and server errors are transient.
_REGISTER_PERMANENT = frozenset(
    {"AccessDeniedException", "ClientException", "InvalidParameterException"}
)
# Families listed per cleanup: ListTaskDefinitionFamilies answers up to 100 per page.
_FAMILY_PAGES_MAX = 5


class EcsTaskDefinitions:
    def __init__(self, client: ECSClient | None = None) -> None:
        self._client: ECSClient = client or boto3.client("ecs")

    def describe(self, task_definition: str) -> Mapping[str, Any]:
        try:
            answer = self._client.describe_task_definition(taskDefinition=task_definition)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not describe {task_definition}: {exc}") from exc
        return answer["taskDefinition"]

    def register(self, request: Mapping[str, Any]) -> str:
        try:
            answer = self._client.register_task_definition(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "")
            if code in _REGISTER_PERMANENT:
                raise PermanentError(
                    f"ECS refused the task definition for this step's image ({code}): {message}",
                    reason=LaunchRejection.IMAGE_DEFINITION_REJECTED,
                ) from exc
            raise TransientError(f"RegisterTaskDefinition failed ({code}): {message}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"RegisterTaskDefinition did not complete: {exc}") from exc
        return answer["taskDefinition"]["taskDefinitionArn"]

    def families(self, prefix: str) -> Sequence[str]:
        found: list[str] = []
        try:
            pages = self._client.get_paginator("list_task_definition_families").paginate(
                familyPrefix=prefix,
                status="ACTIVE",
                PaginationConfig={"MaxItems": 100 * _FAMILY_PAGES_MAX, "PageSize": 100},
            )
            for page in pages:
                found.extend(page.get("families", []))
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not list task definition families: {exc}") from exc
        return found

    def active_revisions(self, family: str) -> Sequence[str]:
        try:
            answer = self._client.list_task_definitions(familyPrefix=family, status="ACTIVE")
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not list the revisions of {family}: {exc}") from exc
        # familyPrefix is a prefix: keep the family's own revisions only.
        return [
            arn
            for arn in answer.get("taskDefinitionArns", [])
            if arn.rpartition("/")[2].rpartition(":")[0] == family
        ]

    def deregister(self, task_definition: str) -> None:
        try:
            self._client.deregister_task_definition(taskDefinition=task_definition)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not deregister {task_definition}: {exc}") from exc
