"""Error mapping: the class follows the status, the message follows Go's format."""

from __future__ import annotations

import pytest

from fargate_stack.stacksapi import (
    RateLimit,
    StacksAPIError,
    StacksAuthError,
    StacksHTTPError,
    StacksNotFoundError,
    StacksRateLimitError,
    StacksServerError,
    StacksValidationError,
)
from fargate_stack.stacksapi.errors import error_class, http_error, is_retryable_status

URL = "https://agent.buildkite.com/v3/stacks/k/scheduled-jobs?queue_key=q"


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, StacksValidationError, False),
        (401, StacksAuthError, False),
        (403, StacksAuthError, False),
        (404, StacksNotFoundError, False),
        (409, StacksHTTPError, False),
        (422, StacksValidationError, False),
        (429, StacksRateLimitError, True),
        (500, StacksServerError, True),
        (502, StacksServerError, True),
        (503, StacksServerError, True),
    ],
)
def test_status_decides_class_and_retryability(
    status: int, cls: type[StacksHTTPError], retryable: bool
) -> None:
    assert error_class(status) is cls
    assert is_retryable_status(status) is retryable
    error = _error(status, '{"message": "nope"}')
    assert type(error) is cls
    assert error.retryable is retryable
    assert isinstance(error, StacksAPIError)


def test_message_has_gos_format() -> None:
    error = _error(404, '{"message": "There is no stack by that name here"}')
    assert str(error) == f"GET {URL}: 404 There is no stack by that name here"
    assert error.server_message == "There is no stack by that name here"
    assert (error.status, error.method, error.path) == (404, "GET", "stacks/k/scheduled-jobs")


def test_non_json_error_body_keeps_the_class_and_the_raw_body() -> None:
    body = "<html>\n<body>502 Bad Gateway</body>\n</html>"
    error = _error(502, body)
    assert isinstance(error, StacksServerError)
    assert error.body == body
    assert str(error) == f"GET {URL}: 502 <html> <body>502 Bad Gateway</body> </html>"


def test_empty_error_body_falls_back_to_the_reason_phrase() -> None:
    assert str(_error(503, "", reason="Service Unavailable")).endswith("503 Service Unavailable")


def test_429_body_fills_in_a_missing_rate_limit() -> None:
    error = _error(
        429,
        '{"message": "You have exceeded your API rate limit.", "scope": "batch-reserve",'
        ' "limit": 10, "current": 11, "reset": 1}',
    )
    assert isinstance(error, StacksRateLimitError)
    assert error.current == 11
    assert error.rate_limit == RateLimit(scope="batch-reserve", limit=10, remaining=0, reset=1.0)


def test_headers_are_case_insensitive() -> None:
    error = _error(500, "{}", headers={"X-Request-Id": "abc"})
    assert error.headers["x-request-id"] == "abc"


def _error(
    status: int, body: str, *, reason: str = "", headers: dict[str, str] | None = None
) -> StacksHTTPError:
    return http_error(
        method="GET",
        url=URL,
        path="stacks/k/scheduled-jobs",
        status=status,
        reason=reason,
        body=body,
        headers=headers or {},
        retry_after=None,
        rate_limit=None,
    )
