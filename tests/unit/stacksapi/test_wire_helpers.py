"""Path escaping, URL joining, User-Agent and input checks: pure functions, no sockets."""

from __future__ import annotations

import pytest

from fargate_stack.stacksapi import USER_AGENT, VERSION, StacksClient
from fargate_stack.stacksapi.version import user_agent
from fargate_stack.stacksapi.wire import (
    build_path,
    escape_segment,
    join_url,
    require_range,
    require_uuids,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain-key_1", "plain-key_1"),
        ("a.b", "a%2Eb"),  # Rails would read ".b" as a format
        ("..", "%2E%2E"),  # never a path traversal
        ("a/b", "a%2Fb"),  # one segment stays one segment
        ("a b", "a%20b"),
        ("100%", "100%25"),
        ("q?x=1#f", "q%3Fx%3D1%23f"),
        ("ünï", "%C3%BCn%C3%AF"),  # UTF-8, then percent-encoded
        ("🚀", "%F0%9F%9A%80"),
        ("tilde~", "tilde~"),
    ],
)
def test_escape_segment(raw: str, escaped: str) -> None:
    assert escape_segment(raw) == escaped


def test_build_path_escapes_each_parameter() -> None:
    assert (
        build_path("stacks/{key}/jobs/{job}/finish", key="my.stack", job="a/b")
        == "stacks/my%2Estack/jobs/a%2Fb/finish"
    )


@pytest.mark.parametrize(
    "base",
    ["https://agent.buildkite.com/v3/", "https://agent.buildkite.com/v3"],
)
def test_join_keeps_the_v3_prefix_with_or_without_a_trailing_slash(base: str) -> None:
    assert join_url(base, "stacks/register") == "https://agent.buildkite.com/v3/stacks/register"
    assert join_url(base, "/stacks/register") == "https://agent.buildkite.com/v3/stacks/register"


def test_join_on_a_base_without_a_path() -> None:
    assert join_url("http://127.0.0.1:8080", "stacks/x") == "http://127.0.0.1:8080/stacks/x"


def test_user_agent_names_this_project_and_version() -> None:
    assert f"buildkite-fargate-stack-stacksapi/{VERSION}" == USER_AGENT
    assert user_agent() == USER_AGENT
    assert user_agent("buildkite-fargate-stack/1.2.3") == (
        f"buildkite-fargate-stack/1.2.3 buildkite-fargate-stack-stacksapi/{VERSION}"
    )


def test_user_agent_prefix_cannot_inject_headers() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        user_agent("x\r\nX-Evil: 1")


def test_client_exposes_its_user_agent() -> None:
    client = StacksClient("t0ken-value", user_agent_prefix="my-stack/9")
    assert client.user_agent == f"my-stack/9 {USER_AGENT}"


def test_require_uuids_refuses_a_bare_string_and_empty_items() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        require_uuids("job_uuids", "abc")
    with pytest.raises(ValueError, match=r"job_uuids\[1\]"):
        require_uuids("job_uuids", ["a", ""])
    assert require_uuids("job_uuids", ("a", "b")) == ["a", "b"]


@pytest.mark.parametrize("value", [0, 1001, -1, True, 1.5])
def test_require_range_refuses_out_of_range_and_non_integers(value: object) -> None:
    with pytest.raises(ValueError, match="page_size must be an integer from 1 to 1000"):
        require_range("page_size", value, 1, 1000)  # type: ignore[arg-type]


def test_require_range_accepts_bounds_and_none() -> None:
    assert require_range("page_size", 1, 1, 1000) == 1
    assert require_range("page_size", 1000, 1, 1000) == 1000
    assert require_range("page_size", None, 1, 1000) is None
