"""Wire helpers: path escaping, URL joining, argument checks, batching and JSON bodies.

Pure functions of their arguments (no session, no logging), so each endpoint module and
the transport share one spelling of the wire, and tests check them without a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

# Batch limits: job_uuids for batch-reserve and get-states, and notifications, at most 1000
# per request (Buildkite docs "Stacks API", docs/reference/stacks-api.md §2.2); JATs assumed
# the same (only a third-party client's constant says so, docs/reference/stacks-api.md §2.2
# UNCONFIRMED).
BATCH_MAX = 1000
REDACTED = "[REDACTED]"

_T = TypeVar("_T")


def escape_segment(value: str) -> str:
    """Percent-encode one path segment, dots included.

    Go's ``railsPathEscape``: ``url.PathEscape`` then ``.`` -> ``%2E`` because "Rails
    doesn't accept dots in some path segments". We escape every reserved character
    (``safe=""``), a superset of Go's set that decodes to the same segment.
    """
    return quote(value, safe="").replace(".", "%2E")


def build_path(template: str, **params: str) -> str:
    """``build_path("stacks/{key}/jobs/{job}", key=k, job=j)`` with each value escaped."""
    return template.format(**{name: escape_segment(value) for name, value in params.items()})


def join_url(base_url: str, path: str) -> str:
    """Append ``path`` to the base URL's path, keeping ``/v3/`` whether or not the base ends
    with a slash (Go trims the leading slash before ``JoinPath`` for the same reason)."""
    parts = urlsplit(base_url)
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, joined, "", ""))


def require_text(name: str, value: str) -> str:
    """An empty key or uuid would address a different endpoint (``stacks//jobs``), so it
    is a caller bug to report before any request."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def require_uuids(name: str, values: Sequence[str]) -> list[str]:
    """A bare ``str`` is a Sequence of characters; accepting it would send one-letter
    uuids, so it is refused along with empty or non-string items."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    items = list(values)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise ValueError(f"{name}[{index}] must be a non-empty string, got {item!r}")
    return items


def require_range(name: str, value: int | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def chunks(items: Sequence[_T], size: int = BATCH_MAX) -> Iterator[tuple[int, Sequence[_T]]]:
    """(offset, chunk) pairs, so merged answers can refer back to the caller's indexes."""
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def encode_body(body: Mapping[str, Any]) -> bytes:
    # Compact like Go's json.Marshal, UTF-8 on the wire; a lone surrogate (which UTF-8
    # cannot carry) becomes "?" instead of an exception.
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", errors="replace")


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: (REDACTED if name.lower() == "authorization" else value)
        for name, value in headers.items()
    }
