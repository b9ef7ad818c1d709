"""Transport: headers, the retry loop, error mapping and payload logging.

This is the Go client's ``client.go`` (``newRequest``, ``do``, ``checkResponse``); the
endpoint modules only say which method, path, body and model they need. It lives apart
from ``client.py`` so the endpoint modules can build on it without an import cycle; the
pure wire helpers (escaping, URLs, argument checks, batching) are in ``wire.py``.

One attempt is a pipeline of steps, each with one job: build headers, log the request,
send it, record the answer's rate limit, log the answer, check its status, parse its JSON,
validate it into the endpoint's model. Errors are raised outside ``except`` blocks, so
they chain nothing: a requests exception holds the prepared request (Authorization header
included) and a pydantic error holds the input values (job acquisition tokens).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload
from urllib.parse import urlencode, urlsplit

import pydantic
import requests
from pydantic import SecretStr
from requests.structures import CaseInsensitiveDict

from fargate_stack.stacksapi.errors import (
    ErrorContext,
    StacksAPIError,
    StacksConnectionError,
    StacksResponseError,
    http_error,
)
from fargate_stack.stacksapi.ratelimit import RateLimit, ResponseInfo
from fargate_stack.stacksapi.retry import RetryPolicy, parse_retry_after
from fargate_stack.stacksapi.version import user_agent
from fargate_stack.stacksapi.wire import (
    BATCH_MAX,
    REDACTED,
    chunks,
    encode_body,
    join_url,
    redact_headers,
)

__all__ = ["BATCH_MAX", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "BaseClient", "RetryArg"]

# Go DefaultBaseURL (stacksapi client.go); docs/reference/stacks-api.md §1.
DEFAULT_BASE_URL = "https://agent.buildkite.com/v3/"
# Seconds per attempt. Go's default http.Client has no timeout at all; a Lambda must not
# hang until it is killed, so we always pass one (agent-stack-k8s uses 60 s).
DEFAULT_TIMEOUT = 30.0
LOGGER_NAME = "fargate_stack.stacksapi"

_JSON = "application/json"
# Job acquisition tokens are credentials: even a payload log must not show them.
_JAT_VALUE = re.compile(r'("job_acquisition_token"\s*:\s*)"[^"]*"')
_M = TypeVar("_M", bound=pydantic.BaseModel)
# A per-call override: None = the client's policy, False = one attempt, True = the
# client's policy, a RetryPolicy = that policy.
RetryArg = RetryPolicy | bool | None


class BaseClient:
    """Holds the connection settings and performs requests; see ``StacksClient``."""

    def __init__(
        self,
        token: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        user_agent_prefix: str | None = None,
        session: requests.Session | None = None,
        retry: RetryPolicy | bool = True,
        log_payloads: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        logger: logging.Logger | None = None,
    ) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        raw = secret.get_secret_value()
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("token must be a non-empty cluster agent token")
        if raw != raw.strip() or any(ch in raw for ch in "\r\n\0"):
            # Never echo the token: say what is wrong with it, not what it is.
            raise ValueError("token must not contain whitespace, line breaks or NUL")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
        if isinstance(timeout, bool) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._token = secret
        self._base_url = base_url
        self._user_agent = user_agent(user_agent_prefix)
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._retry = self._policy_from(retry, RetryPolicy())
        self._log_payloads = log_payloads
        self._timeout = float(timeout)
        self._logger = logger if logger is not None else logging.getLogger(LOGGER_NAME)
        self._local = threading.local()

    # ------------------------------------------------------------------ public bits

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def user_agent(self) -> str:
        return self._user_agent

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    @property
    def last_response(self) -> ResponseInfo | None:
        """The last HTTP answer this thread received (errors included), or None."""
        info: ResponseInfo | None = getattr(self._local, "last", None)
        return info

    @property
    def last_rate_limit(self) -> RateLimit | None:
        """The ``RateLimit-*`` values of the last answer this thread received."""
        info = self.last_response
        return info.rate_limit if info is not None else None

    def close(self) -> None:
        """Close the session if this client made it; a caller's session stays theirs."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> BaseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, "
            f"user_agent={self._user_agent!r}, retry={self._retry!r}, timeout={self._timeout})"
        )

    # ------------------------------------------------------------------- requests

    def _batched(
        self,
        method: str,
        path: str,
        uuids: Sequence[str],
        *,
        model: type[_M],
        merge: Callable[[Sequence[_M]], _M],
        extra: Mapping[str, Any] | None = None,
        retry: RetryArg = None,
    ) -> _M:
        """One request per ``BATCH_MAX`` job uuids, answers merged by ``merge``. If a later
        chunk fails, the raised error's ``partial`` is the merge of the chunks that
        succeeded, so a caller can still act on them."""
        answers: list[_M] = []
        for _, chunk in chunks(uuids):
            body = {"job_uuids": list(chunk), **(extra or {})}
            try:
                answers.append(self._request(method, path, body=body, model=model, retry=retry))
            except StacksAPIError as exc:
                exc.partial = merge(answers)
                raise
        return merge(answers)

    @overload
    def _request(
        self,
        method: str,
        path: str,
        *,
        model: type[_M],
        body: Mapping[str, Any] | None = ...,
        query: Mapping[str, str] | None = ...,
        retry: RetryArg = ...,
    ) -> _M: ...

    @overload
    def _request(
        self,
        method: str,
        path: str,
        *,
        model: None,
        body: Mapping[str, Any] | None = ...,
        query: Mapping[str, str] | None = ...,
        retry: RetryArg = ...,
    ) -> None: ...

    def _request(
        self,
        method: str,
        path: str,
        *,
        model: type[_M] | None,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        retry: RetryArg = None,
    ) -> _M | None:
        """Send one logical request, retrying as the policy says; parse into ``model``, or
        ignore the body when ``model`` is None (Go's ``do[struct{}]``)."""
        policy = self._policy_from(retry, self._retry)
        url = join_url(self._base_url, path)
        if query:
            # Sorted like Go's url.Values.Encode(), so the wire is deterministic.
            url += "?" + urlencode(sorted(query.items()))
        payload = None if body is None else encode_body(body)
        failures = 0
        while True:
            try:
                return self._attempt(
                    method=method,
                    url=url,
                    path=path,
                    payload=payload,
                    model=model,
                    attempt=failures + 1,
                )
            except StacksAPIError as exc:
                failures += 1
                wait = self._next_wait(exc, failures, policy)
                if wait is None:
                    raise
                self._logger.warning(
                    "Stacks API %s %s failed (%s); attempt %d of %d, retrying in %.3f s",
                    method,
                    url,
                    exc.status if exc.status is not None else type(exc).__name__,
                    failures,
                    policy.max_attempts,
                    wait,
                    extra={
                        "http_method": method,
                        "url": url,
                        "status_code": exc.status,
                        "error": exc.message,
                        "attempt": failures,
                        "max_attempts": policy.max_attempts,
                        "wait_seconds": round(wait, 3),
                    },
                )
                policy.sleep(wait)

    def _attempt(
        self,
        *,
        method: str,
        url: str,
        path: str,
        payload: bytes | None,
        model: type[_M] | None,
        attempt: int,
    ) -> _M | None:
        call = _Call(method=method, url=url, path=path, attempt=attempt)
        headers = self._headers()
        self._log_request(call, headers, payload)
        started = time.monotonic()
        response = self._send_or_raise(call, payload, headers)
        answer = self._record(call, response)
        self._log_response(call, answer, round((time.monotonic() - started) * 1000, 1))
        self._check_status(call, answer)
        if model is None:
            return None
        return _validate(call, answer, model, _parse_json(call, answer))

    def _headers(self) -> dict[str, str]:
        return {
            "User-Agent": self._user_agent,
            "Authorization": f"Token {self._token.get_secret_value()}",
            "Accept": _JSON,
            "Content-Type": _JSON,
        }

    def _log_request(self, call: _Call, headers: Mapping[str, str], payload: bytes | None) -> None:
        method, url = call.method, call.url
        self._logger.debug(
            "Stacks API request %s %s (attempt %d)", method, url, call.attempt, extra=call.log
        )
        if not self._log_payloads:
            return
        shown_headers = redact_headers(headers)
        shown_body = self._scrub(payload.decode("utf-8")) if payload else ""
        self._logger.debug(
            "Stacks API request payload %s %s headers=%s body=%s",
            method,
            url,
            shown_headers,
            shown_body,
            extra={**call.log, "request_headers": shown_headers, "request_body": shown_body},
        )

    def _send_or_raise(
        self, call: _Call, payload: bytes | None, headers: Mapping[str, str]
    ) -> requests.Response:
        """The answer, or a retryable ``StacksConnectionError`` that names no secret."""
        failure: str | None = None
        try:
            return self._send(call.method, call.url, payload, headers)
        except requests.RequestException as exc:
            failure = f"{type(exc).__name__}: {self._scrub(str(exc))}"
        self._logger.debug(
            "Stacks API request %s %s got no answer: %s",
            call.method,
            call.url,
            failure,
            extra=call.log,
        )
        raise StacksConnectionError(
            f"{call.method} {call.url}: {failure}",
            method=call.method,
            url=call.url,
            path=call.path,
            retryable=True,
        )

    def _record(self, call: _Call, response: requests.Response) -> _Answer:
        """Read the answer's headers once, and keep them as this thread's last response."""
        headers: Mapping[str, str] = CaseInsensitiveDict(response.headers)
        answer = _Answer(
            response=response,
            headers=headers,
            rate_limit=RateLimit.from_headers(headers),
            retry_after=parse_retry_after(headers.get("Retry-After"), self._logger),
            text=self._scrub(response.content.decode("utf-8", errors="replace")),
        )
        self._local.last = ResponseInfo(
            method=call.method,
            url=call.url,
            status=answer.status,
            headers=headers,
            rate_limit=answer.rate_limit,
            retry_after=answer.retry_after,
        )
        return answer

    def _log_response(self, call: _Call, answer: _Answer, elapsed_ms: float) -> None:
        method, url, status = call.method, call.url, answer.status
        self._logger.debug(
            "Stacks API response %s %s: %d in %.1f ms",
            method,
            url,
            status,
            elapsed_ms,
            extra={**call.log, "status_code": status, "duration_ms": elapsed_ms},
        )
        if not self._log_payloads:
            return
        shown_headers = dict(answer.headers)
        self._logger.debug(
            "Stacks API response payload %s %s: %d headers=%s body=%s",
            method,
            url,
            status,
            shown_headers,
            answer.text,
            extra={
                **call.log,
                "status_code": status,
                "response_headers": shown_headers,
                "response_body": answer.text,
            },
        )

    @staticmethod
    def _check_status(call: _Call, answer: _Answer) -> None:
        if 200 <= answer.status < 300:
            return
        raise http_error(
            method=call.method,
            url=call.url,
            path=call.path,
            status=answer.status,
            reason=answer.response.reason or "",
            body=answer.text,
            headers=answer.headers,
            retry_after=answer.retry_after,
            rate_limit=answer.rate_limit,
        )

    def _send(
        self, method: str, url: str, payload: bytes | None, headers: Mapping[str, str]
    ) -> requests.Response:
        """``Session.request`` step by step, because its URL preparation decodes ``%2E``
        back into ``.`` (requote_uri), undoing the escaping Rails needs."""
        prepared = self._session.prepare_request(
            requests.Request(method, url, data=payload, headers=dict(headers))
        )
        prepared.url = url
        settings = self._session.merge_environment_settings(url, {}, None, None, None)
        return self._session.send(prepared, timeout=self._timeout, **settings)

    def _next_wait(self, exc: StacksAPIError, failures: int, policy: RetryPolicy) -> float | None:
        """The wait before the next attempt, or None to give up and raise ``exc``."""
        if not exc.retryable or failures >= policy.max_attempts:
            return None
        if exc.retry_after is not None:
            if policy.max_delay is not None and exc.retry_after > policy.max_delay:
                return None
            return exc.retry_after
        return policy.backoff(failures)

    def _policy_from(self, retry: RetryArg, default: RetryPolicy) -> RetryPolicy:
        if retry is None or retry is True:
            return default
        if retry is False:
            return default.single_attempt()
        if isinstance(retry, RetryPolicy):
            return retry
        raise TypeError(f"retry must be a RetryPolicy, True, False or None, not {retry!r}")

    def _scrub(self, text: str) -> str:
        """Text bound for a log line or an exception, without credentials: job acquisition
        tokens, and (defence in depth) our own token should an answer ever echo it."""
        secret = self._token.get_secret_value()
        if secret in text:
            text = text.replace(secret, REDACTED)
        return _JAT_VALUE.sub(rf'\1"{REDACTED}"', text)


