"""Failure handler: ECS task-stopped events, the launch dead-letter queue, and the events
it failed on before (retried from EventsDeadLetterQueue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from fargate_stack.batch import LoggedBatchProcessor
from fargate_stack.bootstrap import failure_handler
from fargate_stack.intake import parse_failure_record, parse_task_state_change
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.observability import logger, metrics, tracer

processor = LoggedBatchProcessor()


def failure_record(record: SQSRecord) -> dict[str, object]:
    logger.set_correlation_id(record.message_id)
    parsed = parse_failure_record(record.body, message_id=record.message_id)
    if isinstance(parsed, LaunchMessage):  # the launcher gave up on it
        receives = int(record.attributes.approximate_receive_count)
        return failure_handler().use_case.on_launch_gave_up(parsed, receives).as_dict()
    return failure_handler().use_case.on_task_stopped(parsed).as_dict()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if "Records" in event:  # one of its two queues (SQS batch)
        return process_partial_response(
            event=event, record_handler=failure_record, processor=processor, context=context
        )
    return failure_handler().use_case.on_task_stopped(parse_task_state_change(event)).as_dict()
