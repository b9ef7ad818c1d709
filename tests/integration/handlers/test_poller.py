"""Given jobs in the emulator, when the real poller handler runs against moto, then the
matching jobs are reserved and enqueued, one message each, and nothing else is."""

from __future__ import annotations

import json

from fargate_stack.models.messages import LaunchMessage
from tests.support.deployed import STACK_KEY, DeployedStack, Loader


def test_poll_reserves_and_enqueues_matching_jobs(deployed: DeployedStack, sample: Loader) -> None:
    high = deployed.create_job(priority=5)
    low = deployed.create_job(priority=0)
    gpu = deployed.create_job(agent_query_rules=["queue=fargate", "gpu=true"])

    result = deployed.invoke("poller", sample("poller-tick.json"), timeout=2.5)

    assert result["polls"] >= 1
    messages = deployed.receive("LaunchQueue")
    bodies = [LaunchMessage.model_validate_json(m["Body"]) for m in messages]
    assert sorted(str(b.job_uuid) for b in bodies) == sorted([high, low])
    assert all(b.stack_key == STACK_KEY for b in bodies)
    assert deployed.job(high)["state"] == "reserved"
    assert deployed.job(high)["reservation"]["stack_key"] == STACK_KEY
    assert deployed.job(gpu)["state"] == "scheduled"
    stacks = deployed.control("GET", "stacks")["stacks"]
    assert [s["key"] for s in stacks] == [STACK_KEY]
    assert json.loads(messages[0]["Body"])["version"] == 1


def test_paused_queue_reserves_nothing(deployed: DeployedStack, sample: Loader) -> None:
    job = deployed.create_job()
    deployed.control("POST", "queues/fargate/pause", {"paused": True})
    deployed.invoke("poller", sample("poller-tick.json"), timeout=2.5)
    assert deployed.receive("LaunchQueue") == []
    assert deployed.job(job)["state"] == "scheduled"


def test_a_failed_listing_is_retried_at_the_next_poll(
    deployed: DeployedStack, sample: Loader
) -> None:
    job = deployed.create_job()
    deployed.control(
        "POST",
        "faults",
        {"endpoint": "list-scheduled-jobs", "kind": "status", "status": 503, "count": 1},
    )
    deployed.invoke("poller", sample("poller-tick.json"), timeout=4)
    (message,) = deployed.receive("LaunchQueue")
    assert str(LaunchMessage.model_validate_json(message["Body"]).job_uuid) == job
    assert deployed.job(job)["state"] == "reserved"
