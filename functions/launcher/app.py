"""Launcher: one Fargate task per SQS record, partial batch failures for retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from fargate_stack.batch import LoggedBatchProcessor
from fargate_stack.bootstrap import launcher
from fargate_stack.intake import parse_launch_message
from fargate_stack.observability import logger, metrics, tracer

processor = LoggedBatchProcessor()


def launch_record(record: SQSRecord) -> dict[str, str]:
    logger.set_correlation_id(record.message_id)
    message = parse_launch_message(record.body, message_id=record.message_id)
    redelivered = int(record.attributes.approximate_receive_count) > 1
    return launcher().launch_once(message=message, redelivered=redelivered)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    wiring = launcher()
    wiring.idempotency.register_lambda_context(context)
    wiring.use_case.set_deadline(lambda: context.get_remaining_time_in_millis() / 1000)
    try:
        return process_partial_response(
            event=event, record_handler=launch_record, processor=processor, context=context
        )
    finally:
        wiring.use_case.flush_notifications()