@dataclass(frozen=True, slots=True)
class _Call:
    """One attempt of one logical request, as its log lines name it."""

    method: str
    url: str
    path: str
    attempt: int
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def log(self) -> dict[str, object]:
        return {
            "http_method": self.method,
            "url": self.url,
            "attempt": self.attempt,
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class _Answer:
    """An HTTP answer, read once: headers, rate limit, Retry-After and the scrubbed text."""

    response: requests.Response
    headers: Mapping[str, str]
    rate_limit: RateLimit | None
    retry_after: float | None
    text: str

    @property
    def status(self) -> int:
        return self.response.status_code

    def context(self, call: _Call) -> ErrorContext:
        return ErrorContext(
            method=call.method,
            url=call.url,
            path=call.path,
            status=self.status,
            body=self.text,
            headers=self.headers,
            rate_limit=self.rate_limit,
        )


def _parse_json(call: _Call, answer: _Answer) -> object:
    """The answer's JSON; a garbled 2xx is retryable (a proxy or a cut connection)."""
    failure: str | None = None
    try:
        return json.loads(answer.response.content)
    except ValueError as exc:
        failure = str(exc)
    common = answer.context(call)
    common["retryable"] = True
    raise StacksResponseError(
        f"{call.method} {call.url}: {answer.status} response is not valid JSON ({failure})",
        **common,
    )


def _validate(call: _Call, answer: _Answer, model: type[_M], data: object) -> _M:
    shape_error: StacksResponseError | None = None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        shape_error = _shape_error(exc, model, answer.context(call))
    raise shape_error


def _shape_error(
    exc: pydantic.ValidationError, model: type[pydantic.BaseModel], common: ErrorContext
) -> StacksResponseError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0] if errors else None
    field = ".".join(str(part) for part in first["loc"]) if first else None
    problem = f"field {field!r}: {first['msg']}" if first else "invalid"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return StacksResponseError(
        f"{common['method']} {common['url']}: {common.get('status')} response does not match "
        f"{model.__name__}: {problem}{more}",
        field=field,
        errors=[dict(e) for e in errors],
        **common,
    )
