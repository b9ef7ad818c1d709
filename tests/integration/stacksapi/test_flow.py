"""Every endpoint end to end, and the exact wire each call produced (the call log)."""

from __future__ import annotations

import pytest

from fargate_stack.stacksapi import (
    USER_AGENT,
    StacksClient,
    StacksNotFoundError,
    StacksValidationError,
)
from tests.support.emulator import CLIENT_QUEUE, CLIENT_STACK_KEY, Control


def test_the_whole_lifecycle(client: StacksClient, control: Control) -> None:
    high, low, other = control.jobs(1, priority=5) + control.jobs(2)
    control.clear_calls()

    registered = client.register_stack(
        key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE, metadata={"v": "1"}
    )
    assert (registered.key, registered.cluster_queue_key, registered.type) == (
        CLIENT_STACK_KEY,
        CLIENT_QUEUE,
        "custom",
    )
    assert registered.state == "connected"

    (page,) = client.iter_scheduled_jobs(
        stack_key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE, page_size=10
    )
    assert [j.id for j in page.jobs] == [high, low, other]  # oldest first
    assert page.jobs[0].priority == 5
    assert page.jobs[0].agent_query_rules == [f"queue={CLIENT_QUEUE}"]
    assert page.cluster_queue.dispatch_paused is False
    assert page.page_info.has_next_page is False

    reserved = client.batch_reserve_jobs(
        stack_key=CLIENT_STACK_KEY, job_uuids=[high, low, other], reservation_expiry_seconds=600
    )
    assert sorted(reserved.reserved) == sorted([high, low, other])
    assert reserved.not_reserved == []
    assert client.list_scheduled_jobs(stack_key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE).jobs == []

    job = client.get_job(stack_key=CLIENT_STACK_KEY, job_uuid=high)
    assert job.id == high
    assert job.command == "echo hello"
    assert job.env["BUILDKITE_JOB_ID"] == high

    states = client.get_job_states(stack_key=CLIENT_STACK_KEY, job_uuids=[high, low])
    assert states.states == {high: "reserved", low: "reserved"}

    notes = client.create_stack_notifications(
        stack_key=CLIENT_STACK_KEY,
        notifications=[{"job_uuid": high, "detail": "Fargate task starting"}],
    )
    assert notes.ok
    assert client.create_stack_notification(
        stack_key=CLIENT_STACK_KEY, job_uuid=low, detail="Fargate task starting"
    ).ok

    jats = client.issue_job_acquisition_tokens(
        stack_key=CLIENT_STACK_KEY, job_uuids=[low], token_lifetime_seconds=300
    )
    token = jats.token_for(low)
    assert token is not None
    assert token.token.get_secret_value().startswith("bkjat_")

    client.fail_job(stack_key=CLIENT_STACK_KEY, job_uuid=high, detail="image pull failed")
    client.finish_job(
        stack_key=CLIENT_STACK_KEY, job_uuid=other, detail="nothing to run", exit_status=0
    )

    client.deregister_stack(stack_key=CLIENT_STACK_KEY)
    with pytest.raises(StacksNotFoundError):
        client.list_scheduled_jobs(stack_key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE, retry=False)

    failed, done = control.job(high), control.job(other)
    assert (failed["state"], failed["exit_status"], failed["finished_by"]) == (
        "finished",
        -1,
        "stack",
    )
    assert failed["finish_detail"] == "image pull failed"
    assert failed["notifications"][0]["detail"] == "Fargate task starting"
    assert done["exit_status"] == 0  # the Go client could not have sent this 0
    assert control.job(low)["reservation"]["stack_key"] == CLIENT_STACK_KEY

    wire = [(c["method"], c["path"], c["query"], c["status"]) for c in control.calls()]
    base = f"/v3/stacks/{CLIENT_STACK_KEY}"
    assert wire == [
        ("POST", "/v3/stacks/register", "", 201),
        ("GET", f"{base}/scheduled-jobs", f"limit=10&queue_key={CLIENT_QUEUE}", 200),
        ("PUT", f"{base}/scheduled-jobs/batch-reserve", "", 200),
        ("GET", f"{base}/scheduled-jobs", f"queue_key={CLIENT_QUEUE}", 200),
        ("GET", f"{base}/jobs/{high}", "", 200),
        ("POST", f"{base}/jobs/get-states", "", 200),
        ("POST", f"{base}/notifications", "", 200),
        ("POST", f"{base}/notifications", "", 200),
        ("POST", f"{base}/job-acquisition-tokens", "", 201),
        ("POST", f"{base}/jobs/{high}/finish", "", 200),
        ("POST", f"{base}/jobs/{other}/finish", "", 200),
        ("POST", f"{base}/deregister", "", 204),
        ("GET", f"{base}/scheduled-jobs", f"queue_key={CLIENT_QUEUE}", 404),
    ]


