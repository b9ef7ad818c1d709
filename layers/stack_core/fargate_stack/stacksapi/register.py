"""Register and de-register a stack (Go ``register.go``).

Reference: docs/reference/stacks-api.md §3.1, §3.2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from pydantic import Field

from fargate_stack.stacksapi.transport import BaseClient, RetryArg
from fargate_stack.stacksapi.types import APIModel, StackType, StrDict
from fargate_stack.stacksapi.wire import build_path, require_text

# Documented constraints of a stack key and its metadata (Buildkite docs "Register a
# stack", docs/reference/stacks-api.md §3.1): checked here so a typo fails before the network does.
STACK_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,80}")
METADATA_MAX_KEYS = 100
METADATA_KEY_MAX_CHARS = 64
METADATA_VALUE_MAX_CHARS = 256


class RegisterStackResponse(APIModel):
    """``id``, ``key`` and ``cluster_queue_key`` are required: the rest of the stack lists
    jobs with the ``cluster_queue_key`` register returns (as agent-stack-k8s does)."""

    id: str
    key: str
    cluster_queue_key: str
    organization_uuid: str | None = None
    type: str | None = None
    metadata: StrDict = Field(default_factory=dict)
    last_connected_on: datetime | None = None
    state: str | None = None


class RegisterMixin(BaseClient):
    def register_stack(
        self,
        *,
        key: str,
        queue_key: str,
        type: StackType | str = StackType.CUSTOM,
        metadata: Mapping[str, str] | None = None,
        retry: RetryArg = None,
    ) -> RegisterStackResponse:
        """Create or update the stack; safe to call as often as needed (201 new, 200 again).

        ``metadata`` is always sent, ``{}`` when None, because the server requires it.
        """
        if not isinstance(key, str) or not STACK_KEY_PATTERN.fullmatch(key):
            raise ValueError(
                f"key must be 1-80 characters of letters, digits, '_' or '-', got {key!r}"
            )
        require_text("queue_key", queue_key)
        require_text("type", str(type))
        meta = _check_metadata(metadata or {})
        body = {"key": key, "type": str(type), "queue_key": queue_key, "metadata": meta}
        return self._request(
            "POST", "stacks/register", body=body, model=RegisterStackResponse, retry=retry
        )

    def deregister_stack(self, *, stack_key: str, retry: RetryArg = None) -> None:
        """Tell Buildkite the stack is leaving cleanly, freeing its slot in the org's quota.
        Success is 204; any 2xx body is ignored."""
        path = build_path("stacks/{key}/deregister", key=require_text("stack_key", stack_key))
        self._request("POST", path, model=None, retry=retry)


def _check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > METADATA_MAX_KEYS:
        raise ValueError(f"metadata may have at most {METADATA_MAX_KEYS} keys")
    for name, value in metadata.items():
        if not isinstance(name, str) or not name or len(name) > METADATA_KEY_MAX_CHARS:
            raise ValueError(
                f"metadata keys must be 1-{METADATA_KEY_MAX_CHARS} characters, got {name!r}"
            )
        if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX_CHARS:
            raise ValueError(
                f"metadata[{name!r}] must be a string of at most "
                f"{METADATA_VALUE_MAX_CHARS} characters"
            )
    return dict(metadata)
