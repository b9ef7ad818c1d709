"""Stack notifications shown on a job (Go ``stack_notification.go``).

Reference: docs/reference/stacks-api.md §3.8.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fargate_stack.stacksapi.errors import StacksAPIError
from fargate_stack.stacksapi.transport import BaseClient, RetryArg
from fargate_stack.stacksapi.types import APIModel, ListIfNull
from fargate_stack.stacksapi.wire import build_path, chunks, require_text

# `detail` is at most 256 characters, counted as characters by the server (Buildkite
# docs "Create stack notifications"). The suffix is agent-stack-k8s's, which crops
# notifications the same way (to 255 bytes there; we follow the current docs).
NOTIFICATION_DETAIL_MAX_CHARS = 256
NOTIFICATION_CROP_SUFFIX = "… (cropped)"


def crop_notification_detail(
    detail: str,
    max_chars: int = NOTIFICATION_DETAIL_MAX_CHARS,
    suffix: str = NOTIFICATION_CROP_SUFFIX,
) -> str:
    """``detail`` unchanged if it fits, else cut so that with ``suffix`` it is exactly
    ``max_chars`` characters: a too-long note should arrive shortened, not be refused."""
    if len(detail) <= max_chars:
        return detail
    return detail[: max_chars - len(suffix)] + suffix


class StackNotification(BaseModel):
    """One notification to send; ``timestamp`` None lets the server use "now"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_uuid: str
    detail: str
    timestamp: datetime | None = None

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # A naive time would be read in the server's zone, not ours: refuse to guess.
        if value is not None and value.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware")
        return value

    def to_wire(self) -> dict[str, str]:
        item = {"job_uuid": self.job_uuid, "detail": crop_notification_detail(self.detail)}
        if self.timestamp is not None:
            # RFC 3339 in UTC with "Z", as Go's time.Time marshals.
            stamp = self.timestamp.astimezone(UTC).isoformat()
            item["timestamp"] = stamp.replace("+00:00", "Z")
        return item


class NotificationError(APIModel):
    """``indexes`` are positions in the list the caller passed (re-based across chunks)."""

    error: str
    indexes: Annotated[list[int], ListIfNull]


class CreateStackNotificationsResponse(APIModel):
    """Partial success: every notification not listed in ``errors`` was created."""

    errors: Annotated[list[NotificationError], ListIfNull] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class StackNotificationMixin(BaseClient):
    def create_stack_notifications(
        self,
        *,
        stack_key: str,
        notifications: Sequence[StackNotification | Mapping[str, Any]],
        retry: RetryArg = None,
    ) -> CreateStackNotificationsResponse:
        """Send any number of notifications, 1000 per request, each ``detail`` cropped to
        256 characters. Per-item failures come back in ``errors`` (and are logged), not as
        an exception. An empty list sends nothing.
        """
        path = build_path("stacks/{key}/notifications", key=require_text("stack_key", stack_key))
        if isinstance(notifications, str | bytes | Mapping):
            raise TypeError("notifications must be a list of notifications")
        items = [
            n if isinstance(n, StackNotification) else StackNotification.model_validate(n)
            for n in notifications
        ]
        merged: dict[str, list[int]] = {}
        for offset, chunk in chunks(items):
            body = {"notifications": [item.to_wire() for item in chunk]}
            try:
                answer = self._request(
                    "POST", path, body=body, model=CreateStackNotificationsResponse, retry=retry
                )
            except StacksAPIError as exc:
                exc.partial = _response(merged)
                raise
            for problem in answer.errors:
                # One entry per error text, as the server groups them in one request.
                merged.setdefault(problem.error, []).extend(i + offset for i in problem.indexes)
        result = _response(merged)
        if result.errors:
            self._logger.warning(
                "Stacks API refused some notifications",
                extra={
                    "stack_key": stack_key,
                    "notification_errors": [e.model_dump() for e in result.errors],
                },
            )
        return result

    def create_stack_notification(
        self,
        *,
        stack_key: str,
        job_uuid: str,
        detail: str,
        timestamp: datetime | None = None,
        retry: RetryArg = None,
    ) -> CreateStackNotificationsResponse:
        """One notification; check ``.ok`` on the answer (a refusal is not an exception)."""
        note = StackNotification(
            job_uuid=require_text("job_uuid", job_uuid), detail=detail, timestamp=timestamp
        )
        return self.create_stack_notifications(
            stack_key=stack_key, notifications=[note], retry=retry
        )


def _response(merged: Mapping[str, list[int]]) -> CreateStackNotificationsResponse:
    return CreateStackNotificationsResponse(
        errors=[NotificationError(error=text, indexes=idx) for text, idx in merged.items()]
    )
