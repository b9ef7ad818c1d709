"""The Agent API slice: what `buildkite-agent start --acquire-job` does, over plain HTTP."""

from __future__ import annotations

import gzip

import pytest

from tests.support.emulator import Agent, Api


@pytest.fixture
def agent(registered_api: Api) -> Agent:
    created = Agent(registered_api)
    assert created.register().status_code == 200
    return created


def test_register_connect_heartbeat_ping_disconnect(registered_api: Api):
    agent = Agent(registered_api)
    body = agent.register().json()
    assert body["access_token"].startswith("bkaa_")
    assert body["endpoint"] == registered_api.emu.base_url.rstrip("/")
    assert body["meta_data"] == ["queue=q"]
    token = agent.access_token
    connect = agent._call("POST", "connect", token)
    assert (connect.status_code, connect.json()["connection_state"]) == (200, "connected")
    beat = agent._call("POST", "heartbeat", token, json={"sent_at": "2026-01-01T00:00:00Z"})
    assert beat.json()["sent_at"] == "2026-01-01T00:00:00Z"
    assert agent._call("GET", "ping", token).json() == {"action": "idle"}
    assert agent._call("POST", "disconnect", token).json()["connection_state"] == "disconnected"
    assert agent._call("POST", "connect", "not-a-token").status_code == 401


def test_register_with_a_bad_token_is_401(registered_api: Api):
    assert Agent(registered_api, "bkct_wrong").register().status_code == 401


def test_token_endpoint_identifies_the_cluster_token(registered_api: Api):
    body = registered_api.call("GET", "token").json()
    assert body["token_type"] == "cluster"
    assert body["cluster_uuid"]


def test_acquire_start_log_finish(registered_api: Api, agent: Agent):
    (job,) = registered_api.jobs({"queue_key": "q", "command": "make"})
    registered_api.reserve([job])
    acquired = agent.acquire(job)
    assert acquired.status_code == 200
    payload = acquired.json()
    assert (payload["id"], payload["state"], payload["step"]["command"]) == (
        job,
        "accepted",
        "make",
    )
    assert payload["env"]["BUILDKITE_JOB_ID"] == job
    assert payload["endpoint"] == registered_api.emu.base_url.rstrip("/")
    assert payload["token"].startswith("bkaj_")
    view = registered_api.job(job)
    assert view["reservation"] is None
    assert view["agent"]
    assert agent.job_call("PUT", f"jobs/{job}/start", json={}).status_code == 200
    assert agent.job_call("GET", f"jobs/{job}").json() == {"state": "running"}
    chunk = agent.job_call(
        "POST",
        f"jobs/{job}/chunks?sequence=1&offset=0&size=6",
        data=gzip.compress(b"hello\n"),
        headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"},
    )
    assert chunk.status_code == 201
    finish = agent.job_call("PUT", f"jobs/{job}/finish", json={"exit_status": "2"})
    assert finish.status_code == 200
    view = registered_api.job(job)
    assert (view["state"], view["exit_status"], view["finished_by"]) == ("finished", 2, "agent")
    assert [h["state"] for h in view["history"]] == [
        "scheduled",
        "reserved",
        "accepted",
        "running",
        "finished",
    ]
    assert (
        registered_api.http.get(registered_api.emu.control_url + f"jobs/{job}/log", timeout=5).text
        == "hello\n"
    )
    # the stack may no longer finish a job an agent ran
    late = registered_api.call(
        "POST", f"stacks/stack-a/jobs/{job}/finish", json={"detail": "too late"}
    )
    assert late.status_code == 422


def test_acquire_of_an_unacquirable_job_is_422_with_the_agents_message(
    registered_api: Api, agent: Agent
):
    taken, canceled = registered_api.jobs({"queue_key": "q"}, {"queue_key": "q"})
    other = Agent(registered_api)
    other.register()
    assert other.acquire(taken).status_code == 200
    registered_api.control("POST", f"jobs/{canceled}/cancel")
    for job in (taken, canceled):
        response = agent.acquire(job)
        assert response.status_code == 422
        assert response.json() == {
            "message": f"Job {job} is no longer eligible to be assigned an agent"
        }


