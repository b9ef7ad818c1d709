"""Requests, responses and routes, independent of the HTTP server that carries them.

Keeping this apart from `http.server` lets the three APIs be plain functions from a
`Request` to a `Response`, and keeps the body-shape rules (what is a 400) in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from local.emulator.errors import BadRequestError, MethodNotAllowedError, NotFoundError

_UNPARSED = object()


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    job_uuids: list[str] = field(default_factory=list)
    # An injected fault that shapes the answer rather than replacing it (the server sets it;
    # local.emulator.faults.TOKEN_KINDS).
    shaping: Any = None
    _json: object = field(default=_UNPARSED, repr=False)

    @property
    def segments(self) -> list[str]:
        """Percent-decoded path segments: clients send `.` as `%2E`
        (docs/reference/stacks-api.md §1)."""
        return [unquote(part) for part in self.path.strip("/").split("/") if part]

    def arg(self, name: str) -> str | None:
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values else None

    @property
    def token(self) -> str | None:
        """The token of `Authorization: Token <token>`; the word `Token` is required."""
        scheme, _, token = (self.header("authorization") or "").partition(" ")
        return (token.strip() or None) if scheme == "Token" else None

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return None

    def json(self) -> object:
        """The body as JSON (an empty body is `None`); malformed JSON is a 400."""
        if self._json is _UNPARSED:
            if not self.body.strip():
                self._json = None
            else:
                try:
                    self._json = json.loads(self.body)
                except (UnicodeDecodeError, ValueError) as exc:
                    raise BadRequestError("Problems parsing JSON") from exc
        return self._json

    def json_object(self, *, required: bool = True) -> dict[str, Any]:
        body = self.json()
        if body is None and not required:
            return {}
        if not isinstance(body, dict):
            raise BadRequestError("The request body must be a JSON object")
        return body


@dataclass
class Response:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.status == 204 or (self.body is None and self.status >= 200):
            return b"" if self.status == 204 else b"{}"
        return json.dumps(self.body, separators=(",", ":")).encode()


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, {"message": message}, dict(headers or {}))


def uuid_list(body: Mapping[str, Any], name: str, limit: int) -> list[str]:
    """A batch of job UUIDs: not an array, or more than `limit`, is a 400
    (docs/reference/stacks-api.md §1)."""
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequestError(f"{name} must be an array of strings")
    if len(value) > limit:
        raise BadRequestError(f"{name} may contain at most {limit} entries")
    return value


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    endpoint: str
    handler: Handler

    def bind(self, segments: Sequence[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(self.pattern, segments, strict=True):
            if part.startswith(":"):
                params[part[1:]] = segment
            elif part != segment:
                return None
        return params


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)

    def match(self, method: str, segments: Sequence[str]) -> tuple[Route, dict[str, str]]:
        """Literal segments win over parameters (`jobs/get-states` is not a job id)."""
        allowed: list[str] = []
        best: tuple[int, Route, dict[str, str]] | None = None
        for route in self.routes:
            params = route.bind(segments)
            if params is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            if best is None or len(params) < best[0]:
                best = (len(params), route, params)
        if best is not None:
            return best[1], best[2]
        if allowed:
            raise MethodNotAllowedError(
                f"{method} is not allowed here", headers={"Allow": ", ".join(sorted(set(allowed)))}
            )
        raise NotFoundError("Not Found")