def test_register_is_idempotent(client: StacksClient, control: Control) -> None:
    first = client.register_stack(key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE)
    again = client.register_stack(key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE)
    assert first.id == again.id
    assert [c["status"] for c in control.calls("register")] == [201, 200]


def test_headers_reach_the_server(
    client: StacksClient, emulator: object, registered_key: str
) -> None:
    # The emulator would 401 a wrong Authorization; the UA names us after the prefix.
    client.get_job_states(stack_key=registered_key, job_uuids=["x"])
    assert client.user_agent == f"stacksapi-integration-tests {USER_AGENT}"


def test_dispatch_paused_comes_through(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    control.call("POST", f"queues/{CLIENT_QUEUE}/pause", {"paused": True})
    page = client.list_scheduled_jobs(stack_key=registered_key, queue_key=CLIENT_QUEUE)
    assert page.cluster_queue.dispatch_paused is True


def test_reserve_by_another_stack_is_not_reserved(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    (job,) = control.jobs(1)
    client.register_stack(key="other-stack", queue_key=CLIENT_QUEUE)
    assert client.batch_reserve_jobs(stack_key="other-stack", job_uuids=[job]).reserved == [job]
    answer = client.batch_reserve_jobs(stack_key=registered_key, job_uuids=[job])
    assert (answer.reserved, answer.not_reserved) == ([], [job])


def test_jats_only_for_jobs_this_stack_reserved(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    mine, loose = control.jobs(2)
    client.batch_reserve_jobs(stack_key=registered_key, job_uuids=[mine])
    answer = client.issue_job_acquisition_tokens(stack_key=registered_key, job_uuids=[mine, loose])
    assert [t.job_uuid for t in answer.job_acquisition_tokens] == [mine]
    assert answer.not_issued == [loose]


def test_unknown_stack_is_a_not_found_with_gos_message_format(
    client: StacksClient, control: Control, emulator: object
) -> None:
    client.register_stack(key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE)
    with pytest.raises(StacksNotFoundError) as info:
        client.list_scheduled_jobs(stack_key="never-registered", queue_key=CLIENT_QUEUE)
    error = info.value
    url = f"{client.base_url}stacks/never-registered/scheduled-jobs?queue_key={CLIENT_QUEUE}"
    assert str(error) == f"GET {url}: 404 {error.server_message}"
    assert error.server_message  # the emulator's own words, taken from the JSON body
    assert error.rate_limit is not None
    assert error.rate_limit.scope == "list-scheduled-jobs"
    assert len(control.calls("list-scheduled-jobs")) == 1  # 404 is never retried


def test_a_dotted_job_id_is_escaped_on_the_wire(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    with pytest.raises(StacksNotFoundError):
        client.get_job(stack_key=registered_key, job_uuid="../jobs/x.y")
    (call,) = control.calls()
    assert call["path"] == f"/v3/stacks/{registered_key}/jobs/%2E%2E%2Fjobs%2Fx%2Ey"
    assert call["endpoint"] == "show-job"  # one segment: it reached the job route


def test_server_validation_is_a_validation_error(client: StacksClient, control: Control) -> None:
    # The stack type is left to the server to judge (new types may appear).
    with pytest.raises(StacksValidationError) as info:
        client.register_stack(key=CLIENT_STACK_KEY, queue_key=CLIENT_QUEUE, type="bogus")
    assert info.value.status == 422
    assert info.value.retryable is False
    assert "type" in info.value.server_message
    assert len(control.calls("register")) == 1