def test_acquire_repeated_by_the_holder_is_200(registered_api: Api, agent: Agent):
    (job,) = registered_api.jobs({"queue_key": "q"})
    assert agent.acquire(job).status_code == 200
    assert agent.acquire(job).status_code == 200


def test_locked_job_is_423_with_retry_after_until_unlocked(registered_api: Api, agent: Agent):
    (job,) = registered_api.jobs({"queue_key": "q", "locked": True})
    locked = agent.acquire(job)
    assert locked.status_code == 423
    assert locked.headers["Retry-After"] == "1"
    assert registered_api.control("POST", f"jobs/{job}/lock", {"locked": False})["locked"] is False
    assert agent.acquire(job).status_code == 200


def test_acquire_needs_an_agent_access_token(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    response = registered_api.call("PUT", f"jobs/{job}/acquire")  # the cluster token is not enough
    assert response.status_code == 401
    agent = Agent(registered_api)
    agent.register()
    assert agent.acquire("no-such-job").status_code == 404


def test_cancel_running_job_goes_canceling_then_canceled_on_agent_finish(
    registered_api: Api, agent: Agent
):
    (job,) = registered_api.jobs({"queue_key": "q"})
    agent.acquire(job)
    agent.job_call("PUT", f"jobs/{job}/start", json={})
    assert registered_api.control("POST", f"jobs/{job}/cancel")["state"] == "canceling"
    assert agent.job_call("GET", f"jobs/{job}").json() == {"state": "canceling"}
    agent.job_call("PUT", f"jobs/{job}/finish", json={"exit_status": "-1", "signal": "SIGTERM"})
    view = registered_api.job(job)
    assert (view["state"], view["finished_by"]) == ("canceled", "agent")


def test_cancel_of_a_waiting_job_is_immediate(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    registered_api.reserve([job])
    assert registered_api.control("POST", f"jobs/{job}/cancel")["state"] == "canceled"
    assert registered_api.states([job]) == {job: "canceled"}


def test_job_calls_need_the_job_or_holder_token(registered_api: Api, agent: Agent):
    (job,) = registered_api.jobs({"queue_key": "q"})
    agent.acquire(job)
    stranger = Agent(registered_api)
    stranger.register()
    assert stranger._call("PUT", f"jobs/{job}/start", stranger.access_token).status_code == 401
    assert agent._call("PUT", f"jobs/{job}/start", agent.access_token).status_code == 200


def test_jat_registers_an_agent_for_its_job_only(registered_api: Api):
    job, other = registered_api.jobs({"queue_key": "q"}, {"queue_key": "q"})
    registered_api.reserve([job, other])
    issued = registered_api.call(
        "POST", "stacks/stack-a/job-acquisition-tokens", json={"job_uuids": [job]}
    ).json()["job_acquisition_tokens"][0]
    agent = Agent(registered_api, issued["job_acquisition_token"])
    assert agent.register().status_code == 200
    assert agent.acquire(other).status_code == 422
    assert agent.acquire(job).status_code == 200
    # a second registration with the same JAT: the job is no longer acquirable
    again = Agent(registered_api, issued["job_acquisition_token"]).register()
    assert again.status_code == 422
    # the text buildkite/agent matches to exit 27 (docs/reference/stacks-api.md §3.9)
    assert again.json()["message"] == "Job is not eligible for job acquisition registration"


def test_expired_jat_is_401(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    registered_api.reserve([job])
    issued = registered_api.call(
        "POST",
        "stacks/stack-a/job-acquisition-tokens",
        json={"job_uuids": [job], "token_lifetime_seconds": 60},
    ).json()["job_acquisition_tokens"][0]
    registered_api.advance(61)
    assert Agent(registered_api, issued["job_acquisition_token"]).register().status_code == 401
