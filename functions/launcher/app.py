"""Launcher: one Fargate task per SQS record, partial batch failures for retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from fargate_stack.batch import LoggedBatchProcessor
from fargate_stack.bootstrap import launcher
from fargate_stack.intake import parse_launch_message
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.observability import logger, metrics, tracer
from fargate_stack.usecases.job_tokens import NotReservedError

processor = LoggedBatchProcessor()


def launch_record(record: SQSRecord) -> dict[str, str]:
    logger.set_correlation_id(record.message_id)
    message = parse_launch_message(record.body, message_id=record.message_id)
    redelivered = int(record.attributes.approximate_receive_count) > 1
    try:
        return launcher().launch_once(message=message, redelivered=redelivered)
    except NotReservedError:
        # Acknowledged, and not kept in the ledger: if the job is listed again, its next
        # message must launch it (usecases/job_tokens.py).
        logger.info("job no longer reserved by this stack; no token, no task")
        return {"outcome": "not_reserved"}


def _messages(event: Mapping[str, Any]) -> list[LaunchMessage]:
    """The batch's jobs, for the one token request (records that do not parse get none)."""
    messages = []
    for record in event.get("Records", []):
        try:
            messages.append(LaunchMessage.model_validate_json(record["body"]))
        except (KeyError, TypeError, ValidationError):
            continue  # the record's own handling reports it
    return messages


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    wiring = launcher()
    wiring.idempotency.register_lambda_context(context)
    wiring.use_case.set_deadline(lambda: context.get_remaining_time_in_millis() / 1000)
    wiring.use_case.prepare_tokens(_messages(event))
    try:
        return process_partial_response(
            event=event, record_handler=launch_record, processor=processor, context=context
        )
    finally:
        wiring.use_case.flush_notifications()
