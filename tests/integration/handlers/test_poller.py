"""Given jobs in the emulator, when the real poller handler runs against moto, then the
matching jobs are reserved and enqueued, one message each, and nothing else is."""

from __future__ import annotations

import json

from fargate_stack.models.messages import LaunchMessage
from tests.integration.handlers.conftest import STACK_KEY, Loader, Stack


def test_poll_reserves_and_enqueues_matching_jobs(stack: Stack, sample: Loader) -> None:
    high = stack.create_job(priority=5)
    low = stack.create_job(priority=0)
    gpu = stack.create_job(agent_query_rules=["queue=fargate", "gpu=true"])

    result = stack.invoke("poller", sample("poller-tick.json"), timeout=2.5)

    assert result["polls"] >= 1
    messages = stack.receive("LaunchQueue")
    bodies = [LaunchMessage.model_validate_json(m["Body"]) for m in messages]
    assert sorted(str(b.job_uuid) for b in bodies) == sorted([high, low])
    assert all(b.stack_key == STACK_KEY for b in bodies)
    assert stack.job(high)["state"] == "reserved"
    assert stack.job(high)["reservation"]["stack_key"] == STACK_KEY
    assert stack.job(gpu)["state"] == "scheduled"
    stacks = stack.control("GET", "stacks")["stacks"]
    assert [s["key"] for s in stacks] == [STACK_KEY]
    assert json.loads(messages[0]["Body"])["version"] == 1


def test_paused_queue_reserves_nothing(stack: Stack, sample: Loader) -> None:
    job = stack.create_job()
    stack.control("POST", "queues/fargate/pause", {"paused": True})
    stack.invoke("poller", sample("poller-tick.json"), timeout=2.5)
    assert stack.receive("LaunchQueue") == []
    assert stack.job(job)["state"] == "scheduled"


def test_a_failed_listing_is_retried_at_the_next_poll(stack: Stack, sample: Loader) -> None:
    job = stack.create_job()
    stack.control(
        "POST",
        "faults",
        {"endpoint": "list-scheduled-jobs", "kind": "status", "status": 503, "count": 1},
    )
    stack.invoke("poller", sample("poller-tick.json"), timeout=4)
    (message,) = stack.receive("LaunchQueue")
    assert str(LaunchMessage.model_validate_json(message["Body"]).job_uuid) == job
    assert stack.job(job)["state"] == "reserved"
