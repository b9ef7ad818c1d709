"""Fuzz: whatever JSON (or not-JSON) the server answers with a 200, the client returns a
typed response or raises a StacksAPIError subclass, never anything else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fargate_stack.stacksapi import RetryPolicy, StacksAPIError, StacksClient
from tests.support.scripted_server import Reply, ScriptedServer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=15,
)
# Plausible shapes too, so the fuzz reaches the field validators, not only the top level.
job_like = st.fixed_dictionaries(
    {"id": st.text(max_size=40), "priority": json_values, "agent_query_rules": json_values},
    optional={"scheduled_at": json_values, "env": json_values, "state": json_values},
)
bodies = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=50),
    st.builds(
        lambda jobs, info: json.dumps({"jobs": jobs, "page_info": info}),
        st.lists(job_like, max_size=3),
        json_values,
    ),
    job_like.map(lambda job: json.dumps({"job": job})),
)
NO_RETRY = RetryPolicy(max_attempts=1, sleep=lambda _: None, random=lambda: 0.0)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_any_200_body_is_typed_or_a_stacks_api_error(server: ScriptedServer, body: str) -> None:
    with StacksClient("bkct_fuzz", base_url=server.base_url, retry=NO_RETRY) as client:
        calls: list[Any] = [
            lambda: client.list_scheduled_jobs(stack_key="s", queue_key="q"),
            lambda: client.get_job(stack_key="s", job_uuid="a"),
            lambda: client.get_job_states(stack_key="s", job_uuids=["a"]),
        ]
        for call in calls:
            server.reply(Reply(200, body=body.encode()))
            with contextlib.suppress(StacksAPIError):
                call()
