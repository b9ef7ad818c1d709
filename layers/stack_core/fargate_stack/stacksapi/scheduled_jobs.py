"""List and reserve scheduled jobs (Go ``scheduled_jobs.go``).

Reference: docs/reference/stacks-api.md §3.3, §3.4.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from fargate_stack.stacksapi.transport import BaseClient, RetryArg
from fargate_stack.stacksapi.types import APIModel, ListIfNull, NullableInt, StrList
from fargate_stack.stacksapi.wire import build_path, require_range, require_text, require_uuids

# `limit` is at most 1000 (Buildkite docs "List scheduled jobs", docs/reference/stacks-api.md §3.3).
PAGE_SIZE_MAX = 1000
# Reservations last 900 s by default and at most 3600 s (Buildkite docs "Reserve jobs",
# docs/reference/stacks-api.md §3.4); the minimum is not documented, 1 s is the obvious floor.
RESERVATION_EXPIRY_MIN = 1
RESERVATION_EXPIRY_MAX = 3600


def _model_if_null(value: object) -> object:
    return {} if value is None else value


class Pipeline(APIModel):
    slug: str | None = None
    uuid: str | None = None


class Build(APIModel):
    number: int | None = None
    branch: str | None = None
    uuid: str | None = None


class Step(APIModel):
    key: str | None = None


class ScheduledJob(APIModel):
    """A job waiting for a stack. The nested objects are always sent but their values may
    be null (docs note); ``agent_query_rules`` missing or null means no rules."""

    id: str
    scheduled_at: datetime
    priority: NullableInt = 0
    agent_query_rules: StrList = Field(default_factory=list)
    # Declared by the newest Go client only; not in the docs, so UNCONFIRMED:
    # docs/reference/stacks-api.md §3.3.
    runnable_at: datetime | None = None
    pipeline: Annotated[Pipeline, BeforeValidator(_model_if_null)] = Pipeline()
    build: Annotated[Build, BeforeValidator(_model_if_null)] = Build()
    step: Annotated[Step, BeforeValidator(_model_if_null)] = Step()


class ClusterQueue(APIModel):
    """``dispatch_paused`` is required: guessing "not paused" would start jobs on a queue
    an operator paused. The Go client's older wire name ``paused`` is accepted too."""

    id: str | None = None
    dispatch_paused: bool

    @model_validator(mode="before")
    @classmethod
    def _legacy_name(cls, data: object) -> object:
        if isinstance(data, dict) and "dispatch_paused" not in data and "paused" in data:
            return {**data, "dispatch_paused": data["paused"]}
        return data


class PageInfo(APIModel):
    has_next_page: bool
    end_cursor: str | None = None


class ListScheduledJobsResponse(APIModel):
    jobs: Annotated[list[ScheduledJob], ListIfNull]
    page_info: PageInfo
    cluster_queue: ClusterQueue


class BatchReserveJobsResponse(APIModel):
    """Only jobs in ``reserved`` may be run; ``not_reserved`` ones belong to someone else
    or are no longer reservable, and the call still succeeded."""

    reserved: StrList
    not_reserved: StrList = Field(default_factory=list)


