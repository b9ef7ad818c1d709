"""Buildkite Stacks API client: a typed Python port of Buildkite's Go ``stacksapi``.

An independent library (requests, pydantic and the standard library only); the rest of
the stack reaches it through ``fargate_stack.ports``. Usage and the differences from the
Go client: docs/stacksapi.md.
"""

from __future__ import annotations

from fargate_stack.stacksapi.client import StacksClient
from fargate_stack.stacksapi.errors import (
    StacksAPIError,
    StacksAuthError,
    StacksConnectionError,
    StacksHTTPError,
    StacksNotFoundError,
    StacksRateLimitError,
    StacksResponseError,
    StacksServerError,
    StacksValidationError,
)
from fargate_stack.stacksapi.finish import (
    FINISH_CROP_SUFFIX,
    FINISH_DETAIL_MAX_BYTES,
    crop_detail,
)
from fargate_stack.stacksapi.get_job import GetJobResponse
from fargate_stack.stacksapi.get_job_states import GetJobStatesResponse
from fargate_stack.stacksapi.job_acquisition_tokens import (
    IssueJobAcquisitionTokensResponse,
    JobAcquisitionToken,
)
from fargate_stack.stacksapi.ratelimit import RateLimit, ResponseInfo
from fargate_stack.stacksapi.register import RegisterStackResponse
from fargate_stack.stacksapi.retry import RetryPolicy, parse_retry_after
from fargate_stack.stacksapi.scheduled_jobs import (
    PAGE_SIZE_MAX,
    RESERVATION_EXPIRY_MAX,
    BatchReserveJobsResponse,
    Build,
    ClusterQueue,
    ListScheduledJobsResponse,
    PageInfo,
    Pipeline,
    ScheduledJob,
    Step,
)
from fargate_stack.stacksapi.stack_notification import (
    NOTIFICATION_CROP_SUFFIX,
    NOTIFICATION_DETAIL_MAX_CHARS,
    CreateStackNotificationsResponse,
    NotificationError,
    StackNotification,
    crop_notification_detail,
)
from fargate_stack.stacksapi.transport import DEFAULT_BASE_URL, DEFAULT_TIMEOUT
from fargate_stack.stacksapi.types import StackState, StackType
from fargate_stack.stacksapi.version import USER_AGENT, VERSION
from fargate_stack.stacksapi.wire import BATCH_MAX

__all__ = [
    "BATCH_MAX",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "FINISH_CROP_SUFFIX",
    "FINISH_DETAIL_MAX_BYTES",
    "NOTIFICATION_CROP_SUFFIX",
    "NOTIFICATION_DETAIL_MAX_CHARS",
    "PAGE_SIZE_MAX",
    "RESERVATION_EXPIRY_MAX",
    "USER_AGENT",
    "VERSION",
    "BatchReserveJobsResponse",
    "Build",
    "ClusterQueue",
    "CreateStackNotificationsResponse",
    "GetJobResponse",
    "GetJobStatesResponse",
    "IssueJobAcquisitionTokensResponse",
    "JobAcquisitionToken",
    "ListScheduledJobsResponse",
    "NotificationError",
    "PageInfo",
    "Pipeline",
    "RateLimit",
    "RegisterStackResponse",
    "ResponseInfo",
    "RetryPolicy",
    "ScheduledJob",
    "StackNotification",
    "StackState",
    "StackType",
    "StacksAPIError",
    "StacksAuthError",
    "StacksClient",
    "StacksConnectionError",
    "StacksHTTPError",
    "StacksNotFoundError",
    "StacksRateLimitError",
    "StacksResponseError",
    "StacksServerError",
    "StacksValidationError",
    "Step",
    "crop_detail",
    "crop_notification_detail",
    "parse_retry_after",
]
