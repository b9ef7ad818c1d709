"""Pagination, chunking past the server's 1000 limit, cropping, partial failures."""

from __future__ import annotations

from fargate_stack.stacksapi import (
    FINISH_CROP_SUFFIX,
    NOTIFICATION_CROP_SUFFIX,
    StacksClient,
)
from tests.support.emulator import CLIENT_QUEUE, Control


def test_pagination_walks_every_job_once(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    created = control.jobs(23)
    pages = list(
        client.iter_scheduled_jobs(stack_key=registered_key, queue_key=CLIENT_QUEUE, page_size=5)
    )
    assert [len(p.jobs) for p in pages] == [5, 5, 5, 5, 3]
    assert [j.id for p in pages for j in p.jobs] == created
    assert pages[-1].page_info.has_next_page is False
    queries = [c["query"] for c in control.calls("list-scheduled-jobs")]
    assert queries[0] == f"limit=5&queue_key={CLIENT_QUEUE}"
    assert all(q.startswith("after=") for q in queries[1:])
    assert len(set(queries)) == 5


def test_max_pages_stops_early(client: StacksClient, control: Control, registered_key: str) -> None:
    control.jobs(30)
    pages = list(
        client.iter_scheduled_jobs(
            stack_key=registered_key, queue_key=CLIENT_QUEUE, page_size=4, max_pages=3
        )
    )
    assert len(pages) == 3
    assert pages[-1].page_info.has_next_page is True
    assert len(control.calls("list-scheduled-jobs")) == 3


def test_a_thousand_and_one_jobs(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    created = control.jobs(1001)
    pages = list(
        client.iter_scheduled_jobs(stack_key=registered_key, queue_key=CLIENT_QUEUE, page_size=1000)
    )
    listed = [j.id for p in pages for j in p.jobs]
    assert listed == created
    control.clear_calls()

    reserved = client.batch_reserve_jobs(stack_key=registered_key, job_uuids=listed)
    assert sorted(reserved.reserved) == sorted(created)
    states = client.get_job_states(stack_key=registered_key, job_uuids=listed)
    assert set(states.states.values()) == {"reserved"}
    assert len(states.states) == 1001
    tokens = client.issue_job_acquisition_tokens(stack_key=registered_key, job_uuids=listed)
    assert len(tokens.job_acquisition_tokens) == 1001

    per_endpoint = {
        name: [len(c["job_uuids"]) for c in control.calls(name)]
        for name in ("batch-reserve", "batch-load-job-states", "job-acquisition-tokens")
    }
    assert per_endpoint == {
        "batch-reserve": [1000, 1],
        "batch-load-job-states": [1000, 1],
        "job-acquisition-tokens": [1000, 1],
    }


def test_cropped_finish_detail_is_accepted(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    (job,) = control.jobs(1)
    client.fail_job(stack_key=registered_key, job_uuid=job, detail="日本語のエラー" * 1000)  # 21 KB
    detail = control.job(job)["finish_detail"]
    assert detail.endswith(FINISH_CROP_SUFFIX)
    assert len(detail.encode()) <= 4096
    assert detail.startswith("日本語のエラー")


def test_detail_of_exactly_4096_bytes_is_sent_whole(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    (job,) = control.jobs(1)
    detail = "é" * 2048  # 4096 bytes
    client.fail_job(stack_key=registered_key, job_uuid=job, detail=detail)
    assert control.job(job)["finish_detail"] == detail


def test_cropped_notification_is_accepted(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    (job,) = control.jobs(1)
    answer = client.create_stack_notification(
        stack_key=registered_key, job_uuid=job, detail="ü" * 1000
    )
    assert answer.ok
    (note,) = control.job(job)["notifications"]
    assert len(note["detail"]) == 256
    assert note["detail"].endswith(NOTIFICATION_CROP_SUFFIX)


def test_partial_notification_errors_point_at_the_callers_indexes(
    client: StacksClient, control: Control, registered_key: str
) -> None:
    good, other = control.jobs(2)
    notes = [{"job_uuid": good, "detail": f"note {i}"} for i in range(1200)]
    notes[5] = {"job_uuid": good, "detail": ""}
    notes[1100] = {"job_uuid": "00000000-0000-0000-0000-000000000000", "detail": "lost"}
    notes[1150] = {"job_uuid": other, "detail": ""}
    answer = client.create_stack_notifications(stack_key=registered_key, notifications=notes)
    errors = {e.error: e.indexes for e in answer.errors}
    assert errors["detail is required"] == [5, 1150]
    assert errors["job not found"] == [1100]
    # More than 100 for one job is refused per job, after the first 100 valid ones.
    assert errors["job stack notification count exceeded"][0] == 101
    assert len(control.calls("stack-notification")) == 2  # 1000 + 200
    assert len(control.job(good)["notifications"]) == 100
