"""What the server said about its limits, kept so callers can pace themselves.

Every Stacks API response carries ``RateLimit-Scope``, ``-Limit``, ``-Remaining`` and
``-Reset`` (docs/reference/stacks-api.md §2.1). The Go client hands callers the raw
headers; here they are parsed once, into values a poll loop can compare and sleep on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class RateLimit:
    """One endpoint's window for this stack; ``reset`` is seconds until it empties."""

    scope: str | None
    limit: int | None
    remaining: int | None
    reset: float | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """None when the response carried none of the headers (e.g. a proxy's error page);
        an unparsable value becomes None rather than hiding the rest."""
        lookup = CaseInsensitiveDict(headers)
        names = ("RateLimit-Scope", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
        if not any(name in lookup for name in names):
            return None
        return cls(
            scope=lookup.get("RateLimit-Scope") or None,
            limit=_int(lookup.get("RateLimit-Limit")),
            remaining=_int(lookup.get("RateLimit-Remaining")),
            reset=_float(lookup.get("RateLimit-Reset")),
        )


@dataclass(frozen=True)
class ResponseInfo:
    """The transport facts of the last response, for callers that need more than the model
    (the Go client returns ``http.Header`` from every method for the same reason)."""

    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    rate_limit: RateLimit | None
    # Parsed ``Retry-After`` in seconds, also on a success: a server may pace a healthy
    # poller this way (agent-stack-k8s stops paging when a page carries it).
    retry_after: float | None


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value.strip()) if value is not None else None
    except ValueError:
        return None
