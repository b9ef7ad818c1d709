"""The Stacks API endpoints over HTTP: statuses, bodies and the rules behind them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.emulator import Api


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------- auth, routing


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Token wrong"}, {"Authorization": "Bearer test-token"}],
    ids=["missing", "wrong-token", "bearer"],
)
def test_requests_without_the_token_are_401_with_a_message(api: Api, headers: dict[str, str]):
    api.auth = headers
    response = api.register()
    assert response.status_code == 401
    assert response.json()["message"]
    assert response.headers["RateLimit-Scope"] == "default"


def test_unknown_stack_is_404_on_every_stack_endpoint(api: Api):
    assert api.scheduled("nobody").status_code == 404
    assert api.reserve([], key="nobody").status_code == 404
    assert api.call("GET", "stacks/nobody/jobs/x").status_code == 404
    assert api.call("POST", "stacks/nobody/deregister").status_code == 404
    assert api.call("POST", "stacks/nobody/jobs/x/finish", json={"detail": "d"}).status_code == 404
    assert "message" in api.scheduled("nobody").json()


def test_unknown_route_is_404_and_wrong_method_405(registered_api: Api):
    assert registered_api.call("GET", "stacks/stack-a/nothing-here").status_code == 404
    response = registered_api.call("DELETE", "stacks/stack-a/scheduled-jobs")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"


def test_path_segments_are_percent_decoded(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    escaped = job.replace("-", "%2D")
    response = registered_api.call("GET", f"stacks/stack%2Da/jobs/{escaped}")
    assert response.status_code == 200
    assert response.json()["id"] == job


def test_bad_json_is_400(registered_api: Api):
    response = registered_api.call(
        "PUT", "stacks/stack-a/scheduled-jobs/batch-reserve", data=b"{not json"
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Problems parsing JSON"}


# ---------------------------------------------------------------------------- register


def test_register_is_201_then_200_and_answers_the_documented_fields(api: Api):
    first = api.register(metadata={"region": "eu"})
    assert first.status_code == 201
    body = first.json()
    assert set(body) == {
        "id",
        "organization_uuid",
        "key",
        "type",
        "cluster_queue_key",
        "metadata",
        "last_connected_on",
        "state",
    }
    assert (body["key"], body["type"], body["cluster_queue_key"]) == ("stack-a", "custom", "q")
    assert body["metadata"] == {"region": "eu"}
    assert body["state"] == "connected"
    again = api.register()
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]


@pytest.mark.parametrize("alias", ["_default", "__default__"])
def test_default_queue_keywords_resolve_to_the_default_queue(api: Api, alias: str):
    (job,) = api.jobs({"queue_key": "default"})
    assert api.register(queue_key=alias).json()["cluster_queue_key"] == "default"
    listed = api.scheduled(queue_key=alias).json()["jobs"]
    assert [j["id"] for j in listed] == [job]


@pytest.mark.parametrize(
    "override",
    [
        {"key": ""},
        {"key": "has.dot"},
        {"key": "x" * 81},
        {"type": "lambda"},
        {"queue_key": ""},
        {"metadata": None},
        {"metadata": {"k": 1}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"k": "v" * 257}},
        {"metadata": {f"k{i}": "v" for i in range(101)}},
    ],
)
def test_register_validation_failures_are_422(api: Api, override: dict[str, object]):
    response = api.register(**override)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    assert response.json()["message"]


def test_register_accepts_an_80_byte_key(api: Api):
    assert api.register(key="k" * 80).status_code == 201


def test_register_body_that_is_not_an_object_is_400(api: Api):
    assert api.call("POST", "stacks/register", json=["key"]).status_code == 400


def test_deregister_is_204_and_forgets_the_stack(registered_api: Api):
    response = registered_api.call("POST", "stacks/stack-a/deregister")
    assert response.status_code == 204
    assert response.content == b""
    assert registered_api.scheduled().status_code == 404
    assert registered_api.register().status_code == 201


# ------------------------------------------------------------------- scheduled jobs


def test_list_returns_only_scheduled_jobs_of_the_queue_oldest_first(registered_api: Api):
    now = datetime.now(UTC)
    newer, older, other_queue, reserved = registered_api.jobs(
        {"queue_key": "q", "scheduled_at": _iso(now - timedelta(minutes=1))},
        {"queue_key": "q", "scheduled_at": _iso(now - timedelta(minutes=5)), "priority": 3},
        {"queue_key": "elsewhere"},
        {"queue_key": "q", "scheduled_at": _iso(now - timedelta(minutes=9))},
    )
    assert registered_api.reserve([reserved]).json()["reserved"] == [reserved]
    body = registered_api.scheduled().json()
    assert [job["id"] for job in body["jobs"]] == [older, newer]
    job = body["jobs"][0]
    assert set(job) == {
        "id",
        "priority",
        "agent_query_rules",
        "scheduled_at",
        "pipeline",
        "build",
        "step",
    }
    assert job["priority"] == 3
    assert job["agent_query_rules"] == ["queue=q"]
    assert set(job["pipeline"]) == {"slug", "uuid"}
    assert set(job["build"]) == {"number", "branch", "uuid"}
    assert job["step"] == {"key": None}
    assert body["page_info"] == {
        "has_next_page": False,
        "end_cursor": body["page_info"]["end_cursor"],
    }
    assert body["cluster_queue"]["dispatch_paused"] is False
    assert other_queue not in [j["id"] for j in body["jobs"]]


def test_pages_follow_an_opaque_base64_cursor(registered_api: Api):
    jobs = registered_api.jobs(*({"queue_key": "q"} for _ in range(5)))
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = registered_api.scheduled(limit=2, **({"after": after} if after else {})).json()
        pages += 1
        seen += [job["id"] for job in body["jobs"]]
        if not body["page_info"]["has_next_page"]:
            break
        after = body["page_info"]["end_cursor"]
        base64.urlsafe_b64decode(after)
    assert seen == jobs
    assert pages == 3


def test_an_empty_page_has_no_cursor(registered_api: Api):
    body = registered_api.scheduled().json()
    assert body["jobs"] == []
    assert body["page_info"] == {"has_next_page": False, "end_cursor": None}


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "ten", "1.5"])
def test_bad_limit_is_400(registered_api: Api, limit: str):
    assert registered_api.scheduled(limit=limit).status_code == 400


def test_bad_cursor_and_missing_queue_are_400(registered_api: Api):
    assert registered_api.scheduled(after="!!!").status_code == 400
    assert registered_api.call("GET", "stacks/stack-a/scheduled-jobs").status_code == 400


def test_unknown_queue_is_404(registered_api: Api):
    assert registered_api.scheduled(queue_key="never-mentioned").status_code == 404


def test_paused_queue_still_lists_its_jobs(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    assert registered_api.control("POST", "queues/q/pause", {"paused": True}) == {
        "queue_key": "q",
        "dispatch_paused": True,
    }
    body = registered_api.scheduled().json()
    assert body["cluster_queue"]["dispatch_paused"] is True
    assert [j["id"] for j in body["jobs"]] == [job]
    registered_api.control("POST", "queues/q/pause", {"paused": False})
    assert registered_api.scheduled().json()["cluster_queue"]["dispatch_paused"] is False


# ------------------------------------------------------------------------ reserve


def test_reserve_hides_jobs_until_the_reservation_expires(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    assert registered_api.reserve([job]).json() == {"reserved": [job], "not_reserved": []}
    reservation = registered_api.job(job)["reservation"]
    assert reservation["stack_key"] == "stack-a"
    assert registered_api.scheduled().json()["jobs"] == []
    assert registered_api.states([job]) == {job: "reserved"}
    registered_api.advance(899)
    assert registered_api.states([job]) == {job: "reserved"}
    registered_api.advance(2)
    assert registered_api.states([job]) == {job: "scheduled"}
    assert [j["id"] for j in registered_api.scheduled().json()["jobs"]] == [job]
    history = registered_api.job(job)["history"]
    assert [(h["state"], h["by"]) for h in history] == [
        ("scheduled", "control"),
        ("reserved", "stack:stack-a"),
        ("scheduled", "expiry"),
    ]
    assert history[2]["at"] == reservation["expires_at"]


def test_reserving_again_extends_and_another_stack_gets_not_reserved(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    registered_api.register(key="stack-b")
    registered_api.reserve([job], reservation_expiry_seconds=60)
    first_expiry = registered_api.job(job)["reservation"]["expires_at"]
    registered_api.advance(30)
    assert registered_api.reserve([job], reservation_expiry_seconds=60).json()["reserved"] == [job]
    assert registered_api.job(job)["reservation"]["expires_at"] > first_expiry
    assert registered_api.reserve([job], key="stack-b").json() == {
        "reserved": [],
        "not_reserved": [job],
    }


def test_unknown_and_finished_jobs_are_not_reserved(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    registered_api.control("POST", f"jobs/{job}/cancel")
    assert registered_api.reserve([job, "no-such-job"]).json() == {
        "reserved": [],
        "not_reserved": [job, "no-such-job"],
    }


@pytest.mark.parametrize("seconds", [0, -5, 3601])
def test_reservation_expiry_out_of_range_is_422(registered_api: Api, seconds: int):
    (job,) = registered_api.jobs({"queue_key": "q"})
    assert registered_api.reserve([job], reservation_expiry_seconds=seconds).status_code == 422


@pytest.mark.parametrize(
    "body",
    [{"job_uuids": "abc"}, {}, {"job_uuids": [1]}, {"job_uuids": ["x"] * 1001}],
    ids=["string", "missing", "ints", "too-many"],
)
def test_reserve_shape_errors_are_400(registered_api: Api, body: dict[str, object]):
    response = registered_api.call("PUT", "stacks/stack-a/scheduled-jobs/batch-reserve", json=body)
    assert response.status_code == 400


# ------------------------------------------------------------------- get job, states


def test_get_job_answers_id_env_and_command(registered_api: Api):
    (job,) = registered_api.jobs(
        {"queue_key": "q", "command": "make test", "env": {"BUILDKITE_BRANCH": "dev"}}
    )
    response = registered_api.call("GET", f"stacks/stack-a/jobs/{job}")
    assert response.json() == {
        "id": job,
        "env": {"BUILDKITE_BRANCH": "dev"},
        "command": "make test",
    }
    assert registered_api.call("GET", "stacks/stack-a/jobs/unknown").status_code == 404


def test_default_env_has_the_buildkite_basics(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q", "build": {"number": 42}, "step": {"key": "s"}})
    env = registered_api.call("GET", f"stacks/stack-a/jobs/{job}").json()["env"]
    assert env["BUILDKITE_JOB_ID"] == job
    assert env["BUILDKITE_BUILD_NUMBER"] == "42"
    assert env["BUILDKITE_STEP_KEY"] == "s"


def test_get_states_omits_unknown_jobs(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    assert registered_api.states([job, "unknown"]) == {job: "scheduled"}
    bad = registered_api.call("POST", "stacks/stack-a/jobs/get-states", json={"job_uuids": "x"})
    assert bad.status_code == 400


# ------------------------------------------------------------------------- finish


def _finish(api: Api, job: str, **body: object) -> requests.Response:
    return api.call("POST", f"stacks/stack-a/jobs/{job}/finish", json=body)


def test_finish_once_with_default_exit_status(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    registered_api.reserve([job])
    response = _finish(registered_api, job, detail="image pull failed")
    assert (response.status_code, response.json()) == (200, {})
    view = registered_api.job(job)
    assert (view["state"], view["exit_status"], view["finished_by"]) == ("finished", -1, "stack")
    assert view["finish_detail"] == "image pull failed"
    assert view["reservation"] is None
    again = _finish(registered_api, job, detail="again")
    assert again.status_code == 422
    assert "finished" in again.json()["message"]


def test_finish_keeps_an_explicit_exit_status(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    _finish(registered_api, job, detail="done without an agent", exit_status=0)
    assert registered_api.job(job)["exit_status"] == 0


def test_finish_validation(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    assert _finish(registered_api, job).status_code == 422
    assert _finish(registered_api, job, detail="x" * 4097).status_code == 422
    assert _finish(registered_api, job, detail="d", exit_status="1").status_code == 422
    assert _finish(registered_api, job, detail="x" * 4096).status_code == 200


def test_finish_refuses_another_stacks_reservation(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    registered_api.register(key="stack-b")
    registered_api.reserve([job], key="stack-b")
    response = _finish(registered_api, job, detail="not mine")
    assert response.status_code == 422
    assert registered_api.states([job]) == {job: "reserved"}


# ------------------------------------------------------------------- notifications


def _notify(api: Api, notifications: object) -> requests.Response:
    return api.call("POST", "stacks/stack-a/notifications", json={"notifications": notifications})


def test_notifications_partial_success_groups_errors_by_text(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    future = _iso(datetime.now(UTC) + timedelta(hours=1))
    response = _notify(
        registered_api,
        [
            {"job_uuid": job, "detail": "Task starting"},
            {"job_uuid": job},
            {"job_uuid": job, "detail": "x" * 257},
            {"job_uuid": job, "detail": ""},
            {"job_uuid": job, "detail": "later", "timestamp": future},
            {"job_uuid": "unknown", "detail": "who"},
            {"job_uuid": job, "detail": "y" * 256},
        ],
    )
    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {"error": "detail is required", "indexes": [1, 3]},
            {"error": "detail exceeds its length limit of 256", "indexes": [2]},
            {"error": "timestamp cannot be in the future", "indexes": [4]},
            {"error": "job not found", "indexes": [5]},
        ]
    }
    assert [n["detail"] for n in registered_api.job(job)["notifications"]] == [
        "Task starting",
        "y" * 256,
    ]


def test_notifications_per_job_limit(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    body = _notify(
        registered_api, [{"job_uuid": job, "detail": f"n{i}"} for i in range(101)]
    ).json()
    assert body == {
        "errors": [{"error": "job stack notification count exceeded", "indexes": [100]}]
    }


def test_notifications_shape_errors_are_400(registered_api: Api):
    assert _notify(registered_api, "nope").status_code == 400
    too_many = [{"job_uuid": "x", "detail": "d"}] * 1001
    assert _notify(registered_api, too_many).status_code == 400


# -------------------------------------------------------------------------------- JAT


def test_jats_only_for_jobs_this_stack_reserved(registered_api: Api):
    mine, theirs, free = registered_api.jobs(*({"queue_key": "q"} for _ in range(3)))
    registered_api.register(key="stack-b")
    registered_api.reserve([mine], reservation_expiry_seconds=120)
    registered_api.reserve([theirs], key="stack-b")
    response = registered_api.call(
        "POST",
        "stacks/stack-a/job-acquisition-tokens",
        json={"job_uuids": [mine, theirs, free, "unknown"], "token_lifetime_seconds": 600},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["not_issued"] == [theirs, free, "unknown"]
    (token,) = body["job_acquisition_tokens"]
    assert token["job_uuid"] == mine
    assert token["job_acquisition_token"].startswith("bkjat_")
    # capped by the reservation (120 s), not the requested lifetime (600 s)
    assert token["expires_at"] == registered_api.job(mine)["reservation"]["expires_at"]


@pytest.mark.parametrize("lifetime", [0, 3601])
def test_jat_lifetime_out_of_range_is_422(registered_api: Api, lifetime: int):
    response = registered_api.call(
        "POST",
        "stacks/stack-a/job-acquisition-tokens",
        json={"job_uuids": [], "token_lifetime_seconds": lifetime},
    )
    assert response.status_code == 422


def test_chunked_request_bodies_are_read(registered_api: Api):
    (job,) = registered_api.jobs({"queue_key": "q"})
    body = iter([b'{"job_uuids": ["', job.encode(), b'"]}'])
    response = registered_api.call("PUT", "stacks/stack-a/scheduled-jobs/batch-reserve", data=body)
    assert response.json() == {"reserved": [job], "not_reserved": []}
