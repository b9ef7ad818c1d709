"""Fuzz the real handlers: a batch of random bodies never raises out of the handler; every
record is reported failed (so SQS keeps it and the DLQ gets it), and each is logged and
counted. Valid records beside them are not held back."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fargate_stack.observability import metrics
from tests.support.deployed import DeployedStack, sqs_event

junk = st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4).map(json.dumps),
    st.just('{"version": 1, "job_uuid": "not-a-uuid", "stack_key": "k"}'),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bodies=st.lists(junk, min_size=1, max_size=10))
def test_random_launch_bodies_all_fail_alone_and_are_kept(
    deployed: DeployedStack,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    bodies: list[str],
) -> None:
    caplog.clear()
    capsys.readouterr()  # hypothesis reruns this body inside one test: start each clean
    metrics.clear_metrics()
    messages = [
        {"MessageId": f"m-{i}", "ReceiptHandle": f"r-{i}", "Body": body}
        for i, body in enumerate(bodies)
    ]
    event = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:launch")

    response = deployed.invoke("launcher", event)

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {m["MessageId"] for m in messages}
    assert deployed.tasks() == []
    rejected = [r for r in caplog.records if "launch message rejected" in r.getMessage()]
    assert len(rejected) == len(messages)
    out = capsys.readouterr().out
    counted = [
        value
        for line in out.splitlines()
        if line.startswith('{"_aws"')
        for value in json.loads(line).get("BadMessages", [])
    ]
    assert sum(counted) == len(messages)
