"""Powertools' SQS batch processor, with one log line per failed record.

Out of the box a failed record is reported to SQS and logged only at debug level, so a
record that fails and is redelivered (throttling, a Buildkite outage, a lock held by a
crashed invocation) left no trace in the function's log; the chaos soak's stalls could not
be told apart. Powertools can log failures with a ``logging.Logger``, but with a traceback
for every expected, retried error; this logs one warning with the error instead, and the
traceback only for errors the stack did not raise on purpose.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, FailureResponse
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from fargate_stack.errors import StackError
from fargate_stack.observability import logger

# Enough of an error to recognise it; Stacks API errors quote response bodies.
_ERROR_EXCERPT = 500


class LoggedBatchProcessor(BatchProcessor):
    def __init__(self) -> None:
        # Every record failing (e.g. a Buildkite outage) is reported per record rather than
        # raised: the same redelivery, without a Lambda error per outage to alarm on.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def failure_handler(self, record: SQSRecord, exception: ExceptionInfo) -> FailureResponse:
        kind, error, _ = exception
        expected = isinstance(error, StackError)
        logger.warning(
            "record failed; SQS will deliver it again",
            extra={
                "message_id": record.message_id,
                "error_type": kind.__name__ if kind else None,
                "error": str(error)[:_ERROR_EXCERPT],
            },
            exc_info=None if expected else error,
        )
        return super().failure_handler(record, exception)
