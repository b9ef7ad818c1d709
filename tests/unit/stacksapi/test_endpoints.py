"""Each endpoint's exact request, input checks, chunking and merging, over loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from fargate_stack.stacksapi import (
    FINISH_CROP_SUFFIX,
    NOTIFICATION_CROP_SUFFIX,
    BatchReserveJobsResponse,
    GetJobStatesResponse,
    StackNotification,
    StacksClient,
    StacksServerError,
)
from tests.support.scripted_server import Reply, ScriptedServer, Seen

STACK = {"id": "s", "key": "my-stack", "cluster_queue_key": "q", "state": "connected"}


def _page(
    ids: list[str], *, more: bool, cursor: str | None, paused: bool = False
) -> dict[str, Any]:
    return {
        "jobs": [{"id": i, "scheduled_at": "2026-01-01T00:00:00Z"} for i in ids],
        "page_info": {"has_next_page": more, "end_cursor": cursor},
        "cluster_queue": {"id": "q", "dispatch_paused": paused},
    }


# ----------------------------------------------------------------------------- register


def test_register_sends_all_four_fields(client: StacksClient, server: ScriptedServer) -> None:
    server.reply(Reply(201, STACK))
    stack = client.register_stack(key="my-stack", queue_key="q", metadata={"v": "1"})
    assert stack.cluster_queue_key == "q"
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", "/v3/stacks/register")
    assert seen.json() == {
        "key": "my-stack",
        "type": "custom",
        "queue_key": "q",
        "metadata": {"v": "1"},
    }


def test_register_sends_empty_metadata_rather_than_none(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(Reply(200, STACK))
    client.register_stack(key="my-stack", queue_key="q", type="elastic")
    assert server.seen[0].json()["metadata"] == {}
    assert server.seen[0].json()["type"] == "elastic"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"key": ""}, "key must be"),
        ({"key": "has.dot"}, "key must be"),
        ({"key": "k" * 81}, "key must be"),
        ({"queue_key": ""}, "queue_key"),
        ({"metadata": {"k" * 65: "v"}}, "metadata keys"),
        ({"metadata": {"k": "v" * 257}}, r"metadata\['k'\]"),
        ({"metadata": {str(i): "v" for i in range(101)}}, "at most 100 keys"),
    ],
)
def test_register_refuses_documented_bad_input_before_sending(
    client: StacksClient, server: ScriptedServer, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        client.register_stack(**{"key": "ok", "queue_key": "q", **kwargs})
    assert server.seen == []


def test_empty_stack_key_is_refused_everywhere(
    client: StacksClient, server: ScriptedServer
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: client.deregister_stack(stack_key=""),
        lambda: client.list_scheduled_jobs(stack_key="", queue_key="q"),
        lambda: client.iter_scheduled_jobs(stack_key="", queue_key="q"),
        lambda: client.batch_reserve_jobs(stack_key="", job_uuids=["a"]),
        lambda: client.get_job(stack_key="", job_uuid="a"),
        lambda: client.get_job_states(stack_key="", job_uuids=["a"]),
        lambda: client.fail_job(stack_key="", job_uuid="a", detail="d"),
        lambda: client.create_stack_notification(stack_key="", job_uuid="a", detail="d"),
        lambda: client.issue_job_acquisition_tokens(stack_key="", job_uuids=["a"]),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="stack_key must be a non-empty string"):
            call()
    assert server.seen == []


# --------------------------------------------------------------------------- listing


def test_list_sends_queue_key_and_omits_absent_options(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(Reply(200, _page(["a"], more=False, cursor=None)))
    client.list_scheduled_jobs(stack_key="k", queue_key="q")
    seen = server.seen[0]
    assert (seen.method, seen.path, seen.query) == (
        "GET",
        "/v3/stacks/k/scheduled-jobs",
        "queue_key=q",
    )


def test_list_sends_limit_and_after_sorted_like_go(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(Reply(200, _page([], more=False, cursor=None)))
    client.list_scheduled_jobs(stack_key="k", queue_key="my q", page_size=50, start_cursor="c+/=")
    assert server.seen[0].query == "after=c%2B%2F%3D&limit=50&queue_key=my+q"


@pytest.mark.parametrize("page_size", [0, 1001, -5])
def test_page_size_outside_1_to_1000_is_refused(client: StacksClient, page_size: int) -> None:
    with pytest.raises(ValueError, match="page_size must be an integer from 1 to 1000"):
        client.list_scheduled_jobs(stack_key="k", queue_key="q", page_size=page_size)
    with pytest.raises(ValueError, match="page_size"):
        client.iter_scheduled_jobs(stack_key="k", queue_key="q", page_size=page_size)


def test_iterator_follows_cursors_until_the_last_page(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(
        Reply(200, _page(["a", "b"], more=True, cursor="c1")),
        Reply(200, _page(["c", "d"], more=True, cursor="c2")),
        Reply(200, _page(["e"], more=False, cursor="c3", paused=True)),
    )
    pages = list(client.iter_scheduled_jobs(stack_key="k", queue_key="q", page_size=2))
    assert [[j.id for j in p.jobs] for p in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert pages[-1].cluster_queue.dispatch_paused is True
    assert [s.params.get("after") for s in server.seen] == [None, ["c1"], ["c2"]]


def test_iterator_stops_at_max_pages(client: StacksClient, server: ScriptedServer) -> None:
    server.default = Reply(200, _page(["x"], more=True, cursor="never-ends"))
    server.reply(Reply(200, _page(["a"], more=True, cursor="c1")))
    pages = list(client.iter_scheduled_jobs(stack_key="k", queue_key="q", max_pages=2))
    assert len(pages) == 2
    assert len(server.seen) == 2


def test_iterator_stops_on_a_repeated_cursor_with_a_warning(
    client: StacksClient, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.reply(
        Reply(200, _page(["a"], more=True, cursor="c1")),
        Reply(200, _page(["b"], more=True, cursor="c2")),
    )
    server.default = Reply(200, _page(["c"], more=True, cursor="c1"))  # back to c1: a loop
    with caplog.at_level(logging.WARNING, logger="fargate_stack.stacksapi"):
        pages = list(client.iter_scheduled_jobs(stack_key="k", queue_key="q"))
    assert len(pages) == 3
    assert "repeated a page cursor" in caplog.text


@pytest.mark.parametrize("cursor", [None, ""])
def test_iterator_stops_when_a_next_page_has_no_cursor(
    client: StacksClient, server: ScriptedServer, cursor: str | None
) -> None:
    server.reply(Reply(200, _page(["a"], more=True, cursor=cursor)))
    assert len(list(client.iter_scheduled_jobs(stack_key="k", queue_key="q"))) == 1
    assert len(server.seen) == 1


def test_iterator_checks_arguments_before_the_first_page(client: StacksClient) -> None:
    with pytest.raises(ValueError, match="max_pages"):
        client.iter_scheduled_jobs(stack_key="k", queue_key="q", max_pages=0)


def test_iterator_is_lazy(client: StacksClient, server: ScriptedServer) -> None:
    server.default = Reply(200, _page(["a"], more=True, cursor="c"))
    pages = client.iter_scheduled_jobs(stack_key="k", queue_key="q")
    assert server.seen == []
    next(pages)
    assert len(server.seen) == 1


# --------------------------------------------------------------------------- reserve


def test_reserve_omits_expiry_when_none_and_sends_it_when_given(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.default = Reply(200, {"reserved": ["a"], "not_reserved": ["b"]})
    answer = client.batch_reserve_jobs(stack_key="k", job_uuids=["a", "b"])
    assert (answer.reserved, answer.not_reserved) == (["a"], ["b"])
    client.batch_reserve_jobs(stack_key="k", job_uuids=["a"], reservation_expiry_seconds=300)
    first, second = server.seen
    assert (first.method, first.path) == ("PUT", "/v3/stacks/k/scheduled-jobs/batch-reserve")
    assert first.json() == {"job_uuids": ["a", "b"]}
    assert second.json() == {"job_uuids": ["a"], "reservation_expiry_seconds": 300}


@pytest.mark.parametrize("expiry", [0, -1, 3601])
def test_reservation_expiry_outside_1_to_3600_is_refused(client: StacksClient, expiry: int) -> None:
    with pytest.raises(ValueError, match="reservation_expiry_seconds"):
        client.batch_reserve_jobs(stack_key="k", job_uuids=["a"], reservation_expiry_seconds=expiry)


def _echo_reserve(seen: Seen) -> Reply:
    uuids = seen.json()["job_uuids"]
    return Reply(200, {"reserved": uuids[:-1], "not_reserved": uuids[-1:]})


def test_reserve_is_chunked_by_1000_and_merged(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.default = _echo_reserve
    uuids = [f"job-{i}" for i in range(2500)]
    answer = client.batch_reserve_jobs(stack_key="k", job_uuids=uuids)
    assert [len(s.json()["job_uuids"]) for s in server.seen] == [1000, 1000, 500]
    assert answer.not_reserved == ["job-999", "job-1999", "job-2499"]
    assert len(answer.reserved) == 2497
    assert answer.reserved[:2] == ["job-0", "job-1"]


def test_a_failing_later_chunk_carries_what_was_reserved(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(_echo_reserve)
    server.default = Reply(500, {"message": "down"})
    with pytest.raises(StacksServerError) as info:
        client.batch_reserve_jobs(
            stack_key="k", job_uuids=[f"j{i}" for i in range(1001)], retry=False
        )
    partial = info.value.partial
    assert isinstance(partial, BatchReserveJobsResponse)
    assert len(partial.reserved) == 999


def test_no_uuids_means_no_request(client: StacksClient, server: ScriptedServer) -> None:
    assert client.batch_reserve_jobs(stack_key="k", job_uuids=[]).reserved == []
    assert client.get_job_states(stack_key="k", job_uuids=[]).states == {}
    assert client.create_stack_notifications(stack_key="k", notifications=[]).ok
    assert client.issue_job_acquisition_tokens(stack_key="k", job_uuids=[]).not_issued == []
    assert server.seen == []


# ---------------------------------------------------------------------------- states


def test_get_states_is_chunked_and_merged(client: StacksClient, server: ScriptedServer) -> None:
    server.default = lambda seen: Reply(
        200, {"states": dict.fromkeys(seen.json()["job_uuids"], "scheduled")}
    )
    answer = client.get_job_states(stack_key="k", job_uuids=[f"j{i}" for i in range(1001)])
    assert len(answer.states) == 1001
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/v3/stacks/k/jobs/get-states")
    ] * 2
    assert [len(s.json()["job_uuids"]) for s in server.seen] == [1000, 1]


def test_a_failing_states_chunk_carries_the_states_so_far(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(Reply(200, {"states": {"j0": "running"}}))
    server.default = Reply(503, {})
    with pytest.raises(StacksServerError) as info:
        client.get_job_states(stack_key="k", job_uuids=["j"] * 1500, retry=False)
    assert info.value.partial == GetJobStatesResponse(states={"j0": "running"})


# ---------------------------------------------------------------------------- finish


def test_fail_job_always_sends_exit_status(client: StacksClient, server: ScriptedServer) -> None:
    client.fail_job(stack_key="k", job_uuid="j", detail="image pull failed")
    client.finish_job(stack_key="k", job_uuid="j", detail="nothing to do", exit_status=0)
    client.finish_job(
        stack_key="k", job_uuid="j", detail="d", exit_status=3, signal_reason="stack_error"
    )
    bodies = [s.json() for s in server.seen]
    assert bodies == [
        {"exit_status": -1, "detail": "image pull failed"},
        {"exit_status": 0, "detail": "nothing to do"},  # Go's omitempty could never send 0
        {"exit_status": 3, "detail": "d", "signal_reason": "stack_error"},
    ]
    assert {(s.method, s.path) for s in server.seen} == {("POST", "/v3/stacks/k/jobs/j/finish")}


def test_finish_accepts_204_and_200(client: StacksClient, server: ScriptedServer) -> None:
    server.reply(Reply(204), Reply(200, {}))
    client.fail_job(stack_key="k", job_uuid="j", detail="d")
    client.fail_job(stack_key="k", job_uuid="j", detail="d")
    assert len(server.seen) == 2


def test_finish_crops_a_long_detail_on_the_wire(
    client: StacksClient, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fargate_stack.stacksapi"):
        client.fail_job(stack_key="k", job_uuid="j", detail="€" * 2000)
    sent = server.seen[0].json()["detail"]
    assert sent.endswith(FINISH_CROP_SUFFIX)
    assert len(sent.encode()) <= 4096
    assert "cropped" in caplog.text


def test_finish_refuses_an_empty_detail_and_a_non_integer_status(client: StacksClient) -> None:
    with pytest.raises(ValueError, match="detail is required"):
        client.fail_job(stack_key="k", job_uuid="j", detail="")
    with pytest.raises(TypeError, match="exit_status"):
        client.fail_job(stack_key="k", job_uuid="j", detail="d", exit_status="1")  # type: ignore[arg-type]


# --------------------------------------------------------------------- notifications


def test_notifications_wire_format_and_cropping(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(Reply(200, {"errors": []}))
    answer = client.create_stack_notifications(
        stack_key="k",
        notifications=[
            {"job_uuid": "a", "detail": "Task started"},
            StackNotification(
                job_uuid="b", detail="x" * 300, timestamp=datetime(2026, 1, 1, tzinfo=UTC)
            ),
        ],
    )
    assert answer.ok
    seen = server.seen[0]
    assert (seen.method, seen.path) == ("POST", "/v3/stacks/k/notifications")
    first, second = seen.json()["notifications"]
    assert first == {"job_uuid": "a", "detail": "Task started"}
    assert second["timestamp"] == "2026-01-01T00:00:00Z"
    assert len(second["detail"]) == 256
    assert second["detail"].endswith(NOTIFICATION_CROP_SUFFIX)


def test_notification_errors_are_rebased_and_merged_across_chunks(
    client: StacksClient, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse_empty(seen: Seen) -> Reply:
        items = seen.json()["notifications"]
        bad = [i for i, n in enumerate(items) if not n["detail"]]
        errors = [{"error": "detail is required", "indexes": bad}] if bad else []
        return Reply(200, {"errors": errors})

    server.default = refuse_empty
    notes = [
        {"job_uuid": f"j{i}", "detail": "" if i in (3, 1500, 2001) else "ok"} for i in range(2100)
    ]
    with caplog.at_level(logging.WARNING, logger="fargate_stack.stacksapi"):
        answer = client.create_stack_notifications(stack_key="k", notifications=notes)
    assert len(server.seen) == 3
    assert [(e.error, e.indexes) for e in answer.errors] == [
        ("detail is required", [3, 1500, 2001])
    ]
    assert not answer.ok
    assert "refused some notifications" in caplog.text


def test_single_notification_convenience(client: StacksClient, server: ScriptedServer) -> None:
    server.reply(Reply(200, {"errors": [{"error": "job not found", "indexes": [0]}]}))
    answer = client.create_stack_notification(stack_key="k", job_uuid="j", detail="hello")
    assert answer.errors[0].error == "job not found"
    assert server.seen[0].json() == {"notifications": [{"job_uuid": "j", "detail": "hello"}]}


def test_notifications_must_be_a_list(client: StacksClient) -> None:
    with pytest.raises(TypeError, match="list of notifications"):
        client.create_stack_notifications(stack_key="k", notifications={"job_uuid": "j"})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- JATs


def test_jat_request_and_response(client: StacksClient, server: ScriptedServer) -> None:
    server.reply(
        Reply(
            201,
            {
                "job_acquisition_tokens": [
                    {
                        "job_uuid": "j1",
                        "job_acquisition_token": "bkjat_x",
                        "expires_at": "2026-08-20T00:15:00Z",
                    }
                ],
                "not_issued": ["j2"],
            },
        ),
        Reply(201, {"job_acquisition_tokens": [], "not_issued": []}),
    )
    answer = client.issue_job_acquisition_tokens(
        stack_key="stack-123", job_uuids=["j1", "j2"], token_lifetime_seconds=600
    )
    client.issue_job_acquisition_tokens(stack_key="stack-123", job_uuids=["j1"])
    first, second = server.seen
    assert (first.method, first.path) == ("POST", "/v3/stacks/stack-123/job-acquisition-tokens")
    assert first.json() == {"job_uuids": ["j1", "j2"], "token_lifetime_seconds": 600}
    assert second.json() == {"job_uuids": ["j1"]}
    assert answer.not_issued == ["j2"]
    token = answer.token_for("j1")
    assert token is not None
    assert token.token.get_secret_value() == "bkjat_x"


@pytest.mark.parametrize("lifetime", [0, 3601])
def test_jat_lifetime_outside_1_to_3600_is_refused(client: StacksClient, lifetime: int) -> None:
    with pytest.raises(ValueError, match="token_lifetime_seconds"):
        client.issue_job_acquisition_tokens(
            stack_key="k", job_uuids=["j"], token_lifetime_seconds=lifetime
        )


def test_request_bodies_are_compact_utf8_json(client: StacksClient, server: ScriptedServer) -> None:
    client.fail_job(stack_key="k", job_uuid="j", detail="Ünïcode ✓")
    raw = server.seen[0].body
    assert (
        raw
        == json.dumps(
            {"exit_status": -1, "detail": "Ünïcode ✓"}, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
