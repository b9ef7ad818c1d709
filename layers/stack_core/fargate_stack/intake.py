"""Parse what arrives at the edge, or say exactly why not.

Bad input must never vanish (docs/design.md, invariant 5): each failure is logged with the fields
pydantic names, counted, and raised, so the SQS record fails (and ends in a DLQ) or the
EventBridge delivery is retried and then dead-lettered. Nothing here drops a record.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import ValidationError

from fargate_stack.errors import BadInputError
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.observability import Metric, count, logger

if TYPE_CHECKING:
    # Imported where it is used: the launcher parses launch messages only, and the event
    # model (with Powertools' parser models) costs its cold start (docs/performance.md).
    from fargate_stack.models.ecs import TaskStateChangeEvent

# Enough of a bad body to recognise it in the logs; never the whole (possibly huge) text.
_EXCERPT = 200


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]


def parse_launch_message(body: str, *, message_id: str) -> LaunchMessage:
    try:
        return LaunchMessage.model_validate_json(body)
    except ValidationError as exc:
        problems = _problems(exc)
        logger.error(
            "launch message rejected; it stays on the queue and will reach the DLQ",
            extra={"message_id": message_id, "problems": problems, "body": body[:_EXCERPT]},
        )
        count(Metric.BAD_MESSAGES)
        raise BadInputError(f"message {message_id} is not a launch message: {problems}") from None


def parse_task_state_change(event: object) -> TaskStateChangeEvent:
    # Found by a property test: a JSON event that is not an object has no id to name.
    from fargate_stack.models.ecs import TaskStateChangeEvent  # noqa: PLC0415 - see above

    event_id = event.get("id") if isinstance(event, dict) else None
    try:
        return TaskStateChangeEvent.model_validate(event)
    except ValidationError as exc:
        problems = _problems(exc)
        logger.error(
            "event rejected; it is kept (retried, then dead-lettered or parked)",
            extra={"event_id": event_id, "problems": problems},
        )
        count(Metric.BAD_EVENTS)
        raise BadInputError(
            f"event {event_id} is not an ECS Task State Change: {problems}"
        ) from None


def parse_failure_record(body: str, *, message_id: str) -> LaunchMessage | TaskStateChangeEvent:
    """A record of one of the failure handler's two queues, told apart by its shape.

    The launch dead-letter queue holds launch messages (a ``job_uuid``). The events retry
    queue holds task-stopped events the handler failed on: as Lambda's on-failure
    invocation record (the event under ``requestPayload``) or as EventBridge's rule
    dead letter (the event itself, with ``detail-type``).
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "requestPayload" in parsed:
        return parse_task_state_change(parsed["requestPayload"])
    if isinstance(parsed, dict) and "detail-type" in parsed:
        return parse_task_state_change(parsed)
    return parse_launch_message(body, message_id=message_id)
