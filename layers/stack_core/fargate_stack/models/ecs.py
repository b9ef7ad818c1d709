"""The "ECS Task State Change" EventBridge event, parsed at the edge.

Powertools ships no ECS model (docs/reference/tooling.md §4), so this extends its
EventBridgeModel. AWS says consumers must be "prepared to handle unknown properties"
(docs/reference/aws.md §B.7): every model ignores unknown fields, and only the fields the failure
handler decides on are required. What the handler gets is the rule's input transformer's
output (template.yaml): the envelope and the task's fields below, without its overrides.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fargate_stack.domain.triage import StoppedTask

_LENIENT = ConfigDict(extra="ignore", populate_by_name=True)


def _drop_blank(data: object) -> object:
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value != ""}
    return data


class Container(BaseModel):
    model_config = _LENIENT
    name: str
    exit_code: int | None = Field(default=None, alias="exitCode")
    reason: str | None = None
    last_status: str | None = Field(default=None, alias="lastStatus")


class TaskStateChangeDetail(BaseModel):
    model_config = _LENIENT
    task_arn: str | None = Field(default=None, alias="taskArn")
    cluster_arn: str | None = Field(default=None, alias="clusterArn")
    last_status: str = Field(alias="lastStatus")
    desired_status: str | None = Field(default=None, alias="desiredStatus")
    started_by: str | None = Field(default=None, alias="startedBy")
    group: str | None = None
    stop_code: str | None = Field(default=None, alias="stopCode")
    stopped_reason: str | None = Field(default=None, alias="stoppedReason")
    # Increments on every state change; duplicates share it (docs/reference/aws.md §B.7).
    version: int = 0
    containers: list[Container] = Field(default_factory=list)
    # No `overrides`: they hold the job's acquisition token, and the rule's input transformer
    # drops them (template.yaml); a raw event (the rule's dead letters) still parses, as
    # unknown fields are ignored, and the token is never read into the model.

    # The input transformer writes "" for a field the event lacks
    # (docs/reference/aws.md §H.45): read as absent, so the defaults apply.
    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: object) -> object:
        return _drop_blank(data)

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)


class TaskStateChangeEvent(EventBridgeModel):
    model_config = _LENIENT
    source: Literal["aws.ecs"]
    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    detail: TaskStateChangeDetail
    # Required by EventBridgeModel; optional here so a transformed event without it parses.
    resources: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: object) -> object:
        return _drop_blank(data)

    @property
    def task_arn(self) -> str:
        """The detail's taskArn, else the envelope's first resource (some samples lack it)."""
        if self.detail.task_arn:
            return self.detail.task_arn
        if self.resources:
            return self.resources[0]
        raise ValueError("ECS Task State Change event names no task (no taskArn, no resources)")

    def stopped_task(self, agent_container: str) -> StoppedTask:
        agent = self.detail.container(agent_container)
        return StoppedTask(
            task_arn=self.task_arn,
            stop_code=self.detail.stop_code,
            stopped_reason=self.detail.stopped_reason,
            agent_exit_code=agent.exit_code if agent else None,
            agent_reason=agent.reason if agent else None,
        )
