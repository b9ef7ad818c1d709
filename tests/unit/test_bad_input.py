"""Property-based: whatever arrives at the edges, the stack either understands it or says
why (BadInputError / LaunchRejectedError / a typed Stacks API error) — never another
exception, and job data never reaches a variable the stack controls."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fargate_stack.domain.launch import (
    Capacity,
    LaunchRejectedError,
    build_launch_spec,
)
from fargate_stack.domain.task_identity import ACQUIRE_JOB_ENV
from fargate_stack.errors import BadInputError
from fargate_stack.intake import parse_launch_message, parse_task_state_change
from fargate_stack.models.ecs import TaskStateChangeEvent
from fargate_stack.models.messages import LaunchMessage
from tests.unit.domain.test_launch import CONFIG, JOB

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


@FAST
@given(st.one_of(st.text(), json_values.map(json.dumps)))
def test_any_sqs_body_is_a_launch_message_or_a_named_rejection(body: str) -> None:
    try:
        assert isinstance(parse_launch_message(body, message_id="m-1"), LaunchMessage)
    except BadInputError as exc:
        assert "m-1" in str(exc)


@FAST
@given(json_values)
def test_any_eventbridge_event_is_a_task_state_change_or_a_named_rejection(event: Any) -> None:
    try:
        assert isinstance(parse_task_state_change(event), TaskStateChangeEvent)
    except BadInputError as exc:
        assert "not an ECS Task State Change" in str(exc)


ecs_like = st.fixed_dictionaries(
    {
        "version": st.just("0"),
        "id": st.text(max_size=8),
        "detail-type": st.sampled_from(["ECS Task State Change", "Other"]),
        "source": st.sampled_from(["aws.ecs", "aws.ec2"]),
        "account": st.text(max_size=12),
        "time": st.sampled_from(["2026-11-28T10:00:00Z", "yesterday"]),
        "region": st.just("us-east-1"),
        "resources": st.lists(st.text(max_size=10), max_size=2),
        "detail": st.dictionaries(
            st.sampled_from(
                ["lastStatus", "stopCode", "stoppedReason", "group", "startedBy", "containers"]
            ),
            json_values,
        ),
    }
)


@FAST
@given(ecs_like)
def test_ecs_shaped_events_with_random_details_never_escape_as_other_errors(event: Any) -> None:
    with contextlib.suppress(BadInputError):
        parse_task_state_change(event)


rule_text = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["queue", "cpu", "memory", "task-definition", "fargate-stack", "os", "x"]),
        st.text(max_size=30),
    ),
)


@FAST
@given(
    rules=st.lists(rule_text, max_size=30),
    env=st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=10),
)
def test_job_data_never_reaches_a_variable_the_stack_controls(
    rules: list[str], env: dict[str, str]
) -> None:
    try:
        spec = build_launch_spec(
            CONFIG, job_uuid=JOB, agent_query_rules=rules, job_env=env, capacity=Capacity.SPOT
        )
    except LaunchRejectedError as exc:
        assert exc.reason  # a reason the developer is told
        return
    variables = dict(spec.environment)
    # Exactly the stack's two variables: no token, nothing named by the job.
    assert set(variables) == {ACQUIRE_JOB_ENV, "BUILDKITE_AGENT_TAGS"}
    assert variables[ACQUIRE_JOB_ENV] == JOB
    tags = dict(pair.split("=", 1) for pair in variables["BUILDKITE_AGENT_TAGS"].split(","))
    assert tags["queue"] == "fargate"
    assert tags["fargate-stack"] == "fargate-prod"
    assert all(ch not in variables["BUILDKITE_AGENT_TAGS"] for ch in "\n\r\x00")
    assert spec.cluster == "bk"
    assert spec.task_definition == "bk-agent"


@pytest.mark.parametrize("bad", [[], "text", 7, None])
def test_an_event_that_is_not_an_object_is_rejected_by_name(bad: Any) -> None:
    with pytest.raises(BadInputError):
        parse_task_state_change(bad)