class ScheduledJobsMixin(BaseClient):
    def list_scheduled_jobs(
        self,
        *,
        stack_key: str,
        queue_key: str,
        page_size: int | None = None,
        start_cursor: str | None = None,
        retry: RetryArg = None,
    ) -> ListScheduledJobsResponse:
        """One page of the queue's scheduled jobs, oldest first, regardless of agent tags
        (filtering is the stack's job). Polling this also keeps the queue "Connected"."""
        path = build_path("stacks/{key}/scheduled-jobs", key=require_text("stack_key", stack_key))
        query = {"queue_key": require_text("queue_key", queue_key)}
        limit = require_range("page_size", page_size, 1, PAGE_SIZE_MAX)
        if limit is not None:
            query["limit"] = str(limit)
        if start_cursor:
            query["after"] = start_cursor
        return self._request("GET", path, query=query, model=ListScheduledJobsResponse, retry=retry)

    def iter_scheduled_jobs(
        self,
        *,
        stack_key: str,
        queue_key: str,
        page_size: int | None = None,
        max_pages: int | None = None,
        start_cursor: str | None = None,
        retry: RetryArg = None,
    ) -> Iterator[ListScheduledJobsResponse]:
        """Pages (not jobs), because each page carries ``cluster_queue.dispatch_paused``,
        which a caller must check before starting anything.

        Stops after a page with ``has_next_page`` false, after ``max_pages`` pages, on a
        missing cursor, or on a cursor already seen (a server bug must not loop us
        forever). Buildkite suggests reading only the first pages: listing is not a
        snapshot. Arguments are checked now, not at the first ``next()``.
        """
        require_text("stack_key", stack_key)
        require_text("queue_key", queue_key)
        require_range("page_size", page_size, 1, PAGE_SIZE_MAX)
        if max_pages is not None and (
            isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1
        ):
            raise ValueError(f"max_pages must be a positive integer or None, got {max_pages!r}")
        return self._pages(
            stack_key=stack_key,
            queue_key=queue_key,
            page_size=page_size,
            max_pages=max_pages,
            cursor=start_cursor,
            retry=retry,
        )

    def _pages(
        self,
        *,
        stack_key: str,
        queue_key: str,
        page_size: int | None,
        max_pages: int | None,
        cursor: str | None,
        retry: RetryArg,
    ) -> Iterator[ListScheduledJobsResponse]:
        seen: set[str] = {cursor} if cursor else set()
        count = 0
        while True:
            page = self.list_scheduled_jobs(
                stack_key=stack_key,
                queue_key=queue_key,
                page_size=page_size,
                start_cursor=cursor,
                retry=retry,
            )
            count += 1
            yield page
            if not page.page_info.has_next_page:
                return
            if max_pages is not None and count >= max_pages:
                return
            cursor = page.page_info.end_cursor
            if not cursor:
                self._logger.warning(
                    "Stacks API said there is a next page but gave no cursor; stopping",
                    extra={"stack_key": stack_key, "pages": count},
                )
                return
            if cursor in seen:
                self._logger.warning(
                    "Stacks API repeated a page cursor; stopping to avoid a loop",
                    extra={"stack_key": stack_key, "pages": count},
                )
                return
            seen.add(cursor)

    def batch_reserve_jobs(
        self,
        *,
        stack_key: str,
        job_uuids: Sequence[str],
        reservation_expiry_seconds: int | None = None,
        retry: RetryArg = None,
    ) -> BatchReserveJobsResponse:
        """Reserve jobs for this stack (or extend its reservations), 1000 per request.

        ``reservation_expiry_seconds`` None leaves the server default (900 s). No uuids
        means no request. If a later chunk fails, the raised error's ``partial`` holds
        what the earlier chunks reserved (those come back by themselves on expiry).
        """
        path = build_path(
            "stacks/{key}/scheduled-jobs/batch-reserve", key=require_text("stack_key", stack_key)
        )
        uuids = require_uuids("job_uuids", job_uuids)
        expiry = require_range(
            "reservation_expiry_seconds",
            reservation_expiry_seconds,
            RESERVATION_EXPIRY_MIN,
            RESERVATION_EXPIRY_MAX,
        )
        return self._batched(
            "PUT",
            path,
            uuids,
            model=BatchReserveJobsResponse,
            merge=_merge_reservations,
            extra={} if expiry is None else {"reservation_expiry_seconds": expiry},
            retry=retry,
        )


def _merge_reservations(answers: Sequence[BatchReserveJobsResponse]) -> BatchReserveJobsResponse:
    return BatchReserveJobsResponse(
        reserved=[uuid for a in answers for uuid in a.reserved],
        not_reserved=[uuid for a in answers for uuid in a.not_reserved],
    )
