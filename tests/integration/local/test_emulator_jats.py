"""Job acquisition tokens in the emulator, over loopback HTTP as an agent and a stack use
them (docs/reference/stacks-api.md §3.9, §7): a JAT registers an agent whose session may
acquire its one job; an expired JAT is refused at registration, and its session at acquire;
a JAT for a job no longer acquirable is refused at registration with the 422 the agent
turns into exit 27. And the token faults the soak injects (local.emulator.faults)."""

from __future__ import annotations

from typing import Any

import pytest

from local.emulator import Emulator
from tests.support.emulator import Agent, Api


@pytest.fixture
def api(emulator: Emulator) -> Api:
    api = Api(emulator)
    assert api.register().status_code == 201
    return api


def reserved(api: Api, count: int = 1) -> list[str]:
    jobs = api.jobs(*({"queue_key": "q"} for _ in range(count)))
    assert api.reserve(jobs).status_code == 200
    return jobs


def issue(api: Api, jobs: list[str], **body: Any) -> dict[str, Any]:
    answer = api.call(
        "POST", "stacks/stack-a/job-acquisition-tokens", json={"job_uuids": jobs, **body}
    )
    assert answer.status_code == 201, answer.text
    issued: dict[str, Any] = answer.json()
    return issued


def token_fault(api: Api, kind: str, **spec: Any) -> None:
    api.control("POST", "faults", {"endpoint": "job-acquisition-tokens", "kind": kind, **spec})


def token_of(answer: dict[str, Any], job: str) -> str:
    (token,) = [
        t["job_acquisition_token"] for t in answer["job_acquisition_tokens"] if t["job_uuid"] == job
    ]
    return str(token)


def test_an_expired_jat_is_refused_at_registration(api: Api) -> None:
    (job,) = reserved(api)
    token = token_of(issue(api, [job], token_lifetime_seconds=60), job)
    api.advance(61)
    refused = Agent(api, token).register()
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]
    assert api.job(job)["state"] == "reserved"  # nothing acquired it


def test_a_jat_session_acquires_nothing_once_its_token_expired(api: Api) -> None:
    (job,) = reserved(api)
    agent = Agent(api, token_of(issue(api, [job], token_lifetime_seconds=60), job))
    assert agent.register().status_code == 200
    api.advance(61)
    refused = agent.acquire(job)
    assert refused.status_code == 401
    assert "expired" in refused.json()["message"]
    assert api.job(job)["agent"] is None


def test_a_jat_session_acquires_its_own_job_and_no_other(api: Api) -> None:
    job, other = reserved(api, 2)
    answer = issue(api, [job, other])
    agent = Agent(api, token_of(answer, job))
    assert agent.register().status_code == 200
    refused = agent.acquire(other)
    assert refused.status_code == 422
    assert api.job(other)["state"] == "reserved"
    acquired = agent.acquire(job)
    assert acquired.status_code == 200
    assert acquired.json()["id"] == job
    assert api.job(job)["state"] == "accepted"
    # the other job's own token still works for it
    other_agent = Agent(api, token_of(answer, other))
    assert other_agent.register().status_code == 200
    assert other_agent.acquire(other).status_code == 200


def test_a_jat_for_a_job_canceled_since_is_refused_at_registration(api: Api) -> None:
    (job,) = reserved(api)
    token = token_of(issue(api, [job]), job)
    assert api.control("POST", f"jobs/{job}/cancel")["state"] == "canceled"
    refused = Agent(api, token).register()
    assert refused.status_code == 422
    # the status and text buildkite/agent v4.0.3 exits 27 on (buildkite/agent#4355)
    assert refused.json()["message"] == "Job is not eligible for job acquisition registration"


def test_not_issued_fault_withholds_tokens_and_keeps_the_reservations(api: Api) -> None:
    first, second, third = reserved(api, 3)
    token_fault(api, "not_issued", jobs=2)
    answer = issue(api, [first, second, third])
    assert answer["not_issued"] == [first, second]
    assert [t["job_uuid"] for t in answer["job_acquisition_tokens"]] == [third]
    assert {api.job(j)["reservation"]["stack_key"] for j in (first, second)} == {"stack-a"}
    # the next request is served normally
    assert [t["job_uuid"] for t in issue(api, [first])["job_acquisition_tokens"]] == [first]
    listed = api.control("GET", "job-acquisition-tokens")["withheld"]
    assert listed == [
        {"job_uuid": first, "fault": "not_issued"},
        {"job_uuid": second, "fault": "not_issued"},
    ]


def test_a_job_meets_one_token_fault_at_most(api: Api) -> None:
    """A run's last jobs are the only ones still asking for tokens: without this rule they
    would meet every fault the soak adds, again and again."""
    struck, spared = reserved(api, 2)
    token_fault(api, "not_issued")
    assert issue(api, [struck])["not_issued"] == [struck]
    token_fault(api, "not_issued")
    # the second fault passes over the struck job and shapes the next one's answer
    answer = issue(api, [struck, spared])
    assert answer["not_issued"] == [spared]
    assert [t["job_uuid"] for t in answer["job_acquisition_tokens"]] == [struck]


def test_reservation_lost_fault_hands_the_job_to_another_stack_for_a_while(api: Api) -> None:
    job, other = reserved(api, 2)
    token_fault(api, "reservation_lost", seconds=30)
    answer = issue(api, [job, other])
    assert answer["not_issued"] == [job]
    assert api.job(job)["reservation"]["stack_key"] == "another-stack"
    # reserving again cannot take it back from that stack...
    assert api.reserve([job]).json()["not_reserved"] == [job]
    api.advance(31)
    # ...until its reservation lapses and the job is scheduled again
    assert api.job(job)["state"] == "scheduled"


def test_short_lifetime_fault_issues_a_token_that_expires_before_it_is_used(api: Api) -> None:
    job, other = reserved(api, 2)
    token_fault(api, "short_lifetime", seconds=0.5)
    answer = issue(api, [job, other])
    api.advance(1)
    assert Agent(api, token_of(answer, job)).register().status_code == 401
    assert Agent(api, token_of(answer, other)).register().status_code == 200
    faults = {
        t["job_uuid"]: t["fault"] for t in api.control("GET", "job-acquisition-tokens")["tokens"]
    }
    assert faults == {job: "short_lifetime", other: None}


def test_token_faults_only_apply_to_the_token_endpoint(api: Api) -> None:
    answer = api.http.post(
        api.emu.control_url + "faults",
        json={"endpoint": "batch-reserve", "kind": "not_issued"},
        timeout=5,
    )
    assert answer.status_code == 400
