"""Poller: every scheduler tick, poll the Stacks API until shortly before the timeout."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from fargate_stack.bootstrap import poller
from fargate_stack.observability import logger, metrics, tracer
from fargate_stack.usecases.poll import run_polls


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wiring = poller()
    summaries = run_polls(
        wiring.jobs,
        wiring.clock,
        wiring.timing,
        lambda: context.get_remaining_time_in_millis() / 1000,
        wiring.lease_for(context.aws_request_id),
        stopper=wiring.stopper,
    )
    return {"polls": len(summaries), "enqueued": sum(s.enqueued for s in summaries)}
