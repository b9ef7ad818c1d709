"""Failure handler: ECS task-stopped events and the launch dead-letter queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from fargate_stack.bootstrap import failure_handler
from fargate_stack.intake import parse_launch_message, parse_task_state_change
from fargate_stack.observability import logger, metrics, tracer

# Every record failing (e.g. a Buildkite outage) is reported per record rather than raised:
# the outcome is the same redelivery, without a Lambda error per outage to alarm on.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def gave_up_record(record: SQSRecord) -> dict[str, object]:
    logger.set_correlation_id(record.message_id)
    message = parse_launch_message(record.body, message_id=record.message_id)
    receives = int(record.attributes.approximate_receive_count)
    return failure_handler().on_launch_gave_up(message, receives).as_dict()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if "Records" in event:  # the launch dead-letter queue (SQS batch)
        return process_partial_response(
            event=event, record_handler=gave_up_record, processor=processor, context=context
        )
    return failure_handler().on_task_stopped(parse_task_state_change(event)).as_dict()
