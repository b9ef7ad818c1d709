"""Given reserved jobs enqueued by the real poller, when the real launcher consumes the
batch, then each job gets exactly one Fargate task with the specified parameters, even
when the batch is delivered again; a bad body fails alone."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.core.responses import ActionResult
from moto.ecs.responses import EC2ContainerServiceResponse

from tests.support.deployed import STACK_KEY, DeployedStack, Loader
from tests.support.emulator import EMULATOR_TOKEN

SPOT_FULL = "Capacity is unavailable at this time. Please try again later"


def enqueue(deployed: DeployedStack, sample: Loader, *job_ids: str) -> dict[str, Any]:
    return deployed.enqueue_listed(sample("poller-tick.json"), *job_ids)


def test_one_task_per_job_with_the_specified_parameters(
    deployed: DeployedStack, sample: Loader
) -> None:
    job = deployed.create_job(env={"BUILDKITE_PIPELINE_SLUG": "app", "BUILDKITE_BUILD_NUMBER": "7"})
    event = enqueue(deployed, sample, job)

    response = deployed.invoke("launcher", event)

    assert response == {"batchItemFailures": []}
    (task,) = deployed.tasks()
    assert task["startedBy"] == STACK_KEY
    assert task["group"] == f"buildkite-job:{job}"
    (container,) = task["overrides"]["containerOverrides"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["BUILDKITE_AGENT_ACQUIRE_JOB"] == job
    # AgentTokenMode=job-acquisition-token (the default): the token Buildkite issued for
    # this job, never the cluster token
    issued = deployed.control("GET", "job-acquisition-tokens")["tokens"]
    assert {"job_uuid": job, "token": env["BUILDKITE_AGENT_TOKEN"]}.items() <= {
        **next(t for t in issued if t["job_uuid"] == job)
    }.items()
    assert env["BUILDKITE_AGENT_TOKEN"] != EMULATOR_TOKEN
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags["buildkite:job"] == job
    assert tags["buildkite:pipeline"] == "app"
    notes = deployed.job(job)["notifications"]
    assert len(notes) == 1
    assert notes[0]["detail"].startswith("Fargate task ")
    assert "1024 CPU units / 2048 MiB, spot" in notes[0]["detail"]


def test_redelivery_and_duplicates_start_no_second_task(
    deployed: DeployedStack, sample: Loader
) -> None:
    job = deployed.create_job()
    event = enqueue(deployed, sample, job)
    deployed.invoke("launcher", event)
    # The same batch again (SQS at-least-once), then as a redelivery (receive count 2).
    deployed.invoke("launcher", event)
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "2"
    deployed.invoke("launcher", event)
    assert len(deployed.tasks()) == 1


def test_a_bad_body_fails_alone(deployed: DeployedStack, sample: Loader) -> None:
    job = deployed.create_job()
    event = enqueue(deployed, sample, job)
    bad = sample("launcher-batch.json")["Records"][2]
    event["Records"].append(bad)
    response = deployed.invoke("launcher", event)
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert len(deployed.tasks()) == 1


def test_a_size_the_stack_does_not_allow_is_failed_back(
    deployed: DeployedStack, sample: Loader
) -> None:
    job = deployed.create_job(agent_query_rules=["queue=fargate", "os=linux", "memory=8192"])
    event = enqueue(deployed, sample, job)
    response = deployed.invoke("launcher", event)
    assert response == {"batchItemFailures": []}
    assert deployed.tasks() == []
    view = deployed.job(job)
    assert view["state"] == "finished"
    assert view["finished_by"] == "stack"
    assert view["exit_status"] == -1
    assert "does not allow jobs to choose their size" in view["finish_detail"]


def test_a_buildkite_outage_leaves_the_record_for_retry(
    deployed: DeployedStack, sample: Loader
) -> None:
    job = deployed.create_job()
    event = enqueue(deployed, sample, job)
    deployed.control(
        "POST", "faults", {"endpoint": "show-job", "kind": "status", "status": 503, "count": 10}
    )
    response = deployed.invoke("launcher", event)
    (message_id,) = [r["messageId"] for r in event["Records"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert deployed.tasks() == []
    deployed.control("DELETE", "faults")
    assert deployed.invoke("launcher", event) == {"batchItemFailures": []}
    assert len(deployed.tasks()) == 1


def forget_launches(deployed: DeployedStack) -> None:
    """What a crash between RunTask and the ledger's save leaves: no launch record (an
    in-progress record past its deadline counts as none); fallback marks stay."""
    dynamodb = boto3.client("dynamodb")
    table = deployed.aws.id_of("LaunchLedger")
    for item in dynamodb.scan(TableName=table)["Items"]:
        if not item["id"]["S"].startswith("fallback#"):
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})


def redelivered(event: dict[str, object]) -> dict[str, object]:
    for record in event["Records"]:  # type: ignore[attr-defined]
        record["attributes"]["ApproximateReceiveCount"] = "2"
    return event


def test_given_a_crash_after_run_task_when_redelivered_then_no_second_task(
    deployed: DeployedStack, sample: Loader
) -> None:
    job = deployed.create_job()
    event = enqueue(deployed, sample, job)
    deployed.invoke("launcher", event)
    forget_launches(deployed)

    response = deployed.invoke("launcher", redelivered(event))

    assert response == {"batchItemFailures": []}
    assert len(deployed.tasks()) == 1  # ECS's client token answered the first task


def test_given_a_crash_after_the_on_demand_fallback_when_redelivered_then_no_spot_task(
    deployed: DeployedStack, sample: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = deployed.create_job()
    event = enqueue(deployed, sample, job)
    spot_full = {"left": 1}
    run_task = EC2ContainerServiceResponse.run_task

    def no_spot_once(self: EC2ContainerServiceResponse) -> object:
        strategy = self._get_param("capacityProviderStrategy") or []
        if spot_full["left"] and strategy[0]["capacityProvider"] == "FARGATE_SPOT":
            spot_full["left"] -= 1
            return ActionResult({"tasks": [], "failures": [{"reason": SPOT_FULL}]})
        return run_task(self)

    monkeypatch.setattr(EC2ContainerServiceResponse, "run_task", no_spot_once)
    deployed.invoke("launcher", event)  # Spot refused, on-demand started
    forget_launches(deployed)

    response = deployed.invoke("launcher", redelivered(event))  # Spot has room now

    assert response == {"batchItemFailures": []}
    (task,) = deployed.tasks()
    assert task["capacityProviderName"] == "FARGATE"
