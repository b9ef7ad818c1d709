"""This client's version and the User-Agent it sends.

The Go client identifies itself as ``stackspi/<version>`` (sic, in ``client.go``). We send
our own name instead, so Buildkite's logs can tell this port apart from the Go original
when a behaviour differs (see docs/stacksapi.md, "Differences from the Go client").
"""

from __future__ import annotations

VERSION = "0.1.0"
# The Go package whose behaviour this one ports, at the version read
# (docs/reference/stacks-api.md §0).
PORTED_FROM = "buildkite/stacksapi v1.0.2"
USER_AGENT = f"buildkite-fargate-stack-stacksapi/{VERSION}"


def user_agent(prefix: str | None = None) -> str:
    """``prefix`` goes first with one space, as Go's ``PrependToUserAgent`` does, so a
    product names itself and this library stays visible after it."""
    if not prefix:
        return USER_AGENT
    if any(ch in prefix for ch in "\r\n\0"):
        # A line break would let the prefix inject headers into every request.
        raise ValueError("user_agent_prefix must not contain line breaks or NUL")
    return f"{prefix} {USER_AGENT}"
