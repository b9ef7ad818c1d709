"""Finish a job the stack will not run (Go ``finish.go``; docs/reference/stacks-api.md §3.7).

Buildkite's docs and the Go client call it "finish"; this stack (and agent-stack-k8s)
uses it to fail jobs back, hence ``fail_job``: the same call with ``exit_status=-1``.
"""

from __future__ import annotations

from typing import Any

from fargate_stack.stacksapi.transport import BaseClient, RetryArg
from fargate_stack.stacksapi.wire import build_path, require_text

# `detail` may be at most 4 KB (Buildkite docs "Finish a job"); the suffix is the Go
# client's, so a cropped message reads the same whichever client cropped it.
FINISH_DETAIL_MAX_BYTES = 4096
FINISH_CROP_SUFFIX = "… (Message was cropped because it exceeded the max size)"


def crop_detail(
    detail: str, max_bytes: int = FINISH_DETAIL_MAX_BYTES, suffix: str = FINISH_CROP_SUFFIX
) -> str:
    """``detail`` unchanged if its UTF-8 form fits in ``max_bytes``; otherwise cut on a
    character boundary and suffixed so the total is at most ``max_bytes``.

    Cutting inside a multi-byte character would put a replacement character on the wire
    and push the payload past the server's cap (the newest Go client walks back to a rune
    start for the same reason). Unlike Go, a detail that fits is never cropped.
    """
    # A lone surrogate cannot be UTF-8; measure what will actually be sent.
    raw = detail.encode("utf-8", errors="replace")
    if len(raw) <= max_bytes:
        return detail
    tail = suffix.encode("utf-8")
    if len(tail) > max_bytes:
        raise ValueError("the crop suffix is longer than the limit")
    cut = max_bytes - len(tail)
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:  # a UTF-8 continuation byte
        cut -= 1
    return raw[:cut].decode("utf-8") + suffix


class FinishMixin(BaseClient):
    def finish_job(
        self,
        *,
        stack_key: str,
        job_uuid: str,
        detail: str,
        exit_status: int = -1,
        signal_reason: str | None = None,
        retry: RetryArg = None,
    ) -> None:
        """Finish the job with ``detail`` shown on the build page; at most once per job.

        ``exit_status`` is always sent. The Go client tags it ``omitempty``, so it can
        never send 0 (the server then defaults to -1); here 0 really means success.
        ``signal_reason`` (e.g. ``stack_error``) is sent only when given: only the newest
        Go client knows it and the docs do not (docs/reference/stacks-api.md §3.7 UNCONFIRMED).
        """
        path = build_path(
            "stacks/{key}/jobs/{job}/finish",
            key=require_text("stack_key", stack_key),
            job=require_text("job_uuid", job_uuid),
        )
        if not isinstance(detail, str) or not detail:
            raise ValueError("detail is required: it is what the developer reads")
        if isinstance(exit_status, bool) or not isinstance(exit_status, int):
            raise TypeError(f"exit_status must be an integer, got {exit_status!r}")
        cropped = crop_detail(detail)
        if cropped != detail:
            self._logger.warning(
                "finish detail exceeds %d bytes; cropped",
                FINISH_DETAIL_MAX_BYTES,
                extra={"original_bytes": len(detail.encode("utf-8", errors="replace"))},
            )
        body: dict[str, Any] = {"exit_status": exit_status, "detail": cropped}
        if signal_reason is not None:
            body["signal_reason"] = require_text("signal_reason", signal_reason)
        self._request("POST", path, body=body, model=None, retry=retry)

    def fail_job(
        self,
        *,
        stack_key: str,
        job_uuid: str,
        detail: str,
        exit_status: int = -1,
        signal_reason: str | None = None,
        retry: RetryArg = None,
    ) -> None:
        """``finish_job`` under the name this stack's design uses for "could not run it"."""
        self.finish_job(
            stack_key=stack_key,
            job_uuid=job_uuid,
            detail=detail,
            exit_status=exit_status,
            signal_reason=signal_reason,
            retry=retry,
        )
