"""Control API, fault injection, rate limiting and the call log."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.support.emulator import Api

# ------------------------------------------------------------------------- control


def test_create_one_job_with_defaults(api: Api):
    response = api.http.post(api.emu.control_url + "jobs", json={"queue_key": "q"}, timeout=5)
    assert response.status_code == 201
    (job,) = response.json()["jobs"]
    assert job["state"] == "scheduled"
    assert job["agent_query_rules"] == ["queue=q"]
    assert job["command"] == "echo hello"
    assert job["priority"] == 0
    assert job["reservation"] is None
    assert job["exit_status"] is None
    assert job["finished_by"] is None
    assert job["notifications"] == []
    assert job["agent"] is None
    assert job["step"] == {"key": None}
    assert set(job["pipeline"]) == {"slug", "uuid"}
    assert [h["state"] for h in job["history"]] == ["scheduled"]


def test_create_validates_and_refuses_duplicates(api: Api):
    url = api.emu.control_url + "jobs"
    assert (
        api.http.post(url, json={"queue_key": "q", "priority": "high"}, timeout=5).status_code
        == 400
    )
    assert api.http.post(url, json={"jobs": "x"}, timeout=5).status_code == 400
    api.jobs({"id": "job-1", "queue_key": "q"})
    assert api.http.post(url, json={"id": "job-1", "queue_key": "q"}, timeout=5).status_code == 409


def test_list_jobs_filters_by_state_and_queue(api: Api):
    first, _, third = api.jobs({"queue_key": "q"}, {"queue_key": "r"}, {"queue_key": "q"})
    api.control("POST", f"jobs/{third}/cancel")
    listed = api.control("GET", "jobs", params={"state": "scheduled", "queue_key": "q"})
    assert [job["id"] for job in listed["jobs"]] == [first]
    assert api.http.get(api.emu.control_url + "jobs/nope", timeout=5).status_code == 404


def test_cancel_twice_is_422(api: Api):
    (job,) = api.jobs({"queue_key": "q"})
    api.control("POST", f"jobs/{job}/cancel")
    response = api.http.post(api.emu.control_url + f"jobs/{job}/cancel", timeout=5)
    assert response.status_code == 422


def test_clock_advances_and_resets(api: Api):
    before = api.control("GET", "clock")
    after = api.control("POST", "clock/advance", {"seconds": 901})
    assert after["offset_seconds"] == pytest.approx(before["offset_seconds"] + 901)
    assert after["now"] > before["now"]
    bad = api.http.post(api.emu.control_url + "clock/advance", json={"seconds": -1}, timeout=5)
    assert bad.status_code == 400
    api.control("POST", "reset")
    assert api.control("GET", "clock")["offset_seconds"] == 0


def test_reset_forgets_everything(registered_api: Api):
    registered_api.jobs({"queue_key": "q"})
    registered_api.control("POST", "faults", {"endpoint": "show-job", "kind": "status"})
    registered_api.control("POST", "rate-limits", {"enabled": False})
    registered_api.scheduled()
    response = registered_api.http.post(registered_api.emu.control_url + "reset", timeout=5)
    assert response.status_code == 204
    assert registered_api.control("GET", "jobs") == {"jobs": []}
    assert registered_api.control("GET", "faults") == {"faults": []}
    assert registered_api.control("GET", "stacks") == {"stacks": []}
    assert registered_api.calls() == []
    assert registered_api.control("GET", "rate-limits")["enabled"] is True
    assert registered_api.scheduled().status_code == 404  # the stack is gone too


# -------------------------------------------------------------------------- faults


def _fault(api: Api, **spec: object) -> str:
    fault_id: str = api.control("POST", "faults", spec)["id"]
    return fault_id


def test_status_fault_applies_count_times_with_body_and_retry_after(registered_api: Api):
    _fault(
        registered_api,
        endpoint="list-scheduled-jobs",
        kind="status",
        status=503,
        count=2,
        retry_after="3",
    )
    for _ in range(2):
        response = registered_api.scheduled()
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "3"
        assert response.json()["message"]
        assert response.headers["RateLimit-Scope"] == "list-scheduled-jobs"
    assert registered_api.scheduled().status_code == 200


def test_status_fault_with_a_raw_body_and_method_and_stack_filters(registered_api: Api):
    registered_api.register(key="stack-b")
    _fault(
        registered_api,
        endpoint="*",
        kind="status",
        status=500,
        body="oops",
        method="GET",
        stack_key="stack-b",
    )
    assert registered_api.scheduled().status_code == 200  # other stack
    assert registered_api.reserve([], key="stack-b").status_code == 200  # other method
    response = registered_api.scheduled("stack-b")
    assert (response.status_code, response.text) == (500, "oops")


def test_a_fault_can_match_one_callers_user_agent(registered_api: Api):
    """The local world refuses the failure handler's lookups, not the poller's: each
    function names itself in its User-Agent (bootstrap._stacks)."""
    _fault(
        registered_api,
        endpoint="list-scheduled-jobs",
        kind="status",
        status=400,
        user_agent="(failure-handler)",
    )
    poller = {"User-Agent": "buildkite-fargate-stack/1.0.0 (poller) stacksapi/0.1.0"}
    handler = {"User-Agent": "buildkite-fargate-stack/1.0.0 (failure-handler) stacksapi/0.1.0"}
    url = "stacks/stack-a/scheduled-jobs?queue_key=q"
    assert registered_api.call("GET", url, headers=poller).status_code == 200
    assert registered_api.call("GET", url, headers=handler).status_code == 400
    assert registered_api.call("GET", url, headers=handler).status_code == 200  # used up


def test_one_fault_can_be_ended_early_and_says_what_was_left(registered_api: Api):
    """An outage that ends by time: the chaos soak removes its faults when it is over."""
    outage = _fault(
        registered_api, endpoint="list-scheduled-jobs", kind="status", status=503, count=100
    )
    assert registered_api.scheduled().status_code == 503
    left = registered_api.control("DELETE", f"faults/{outage}")
    assert left["count"] == 99
    assert registered_api.scheduled().status_code == 200
    gone = registered_api.http.delete(
        registered_api.emu.control_url + f"faults/{outage}", timeout=5
    )
    assert gone.status_code == 404


def test_faults_apply_before_auth(api: Api):
    _fault(api, endpoint="register", kind="status", status=429)
    api.auth = {}
    assert api.register().status_code == 429


def test_latency_fault_delays_then_answers(registered_api: Api):
    _fault(registered_api, endpoint="show-job", kind="latency", seconds=0.3)
    (job,) = registered_api.jobs({"queue_key": "q"})
    started = time.perf_counter()
    response = registered_api.call("GET", f"stacks/stack-a/jobs/{job}")
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_malformed_json_fault_processes_the_request_but_mangles_the_body(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    _fault(registered_api, endpoint="batch-reserve", kind="malformed_json")
    response = registered_api.reserve([job])
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert registered_api.states([job]) == {job: "reserved"}  # the reservation happened


def test_drop_fault_closes_the_connection_without_an_answer(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    _fault(registered_api, endpoint="batch-reserve", kind="drop")
    with pytest.raises(requests.ConnectionError):
        registered_api.reserve([job])
    assert registered_api.states([job]) == {job: "scheduled"}  # dropped before handling
    assert registered_api.reserve([job]).status_code == 200
    dropped = [c for c in registered_api.calls() if c["endpoint"] == "batch-reserve"]
    assert [(c["status"], c["fault"]) for c in dropped] == [(0, "drop"), (200, None)]


def test_bad_fault_specs_are_400(api: Api):
    url = api.emu.control_url + "faults"
    for spec in (
        {"endpoint": "nope", "kind": "status"},
        {"endpoint": "*", "kind": "explode"},
        {"endpoint": "*", "kind": "latency"},
        {"endpoint": "*", "kind": "status", "count": 0},
    ):
        assert api.http.post(url, json=spec, timeout=5).status_code == 400, spec
    assert api.http.delete(url, timeout=5).status_code == 204


# --------------------------------------------------------------------- rate limits


def test_eleventh_list_call_in_a_second_is_429_with_the_documented_body(registered_api: Api):
    responses = [registered_api.scheduled() for _ in range(11)]
    for response in responses:
        for header in (
            "RateLimit-Scope",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        ):
            assert header in response.headers
    assert [r.status_code for r in responses[:10]] == [200] * 10
    assert [r.headers["RateLimit-Remaining"] for r in responses[:3]] == ["9", "8", "7"]
    limited = responses[10]
    assert limited.status_code == 429
    assert limited.json() == {
        "message": (
            "You have exceeded your API rate limit. Please wait 1 seconds before making more "
            "requests."
        ),
        "scope": "list-scheduled-jobs",
        "limit": 10,
        "current": 11,
        "reset": 1,
    }
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["RateLimit-Remaining"] == "0"
    # windows are per stack and per scope
    registered_api.register(key="stack-b")
    assert registered_api.scheduled("stack-b").status_code == 200
    assert registered_api.reserve([]).status_code == 200
    # waiting out the window lets calls through again (advancing the clock ages it too)
    registered_api.advance(1.0)
    assert registered_api.scheduled().status_code == 200


def test_rate_limits_can_be_changed_and_disabled(registered_api: Api):
    settings = registered_api.control("POST", "rate-limits", {"limits": {"list-scheduled-jobs": 2}})
    assert settings["limits"]["list-scheduled-jobs"] == 2
    assert [registered_api.scheduled().status_code for _ in range(3)] == [200, 200, 429]
    registered_api.control("POST", "rate-limits", {"enabled": False})
    assert registered_api.scheduled().status_code == 200
    assert registered_api.scheduled().headers["RateLimit-Limit"] == "2"
    bad = registered_api.http.post(
        registered_api.emu.control_url + "rate-limits", json={"limits": {"nope": 1}}, timeout=5
    )
    assert bad.status_code == 400


def test_agent_endpoints_are_unlimited_unless_configured(registered_api: Api):
    response = registered_api.call("GET", "token")
    assert "RateLimit-Scope" not in response.headers
    registered_api.control("POST", "rate-limits", {"limits": {"agent-token": 1}})
    assert [registered_api.call("GET", "token").status_code for _ in range(2)] == [200, 429]


# ------------------------------------------------------------------------ call log


def test_call_log_records_each_api_call(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    registered_api.scheduled(limit=5)
    registered_api.reserve([job])
    registered_api.call("POST", "stacks/stack-a/jobs/get-states", json={"job_uuids": [job]})
    calls = registered_api.calls()
    assert [c["endpoint"] for c in calls] == [
        "register",
        "list-scheduled-jobs",
        "batch-reserve",
        "batch-load-job-states",
    ]
    listing = calls[1]
    assert listing["index"] == 1
    assert listing["method"] == "GET"
    assert listing["path"] == "/v3/stacks/stack-a/scheduled-jobs"
    assert "limit=5" in listing["query"]
    assert listing["stack_key"] == "stack-a"
    assert listing["status"] == 200
    assert listing["job_uuids"] == [job]
    assert listing["duration_ms"] >= 0
    assert listing["at"].endswith("Z")
    assert calls[0]["stack_key"] == "stack-a"  # register: the key from the body
    assert [c["index"] for c in registered_api.calls(since=2)] == [2, 3]
    assert (
        registered_api.http.delete(registered_api.emu.control_url + "calls", timeout=5).status_code
        == 204
    )
    assert registered_api.calls() == []
    registered_api.control("GET", "jobs")
    assert registered_api.calls() == []  # the control API is never logged
