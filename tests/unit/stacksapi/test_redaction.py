"""The token never shows: not in reprs, exceptions, or logs, even with payload logging."""

from __future__ import annotations

import logging
import pickle

import pytest
from pydantic import SecretStr

from fargate_stack.stacksapi import (
    StacksAPIError,
    StacksAuthError,
    StacksClient,
    StacksConnectionError,
    StacksResponseError,
)
from tests.support.scripted_server import TOKEN, Reply, ScriptedServer, Sleeps, fast_policy


def test_repr_and_str_of_the_client_hide_the_token(server: ScriptedServer) -> None:
    client = StacksClient(TOKEN, base_url=server.base_url)
    for text in (repr(client), str(client)):
        assert TOKEN not in text
    assert "base_url=" in repr(client)


def test_a_secretstr_token_is_accepted(server: ScriptedServer) -> None:
    client = StacksClient(SecretStr(TOKEN), base_url=server.base_url)
    server.reply(Reply(200, {"id": "j"}))
    client.get_job(stack_key="k", job_uuid="j")
    assert server.seen[0].headers["Authorization"] == f"Token {TOKEN}"


@pytest.mark.parametrize("token", ["", "   ", " padded", "line\nbreak"])
def test_bad_tokens_are_refused_without_being_echoed(token: str) -> None:
    with pytest.raises(ValueError, match="token") as info:
        StacksClient(token)
    if token.strip():
        assert token.strip() not in str(info.value)


def test_payload_logs_show_bodies_but_never_the_token(
    server: ScriptedServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    client = StacksClient(
        TOKEN, base_url=server.base_url, log_payloads=True, retry=fast_policy(sleeps)
    )
    server.reply(
        Reply(503, {"message": "busy"}),
        Reply(
            201,
            {
                "job_acquisition_tokens": [
                    {
                        "job_uuid": "j1",
                        "job_acquisition_token": "bkjat_secret_value",
                        "expires_at": "2026-08-20T00:15:00Z",
                    }
                ],
                "not_issued": [],
            },
        ),
    )
    with caplog.at_level(logging.DEBUG, logger="fargate_stack.stacksapi"):
        client.issue_job_acquisition_tokens(stack_key="k", job_uuids=["j1"])
    text = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    assert '{"job_uuids":["j1"]}' in text  # the request body is logged
    assert "Authorization" in text  # the header is named...
    assert "[REDACTED]" in text  # ...but its value is not
    assert TOKEN not in text
    assert "bkjat_secret_value" not in text
    assert "retrying" in caplog.text


def test_errors_never_carry_the_token(server: ScriptedServer, sleeps: Sleeps) -> None:
    client = StacksClient(TOKEN, base_url=server.base_url, retry=fast_policy(sleeps))
    # A (hypothetical) server that echoes the token back in its error body.
    server.reply(Reply(401, {"message": f"Invalid token {TOKEN}"}))
    with pytest.raises(StacksAuthError) as info:
        client.get_job(stack_key="k", job_uuid="j")
    _assert_clean(info.value)
    assert "[REDACTED]" in str(info.value)


def test_connection_errors_never_carry_the_token(server: ScriptedServer, sleeps: Sleeps) -> None:
    client = StacksClient(TOKEN, base_url=server.base_url, retry=fast_policy(sleeps))
    server.default = Reply(drop=True)
    with pytest.raises(StacksConnectionError) as info:
        client.get_job(stack_key="k", job_uuid="j")
    _assert_clean(info.value)


def test_shape_errors_never_carry_secret_values(server: ScriptedServer, sleeps: Sleeps) -> None:
    client = StacksClient(TOKEN, base_url=server.base_url, retry=fast_policy(sleeps))
    server.reply(
        Reply(
            201,
            {"job_acquisition_tokens": [{"job_uuid": "j", "job_acquisition_token": "bkjat_leak"}]},
        )
    )
    with pytest.raises(StacksResponseError) as info:
        client.issue_job_acquisition_tokens(stack_key="k", job_uuids=["j"])
    assert info.value.field == "job_acquisition_tokens.0.expires_at"
    _assert_clean(info.value, also="bkjat_leak")


def _assert_clean(error: StacksAPIError, also: str | None = None) -> None:
    # Nothing chained: a requests exception would hold the prepared request (with the
    # Authorization header), a pydantic one the raw input values.
    assert error.__cause__ is None
    assert error.__context__ is None
    dumped = " ".join(
        [
            str(error),
            repr(error),
            repr(vars(error)),
            repr(error.args),
            str(pickle.dumps(error.args)),
        ]
    )
    assert TOKEN not in dumped
    if also:
        assert also not in dumped
