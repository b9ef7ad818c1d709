"""The real client over a real loopback socket: headers, retries, timeouts, parsing."""

from __future__ import annotations

import logging

import pytest
import requests

from fargate_stack.stacksapi import (
    USER_AGENT,
    RateLimit,
    RetryPolicy,
    StacksClient,
    StacksConnectionError,
    StacksHTTPError,
    StacksNotFoundError,
    StacksRateLimitError,
    StacksResponseError,
    StacksServerError,
    StacksValidationError,
)
from tests.support.scripted_server import TOKEN, Reply, ScriptedServer, Sleeps, fast_policy

JOB = {"id": "j1", "env": {"A": "1"}, "command": "echo hi"}


def test_every_request_carries_the_go_clients_headers(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(Reply(200, JOB), Reply(204))
    client.get_job(stack_key="k", job_uuid="j1")
    client.deregister_stack(stack_key="k")
    for seen in server.seen:
        assert seen.headers["Authorization"] == f"Token {TOKEN}"
        assert seen.headers["Accept"] == "application/json"
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["User-Agent"] == USER_AGENT
    get, deregister = server.seen
    assert (get.method, get.path, get.body) == ("GET", "/v3/stacks/k/jobs/j1", b"")
    assert (deregister.method, deregister.path, deregister.body) == (
        "POST",
        "/v3/stacks/k/deregister",
        b"",
    )
    assert deregister.headers["Content-Length"] == "0"


def test_base_url_without_trailing_slash_keeps_v3(server: ScriptedServer) -> None:
    client = StacksClient(TOKEN, base_url=server.base_url.rstrip("/"))
    server.reply(Reply(200, JOB))
    client.get_job(stack_key="k", job_uuid="j1")
    assert server.seen[0].path == "/v3/stacks/k/jobs/j1"


def test_path_parameters_are_escaped_on_the_wire(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.reply(Reply(200, {"id": "x", "env": {}, "command": ""}))
    client.get_job(stack_key="my.stack", job_uuid="a/b ü")
    assert server.seen[0].path == "/v3/stacks/my%2Estack/jobs/a%2Fb%20%C3%BC"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retryable_statuses_are_retried_until_success(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps, status: int
) -> None:
    server.reply(Reply(status, {"message": "busy"}), Reply(status, {"message": "busy"}))
    server.default = Reply(200, JOB)
    assert client.get_job(stack_key="k", job_uuid="j1").command == "echo hi"
    assert len(server.seen) == 3
    assert sleeps == pytest.approx([1.5, 2.039])  # Go backoff, jitter drawn at its floor


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps, status: int
) -> None:
    server.default = Reply(status, {"message": "no"})
    with pytest.raises(StacksHTTPError) as info:
        client.get_job(stack_key="k", job_uuid="j1")
    assert info.value.status == status
    assert info.value.retryable is False
    assert len(server.seen) == 1
    assert sleeps == []


def test_gives_up_after_max_attempts_with_the_last_error(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.default = Reply(500, {"message": "Persistent error"})
    with pytest.raises(StacksServerError, match="500 Persistent error"):
        client.get_job(stack_key="k", job_uuid="j1")
    assert len(server.seen) == 5
    assert len(sleeps) == 4


def test_retry_after_replaces_every_wait_exactly(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps
) -> None:
    # Go retry_test "respects the Retry-After header": four 8 s sleeps, no jitter.
    server.default = Reply(429, {"message": "Rate limit exceeded"}, {"Retry-After": "8"})
    with pytest.raises(StacksRateLimitError) as info:
        client.get_job(stack_key="k", job_uuid="j1")
    assert sleeps == [8.0, 8.0, 8.0, 8.0]
    assert info.value.retry_after == 8.0


def test_decimal_retry_after(client: StacksClient, server: ScriptedServer, sleeps: Sleeps) -> None:
    server.reply(Reply(503, {}, {"Retry-After": "0.25"}))
    server.default = Reply(200, JOB)
    client.get_job(stack_key="k", job_uuid="j1")
    assert sleeps == [0.25]


def test_http_date_retry_after_falls_back_to_backoff_with_a_warning(
    client: StacksClient,
    server: ScriptedServer,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.reply(Reply(503, {}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    server.default = Reply(200, JOB)
    with caplog.at_level(logging.WARNING, logger="fargate_stack.stacksapi"):
        client.get_job(stack_key="k", job_uuid="j1")
    assert sleeps == [1.5]
    assert "Retry-After" in caplog.text


def test_retry_after_on_a_final_status_does_not_cause_a_retry(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.default = Reply(422, {"message": "bad"}, {"Retry-After": "1"})
    with pytest.raises(StacksValidationError):
        client.get_job(stack_key="k", job_uuid="j1")
    assert (len(server.seen), sleeps) == (1, [])


def test_retry_after_beyond_max_delay_gives_up_at_once(
    server: ScriptedServer, sleeps: Sleeps
) -> None:
    client = StacksClient(TOKEN, base_url=server.base_url, retry=fast_policy(sleeps, max_delay=5.0))
    server.default = Reply(429, {"message": "slow down"}, {"Retry-After": "60"})
    with pytest.raises(StacksRateLimitError) as info:
        client.get_job(stack_key="k", job_uuid="j1")
    assert (len(server.seen), sleeps) == (1, [])
    assert info.value.retry_after == 60.0


def test_per_call_retry_false_makes_one_attempt(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.default = Reply(503, {"message": "down"})
    with pytest.raises(StacksServerError):
        client.get_job(stack_key="k", job_uuid="j1", retry=False)
    assert (len(server.seen), sleeps) == (1, [])


def test_per_call_retry_policy_overrides_the_clients(
    client: StacksClient, server: ScriptedServer
) -> None:
    own = Sleeps()
    server.default = Reply(500, {"message": "down"})
    with pytest.raises(StacksServerError):
        client.get_job(stack_key="k", job_uuid="j1", retry=RetryPolicy(max_attempts=2, sleep=own))
    assert len(server.seen) == 2
    assert len(own) == 1


def test_a_dropped_connection_is_retried(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.reply(Reply(drop=True))
    server.default = Reply(200, JOB)
    assert client.get_job(stack_key="k", job_uuid="j1").id == "j1"
    assert len(sleeps) == 1


def test_connection_errors_end_as_stacks_connection_error(
    server: ScriptedServer, sleeps: Sleeps
) -> None:
    client = StacksClient(TOKEN, base_url=server.base_url, retry=fast_policy(sleeps))
    server.default = Reply(drop=True)
    with pytest.raises(StacksConnectionError) as info:
        client.get_job(stack_key="k", job_uuid="j1")
    assert info.value.retryable is True
    assert info.value.status is None
    assert len(server.seen) == 5


def test_timeout_is_applied_to_each_attempt(server: ScriptedServer, sleeps: Sleeps) -> None:
    client = StacksClient(
        TOKEN, base_url=server.base_url, timeout=0.2, retry=fast_policy(sleeps, max_attempts=2)
    )
    server.reply(Reply(200, JOB, delay=1.0))
    server.default = Reply(200, JOB)
    assert client.get_job(stack_key="k", job_uuid="j1").id == "j1"  # 2nd attempt answers
    assert len(sleeps) == 1


def test_malformed_json_in_a_2xx_is_retried_like_go(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.reply(Reply(200, '{"id": "j1", "env'))
    server.default = Reply(200, JOB)
    assert client.get_job(stack_key="k", job_uuid="j1").env == {"A": "1"}
    assert len(sleeps) == 1


def test_malformed_json_every_time_ends_as_a_response_error(
    client: StacksClient, server: ScriptedServer
) -> None:
    server.default = Reply(200, "<html>proxy</html>")
    with pytest.raises(StacksResponseError, match="not valid JSON") as info:
        client.get_job(stack_key="k", job_uuid="j1")
    assert info.value.retryable is True
    assert info.value.body == "<html>proxy</html>"
    assert len(server.seen) == 5


def test_wrong_shape_is_not_retried_and_names_field_method_and_path(
    client: StacksClient, server: ScriptedServer, sleeps: Sleeps
) -> None:
    server.default = Reply(200, {"env": {}, "command": "x"})
    with pytest.raises(StacksResponseError) as info:
        client.get_job(stack_key="k", job_uuid="j1")
    error = info.value
    assert error.field == "id"
    assert "GET http://127.0.0.1" in str(error)
    assert "/v3/stacks/k/jobs/j1: 200 response does not match GetJobResponse" in str(error)
    assert "field 'id': Field required" in str(error)
    assert error.path == "stacks/k/jobs/j1"
    assert (error.retryable, len(server.seen), sleeps) == (False, 1, [])


def test_body_is_ignored_where_go_ignores_it(client: StacksClient, server: ScriptedServer) -> None:
    server.reply(Reply(200, "not json at all"))
    client.deregister_stack(stack_key="k")  # no model: nothing to decode, nothing to retry
    assert len(server.seen) == 1


def test_rate_limit_headers_are_exposed_on_success_and_on_errors(
    client: StacksClient, server: ScriptedServer
) -> None:
    limits = {
        "RateLimit-Scope": "show-job",
        "RateLimit-Limit": "1000",
        "RateLimit-Remaining": "998",
        "RateLimit-Reset": "1",
    }
    server.reply(Reply(200, JOB, limits), Reply(404, {"message": "gone"}, limits))
    client.get_job(stack_key="k", job_uuid="j1")
    assert client.last_rate_limit == RateLimit("show-job", 1000, 998, 1.0)
    assert client.last_response is not None
    assert client.last_response.status == 200
    with pytest.raises(StacksNotFoundError) as info:
        client.get_job(stack_key="k", job_uuid="j1")
    assert info.value.rate_limit == RateLimit("show-job", 1000, 998, 1.0)
    assert client.last_response.status == 404


def test_retry_after_on_a_success_is_exposed(client: StacksClient, server: ScriptedServer) -> None:
    server.reply(Reply(200, JOB, {"Retry-After": "3"}))
    client.get_job(stack_key="k", job_uuid="j1")
    assert client.last_response is not None
    assert client.last_response.retry_after == 3.0
    assert client.last_rate_limit is None


def test_a_given_session_is_used_and_left_open(server: ScriptedServer) -> None:
    session = requests.Session()
    session.headers["X-From-Caller"] = "yes"
    with StacksClient(TOKEN, base_url=server.base_url, session=session) as client:
        server.reply(Reply(200, JOB))
        client.get_job(stack_key="k", job_uuid="j1")
    assert server.seen[0].headers["X-From-Caller"] == "yes"
    assert session.adapters  # close() would have emptied them
    session.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "ftp://example.com/v3/"}, "http"),
        ({"base_url": "https://x/v3/?a=1"}, "query"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StacksClient(TOKEN, **kwargs)  # type: ignore[arg-type]


def test_retry_argument_type_is_checked(client: StacksClient) -> None:
    with pytest.raises(TypeError, match="retry must be"):
        client.get_job(stack_key="k", job_uuid="j1", retry=3)  # type: ignore[arg-type]
