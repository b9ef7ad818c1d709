"""Response models: tolerant of what Buildkite may add, strict about what we need."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest

from fargate_stack.stacksapi import (
    BatchReserveJobsResponse,
    CreateStackNotificationsResponse,
    GetJobResponse,
    GetJobStatesResponse,
    IssueJobAcquisitionTokensResponse,
    ListScheduledJobsResponse,
    RegisterStackResponse,
    StackNotification,
)

# The docs' example answer for "List scheduled jobs", plus fields nobody knows yet.
LISTING = {
    "jobs": [
        {
            "id": "01890000-0000-0000-0000-000000000001",
            "priority": 5,
            "agent_query_rules": ["queue=default", "os=linux"],
            "scheduled_at": "2025-09-23T10:00:00.000Z",
            "pipeline": {"slug": "my-pipeline", "uuid": "p-uuid", "new": 1},
            "build": {"number": 42, "branch": "main", "uuid": "b-uuid"},
            "step": {"key": "test"},
            "brand_new_field": {"nested": True},
        }
    ],
    "page_info": {"has_next_page": True, "end_cursor": "Y3Vyc29y"},
    "cluster_queue": {"id": "q-uuid", "dispatch_paused": False, "also_new": "x"},
    "top_level_new": [],
}


def test_listing_parses_with_unknown_fields() -> None:
    page = ListScheduledJobsResponse.model_validate(LISTING)
    job = page.jobs[0]
    assert job.priority == 5
    assert job.agent_query_rules == ["queue=default", "os=linux"]
    assert job.scheduled_at == datetime(2025, 9, 23, 10, 0, tzinfo=UTC)
    assert (job.pipeline.slug, job.build.number, job.step.key) == ("my-pipeline", 42, "test")
    assert job.runnable_at is None
    assert page.page_info.end_cursor == "Y3Vyc29y"
    assert page.cluster_queue.dispatch_paused is False


def test_scheduled_job_tolerates_nulls_and_missing_rules() -> None:
    job = ListScheduledJobsResponse.model_validate(
        {
            **LISTING,
            "jobs": [
                {
                    "id": "j",
                    "priority": None,
                    "agent_query_rules": None,
                    "scheduled_at": "2025-09-23T10:00:00+02:00",
                    "runnable_at": "2025-09-23T10:00:01Z",
                    "pipeline": {"slug": None, "uuid": None},
                    "build": {"number": None, "branch": None, "uuid": None},
                    "step": None,
                },
                {"id": "k", "scheduled_at": "2025-09-23T10:00:00Z"},
            ],
        }
    ).jobs
    assert job[0].agent_query_rules == []
    assert job[0].priority == 0
    assert job[0].build.number is None
    assert job[0].step.key is None
    assert job[0].runnable_at == datetime(2025, 9, 23, 10, 0, 1, tzinfo=UTC)
    assert job[1].agent_query_rules == []
    assert job[1].pipeline.slug is None


def test_a_job_without_an_id_is_an_error_naming_the_field() -> None:
    bad = {**LISTING, "jobs": [{"scheduled_at": "2025-09-23T10:00:00Z"}]}
    with pytest.raises(pydantic.ValidationError) as info:
        ListScheduledJobsResponse.model_validate(bad)
    assert info.value.errors()[0]["loc"] == ("jobs", 0, "id")


def test_dispatch_paused_is_required_but_the_old_wire_name_is_read() -> None:
    legacy = {**LISTING, "cluster_queue": {"id": "q", "paused": True}}
    assert ListScheduledJobsResponse.model_validate(legacy).cluster_queue.dispatch_paused is True
    missing = {**LISTING, "cluster_queue": {"id": "q"}}
    with pytest.raises(pydantic.ValidationError, match="dispatch_paused"):
        ListScheduledJobsResponse.model_validate(missing)


def test_register_response_from_the_docs_example() -> None:
    stack = RegisterStackResponse.model_validate(
        {
            "id": "s-uuid",
            "organization_uuid": "o-uuid",
            "key": "my-stack",
            "type": "custom",
            "cluster_queue_key": "default",
            "metadata": {"version": "1"},
            "last_connected_on": None,
            "state": "connected",
            "future": 1,
        }
    )
    assert stack.cluster_queue_key == "default"
    assert stack.last_connected_on is None
    assert stack.metadata == {"version": "1"}


def test_register_response_needs_the_cluster_queue_key() -> None:
    with pytest.raises(pydantic.ValidationError, match="cluster_queue_key"):
        RegisterStackResponse.model_validate({"id": "s", "key": "k"})


def test_null_collections_read_as_empty() -> None:
    assert BatchReserveJobsResponse.model_validate({"reserved": None}).not_reserved == []
    assert GetJobResponse.model_validate({"id": "j", "env": None, "command": None}).env == {}
    assert GetJobStatesResponse.model_validate({"states": None}).states == {}
    assert CreateStackNotificationsResponse.model_validate({"errors": None}).ok


def test_a_null_state_reads_as_an_unknown_job() -> None:
    states = GetJobStatesResponse.model_validate({"states": {"a": "running", "b": None}}).states
    assert states == {"a": "running"}


def test_reserve_response_needs_reserved() -> None:
    with pytest.raises(pydantic.ValidationError, match="reserved"):
        BatchReserveJobsResponse.model_validate({"not_reserved": []})


def test_job_acquisition_tokens_are_secret() -> None:
    answer = IssueJobAcquisitionTokensResponse.model_validate(
        {
            "job_acquisition_tokens": [
                {
                    "job_uuid": "j1",
                    "job_acquisition_token": "bkjat_very_secret",
                    "expires_at": "2026-08-20T00:15:00Z",
                }
            ],
            "not_issued": ["j2"],
        }
    )
    token = answer.token_for("j1")
    assert token is not None
    assert token.token.get_secret_value() == "bkjat_very_secret"
    assert "bkjat_very_secret" not in repr(answer)
    assert "bkjat_very_secret" not in str(answer.model_dump())
    assert answer.token_for("j2") is None


def test_notification_timestamps_must_be_aware_and_go_out_in_utc() -> None:
    with pytest.raises(pydantic.ValidationError, match="timezone-aware"):
        StackNotification(job_uuid="j", detail="d", timestamp=datetime(2026, 1, 1))
    note = StackNotification(
        job_uuid="j", detail="d", timestamp=datetime.fromisoformat("2026-01-01T02:00:00+02:00")
    )
    assert note.to_wire() == {"job_uuid": "j", "detail": "d", "timestamp": "2026-01-01T00:00:00Z"}
    assert "timestamp" not in StackNotification(job_uuid="j", detail="d").to_wire()
