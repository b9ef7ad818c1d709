"""The launch queue message: the poller's promise that a job is reserved for us.

``extra="forbid"``: the poller and launcher ship together, so an unknown field means a
foreign or corrupted message, which must end in the DLQ with its reason rather than be
half-understood.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MESSAGE_VERSION: Final = 1


class LaunchMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = MESSAGE_VERSION
    job_uuid: UUID
    stack_key: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    priority: int = 0
    scheduled_at: AwareDatetime
    reserved_at: AwareDatetime
    reservation_expires_at: AwareDatetime
    # Agent query rules as listed, so the launcher can apply per-job size overrides
    # without another API call.
    agent_query_rules: list[str] = Field(default_factory=list)
    # The listing's `pipeline.uuid`: Buildkite sets it, no job can, so it is what picks the
    # job's task role (PipelineTaskRoles). None from an older poller or a null uuid.
    pipeline_uuid: UUID | None = None

    def to_body(self) -> str:
        return self.model_dump_json()


def remaining_reservation_seconds(message: LaunchMessage, now: datetime) -> float:
    """Seconds before the reservation lapses; a launch after it would race a re-listing."""
    return (message.reservation_expires_at - now).total_seconds()
