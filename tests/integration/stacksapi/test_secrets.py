"""No token anywhere: logs (payload logging on), errors, reprs, across a full flow."""

from __future__ import annotations

import logging

import pytest

from fargate_stack.stacksapi import StacksAPIError, StacksClient
from local.emulator import Emulator
from tests.support.emulator import (
    CLIENT_QUEUE,
    CLIENT_STACK_KEY,
    EMULATOR_TOKEN,
    Control,
    VirtualSleep,
    policy,
)


def test_token_and_job_tokens_never_reach_logs_errors_or_reprs(
    emulator: Emulator,
    control: Control,
    sleeps: VirtualSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = StacksClient(
        EMULATOR_TOKEN, base_url=emulator.base_url, log_payloads=True, retry=policy(sleeps)
    )
    jobs = control.jobs(3)
    control.fault(endpoint="show-job", kind="status", status=503, count=1)
    control.fault(endpoint="batch-load-job-states", kind="drop", count=1)
    control.fault(endpoint="list-scheduled-jobs", kind="malformed_json", count=1)
    seen: list[str] = [repr(client), str(client)]
    with caplog.at_level(logging.DEBUG):  # every logger, urllib3's included
        client.register_stack(key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE)
        list(client.iter_scheduled_jobs(stack_key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE))
        client.batch_reserve_jobs(stack_key=CLIENT_STACK_KEY, job_uuids=jobs)
        client.get_job(stack_key=CLIENT_STACK_KEY, job_uuid=jobs[0])
        client.get_job_states(stack_key=CLIENT_STACK_KEY, job_uuids=jobs)
        client.create_stack_notification(stack_key=CLIENT_STACK_KEY, job_uuid=jobs[0], detail="hi")
        jats = client.issue_job_acquisition_tokens(stack_key=CLIENT_STACK_KEY, job_uuids=jobs)
        client.fail_job(stack_key=CLIENT_STACK_KEY, job_uuid=jobs[0], detail="failed")
        for bad in (
            lambda: client.get_job(stack_key="nope", job_uuid=jobs[0]),
            lambda: client.fail_job(stack_key=CLIENT_STACK_KEY, job_uuid=jobs[0], detail="again"),
        ):
            with pytest.raises(StacksAPIError) as info:
                bad()
            seen += [str(info.value), repr(info.value), repr(vars(info.value))]
        client.deregister_stack(stack_key=CLIENT_STACK_KEY)
    jat_values = [t.token.get_secret_value() for t in jats.job_acquisition_tokens]
    assert len(jat_values) == 3
    seen.append(repr(jats))
    seen.append(caplog.text)
    seen += [repr(vars(record)) for record in caplog.records]
    everything = "\n".join(seen)

    assert "Stacks API request payload" in caplog.text  # payload logging was on
    assert '"detail":"failed"' in caplog.text
    assert EMULATOR_TOKEN not in everything
    for value in jat_values:
        assert value not in everything
