"""Errors the client raises, one class per thing a caller would do differently.

All derive from ``StacksAPIError``, which carries what a log line or a retry decision
needs: the request (method, URL, path), the answer (status, message, raw body, headers,
rate limit) and ``retryable``, which follows the Go client's ``IsRetryableStatus``
(429 and 5xx) plus transport failures. Nothing here ever holds the request headers, so
the token cannot leak through an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Required, TypedDict, Unpack

from requests.structures import CaseInsensitiveDict

from fargate_stack.stacksapi.ratelimit import RateLimit

# How much of an unparsable error body becomes the message; the whole body stays in `body`.
_MESSAGE_SNIPPET = 300


class ErrorContext(TypedDict, total=False):
    """What every error knows about its request and, when there was one, the answer."""

    method: Required[str]
    url: Required[str]
    path: Required[str]
    status: int | None
    body: str | None
    headers: Mapping[str, str] | None
    retryable: bool
    retry_after: float | None
    rate_limit: RateLimit | None


class StacksAPIError(Exception):
    """Base class. ``status`` is None when no HTTP answer arrived (a transport failure).

    ``partial`` is set by the batch methods that split a request into chunks: the merged
    answer of the chunks that succeeded before this error, so a caller can still act on
    jobs that were, say, already reserved.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        path: str,
        status: int | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.path = path
        self.status = status
        self.body = body
        self.headers: Mapping[str, str] = CaseInsensitiveDict(headers or {})
        self.retryable = retryable
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        self.partial: object | None = None

    def __str__(self) -> str:
        return self.message


class StacksHTTPError(StacksAPIError):
    """The server answered with a non-2xx status (Go's ``ErrorResponse``).

    ``server_message`` is the body's ``message`` field, or the start of a non-JSON body.
    """

    status: int

    def __init__(self, *, server_message: str, **context: Unpack[ErrorContext]) -> None:
        # Go's ErrorResponse.Error(): "<METHOD> <URL>: <status> <message>".
        head = f"{context['method']} {context['url']}: {context.get('status')}"
        super().__init__(f"{head} {server_message}", **context)
        self.server_message = server_message


class StacksAuthError(StacksHTTPError):
    """401 (token missing, invalid or expired) or 403 (e.g. the org's stack limit)."""


class StacksNotFoundError(StacksHTTPError):
    """404: the stack (not registered, or cleaned up), the job, or the queue is unknown."""


class StacksValidationError(StacksHTTPError):
    """400 or 422: the request was wrong; sending it again will not help."""


class StacksRateLimitError(StacksHTTPError):
    """429. ``current`` is the body's request count in the window, when it gave one."""

    def __init__(
        self, *, server_message: str, current: int | None = None, **context: Unpack[ErrorContext]
    ) -> None:
        super().__init__(server_message=server_message, **context)
        self.current = current


class StacksServerError(StacksHTTPError):
    """5xx, e.g. 503 "organization temporarily unavailable": retried by default."""


class StacksConnectionError(StacksAPIError):
    """No usable HTTP answer: refused, reset, dropped or timed out. Always retryable."""


class StacksResponseError(StacksAPIError):
    """A 2xx answer whose body is not what the endpoint promises.

    Not JSON at all (truncated, an HTML page) is ``retryable``, because the Go client
    retries a body it cannot decode. Valid JSON of the wrong shape is not: asking again
    gets the same shape. ``field`` names the first bad field (``jobs.0.id``), ``errors``
    lists them all; neither ever includes the offending value, which could be a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.field = field
        self.errors = list(errors)


def error_class(status: int) -> type[StacksHTTPError]:
    """The subclass for a status, so callers can catch by meaning, not by number."""
    if status in (401, 403):
        return StacksAuthError
    if status == 404:
        return StacksNotFoundError
    if status in (400, 422):
        return StacksValidationError
    if status == 429:
        return StacksRateLimitError
    if status >= 500:
        return StacksServerError
    return StacksHTTPError


def is_retryable_status(status: int) -> bool:
    """Go's ``IsRetryableStatus``: 5xx and 429; every other status is final."""
    return status >= 500 or status == 429


def http_error(
    *,
    method: str,
    url: str,
    path: str,
    status: int,
    reason: str,
    body: str,
    headers: Mapping[str, str],
    retry_after: float | None,
    rate_limit: RateLimit | None,
) -> StacksHTTPError:
    """Build the error for a non-2xx answer. A body that is not JSON still gives the right
    class (the status decides) and its start becomes the message."""
    parsed = _json_object(body)
    message = parsed.get("message") if parsed is not None else None
    if not isinstance(message, str) or not message:
        message = " ".join(body.split())[:_MESSAGE_SNIPPET] or reason or "(empty body)"
    cls = error_class(status)
    if cls is StacksRateLimitError and rate_limit is None and parsed is not None:
        # Headers lost on the way (a proxy): the 429 body has the same facts.
        rate_limit = RateLimit(
            scope=_opt_str(parsed.get("scope")),
            limit=_opt_int(parsed.get("limit")),
            remaining=0,
            reset=_opt_float(parsed.get("reset")),
        )
    context = ErrorContext(
        method=method,
        url=url,
        path=path,
        status=status,
        body=body,
        headers=headers,
        retryable=is_retryable_status(status),
        retry_after=retry_after,
        rate_limit=rate_limit,
    )
    if cls is StacksRateLimitError:
        current = _opt_int(parsed.get("current")) if parsed is not None else None
        return StacksRateLimitError(server_message=message, current=current, **context)
    return cls(server_message=message, **context)


def _json_object(body: str) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
