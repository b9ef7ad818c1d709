"""Given a task-stopped event from events/ (with a real job's uuid), when the real failure
handler runs, then Buildkite is told only about jobs the agent never took, once."""

from __future__ import annotations

import json
from typing import Any

from tests.support.deployed import DeployedStack, Loader, sqs_event


def stopped(sample: Loader, name: str, job: str) -> dict[str, Any]:
    event = sample(name)
    event["detail"]["group"] = f"buildkite-job:{job}"
    return event


def test_a_reserved_job_whose_image_cannot_be_pulled_is_failed_back(
    deployed: DeployedStack, sample: Loader
) -> None:
    deployed.register()
    job = deployed.create_job()
    deployed.reserve(job)

    decision = deployed.invoke(
        "failure_handler", stopped(sample, "task-stopped-image-pull.json", job)
    )

    assert decision == {"job_uuid": job, "failed": True, "reason": "image_pull"}
    view = deployed.job(job)
    assert view["state"] == "finished"
    assert view["finished_by"] == "stack"
    assert view["exit_status"] == -1
    assert "image could not be pulled" in view["finish_detail"]


def test_duplicate_events_fail_the_job_once(deployed: DeployedStack, sample: Loader) -> None:
    deployed.register()
    job = deployed.create_job()
    deployed.reserve(job)
    event = stopped(sample, "task-stopped-out-of-memory.json", job)
    assert deployed.invoke("failure_handler", event)["failed"] is True
    again = deployed.invoke("failure_handler", event)
    assert again == {"job_uuid": job, "failed": False, "reason": "agent_took_job"}
    history = [h["state"] for h in deployed.job(job)["history"]]
    assert history.count("finished") == 1


def test_a_job_the_agent_took_is_left_alone(deployed: DeployedStack, sample: Loader) -> None:
    deployed.register()
    job = deployed.create_job()
    deployed.control("POST", f"jobs/{job}/cancel")
    decision = deployed.invoke(
        "failure_handler", stopped(sample, "task-stopped-agent-exit.json", job)
    )
    assert decision["failed"] is False
    assert deployed.job(job)["state"] == "canceled"


def test_exit_27_is_never_failed(deployed: DeployedStack, sample: Loader) -> None:
    deployed.register()
    job = deployed.create_job()
    deployed.reserve(job)
    event = stopped(sample, "task-stopped-not-acquirable.json", job)
    assert deployed.invoke("failure_handler", event)["reason"] == "job_not_acquirable"
    assert deployed.job(job)["state"] == "reserved"


def dead_letter(sample: Loader, job: str) -> dict[str, Any]:
    """The sample launch dead letter made into ``job``'s, on its fifth receive."""
    record = sample("dlq-record.json")["Records"][0]
    message = {
        "MessageId": record["messageId"],
        "ReceiptHandle": record["receiptHandle"],
        "Body": json.dumps({**json.loads(record["body"]), "job_uuid": job}),
        "Attributes": {"ApproximateReceiveCount": "5"},
    }
    return sqs_event([message], record["eventSourceARN"])


def test_a_dead_lettered_launch_is_failed_back(deployed: DeployedStack, sample: Loader) -> None:
    deployed.register()
    job = deployed.create_job()
    deployed.reserve(job)
    event = dead_letter(sample, job)
    assert deployed.invoke("failure_handler", event) == {"batchItemFailures": []}
    view = deployed.job(job)
    assert view["finished_by"] == "stack"
    assert "after 5 attempts" in view["finish_detail"]


def test_a_dead_letter_of_a_job_a_later_message_launched_leaves_the_job_to_its_task(
    deployed: DeployedStack, sample: Loader
) -> None:
    # Given a job the poller listed and the launcher started a task for
    job = deployed.create_job()
    deployed.invoke("launcher", deployed.enqueue_listed(sample("poller-tick.json"), job))
    (task,) = deployed.tasks()
    # When an earlier message of the job (a reservation ago) arrives as a dead letter
    event = dead_letter(sample, job)
    # Then the handler finds the task in ECS (as its own role may) and fails nothing
    assert deployed.invoke("failure_handler", event) == {"batchItemFailures": []}
    view = deployed.job(job)
    assert (view["state"], view["finished_by"]) == ("reserved", None)
    assert task["group"] == f"buildkite-job:{job}"


def test_unparseable_dlq_records_are_kept(deployed: DeployedStack, sample: Loader) -> None:
    bad = sample("launcher-batch.json")["Records"][2]
    event = {"Records": [bad]}
    response = deployed.invoke("failure_handler", event)
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}


def retry_batch(sample: Loader, job: str) -> dict[str, Any]:
    """events-retry-batch.json with the job's uuid in both stopped tasks."""
    event = sample("events-retry-batch.json")
    for record in event["Records"]:
        body = json.loads(record["body"])
        task = body.get("requestPayload", body)
        task["detail"]["group"] = f"buildkite-job:{job}"
        record["body"] = json.dumps(body)
    return event


def test_a_stop_event_it_failed_on_is_retried_from_the_queue(
    deployed: DeployedStack, sample: Loader
) -> None:
    """Given Buildkite was down for every try of a stop event (Lambda's on-failure record),
    when the retry queue delivers it with Buildkite back, then the job is failed back."""
    deployed.register()
    job = deployed.create_job()
    deployed.reserve(job)
    event = retry_batch(sample, job)

    response = deployed.invoke("failure_handler", event)

    assert response == {"batchItemFailures": []}
    view = deployed.job(job)
    assert view["finished_by"] == "stack"
    assert "image could not be pulled" in view["finish_detail"]  # the first record


def test_while_buildkite_is_down_the_retried_events_stay_on_the_queue(
    deployed: DeployedStack, sample: Loader
) -> None:
    deployed.register()
    job = deployed.create_job()
    deployed.reserve(job)
    event = retry_batch(sample, job)
    deployed.control(
        "POST",
        "faults",
        {"endpoint": "batch-load-job-states", "kind": "status", "status": 503, "count": 50},
    )

    response = deployed.invoke("failure_handler", event)

    ids = [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
    assert response == {"batchItemFailures": ids}
    assert deployed.job(job)["state"] == "reserved"
