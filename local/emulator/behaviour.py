"""Every choice the emulator makes where the public sources are silent or disagree.

docs/reference/stacks-api.md marks these UNCONFIRMED. They live in
one frozen dataclass so a test, or a future discovery about the real server, changes one
value here instead of a branch buried in a handler. docs/emulator.md lists each with its
reference section; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Endpoint names double as rate-limit scope names (docs/reference/stacks-api.md §2.1),
# except register and deregister, which share the documented `default` scope.
STACKS_ENDPOINTS: tuple[str, ...] = (
    "register",
    "deregister",
    "list-scheduled-jobs",
    "batch-reserve",
    "show-job",
    "batch-load-job-states",
    "finish-job",
    "stack-notification",
    "job-acquisition-tokens",
)
AGENT_ENDPOINTS: tuple[str, ...] = (
    "agent-register",
    "agent-token",
    "agent-connect",
    "agent-acquire",
    "agent-job-state",
    "agent-start",
    "agent-chunks",
    "agent-finish",
    "agent-disconnect",
    "agent-heartbeat",
    "agent-ping",
)
ENDPOINTS: tuple[str, ...] = STACKS_ENDPOINTS + AGENT_ENDPOINTS


def scope_of(endpoint: str) -> str:
    """The `RateLimit-Scope` an endpoint counts against (docs/reference/stacks-api.md §2.1)."""
    return "default" if endpoint in ("register", "deregister") else endpoint


def _default_rate_limits() -> dict[str, int]:
    # Documented limits (requests per second, docs/reference/stacks-api.md §2.1).
    # `job-acquisition-tokens` is not documented: 100 is a choice. The Agent API has no
    # documented limits, so its endpoints are unlimited unless a test sets one through the
    # control API.
    return {
        "default": 10,
        "list-scheduled-jobs": 10,
        "batch-reserve": 10,
        "show-job": 1000,
        "batch-load-job-states": 20,
        "finish-job": 100,
        "stack-notification": 200,
        "job-acquisition-tokens": 100,
    }


@dataclass(frozen=True)
class Behaviour:
    """The emulator's answers to the open questions of docs/reference/stacks-api.md §8, and
    its limits (docs/reference/stacks-api.md §2, §3)."""

    # docs/reference/stacks-api.md §3.1 / §8.2: the cluster's default queue is called
    # `default`; both keywords alias it, and register echoes the resolved key as
    # `cluster_queue_key`.
    default_queue_key: str = "default"
    default_queue_aliases: tuple[str, ...] = ("_default", "__default__")
    # docs/reference/stacks-api.md §3.3: listing a queue nobody mentioned (no job, stack or
    # pause for it) is a 404.
    unknown_queue_is_404: bool = True
    # docs/reference/stacks-api.md §3.3 / §8.8: server default page size is unknown; max
    # 1000 is documented.
    default_page_size: int = 100
    max_page_size: int = 1000
    # docs/reference/stacks-api.md §2.2: job_uuids and notifications per request.
    max_batch_size: int = 1000
    # docs/reference/stacks-api.md §3.4 / §8.1: 900 s default, 1..3600 accepted, anything
    # else is a 422 (not clamped).
    default_reservation_seconds: int = 900
    min_reservation_seconds: int = 1
    max_reservation_seconds: int = 3600
    # docs/reference/stacks-api.md §3.3: the docs only say a stack must not start jobs of a
    # paused queue; the server is assumed not to enforce it at reserve time.
    reserve_when_paused: bool = True
    # docs/reference/stacks-api.md §3.5: GetJob answers for a known job in any state.
    show_job_any_state: bool = True
    # docs/reference/stacks-api.md §3.7 / §8.4: 200 `{}`; only from scheduled/reserved, at
    # most once; a job reserved by another stack cannot be finished by this one; detail over
    # 4096 bytes is a 422.
    finish_status: int = 200
    finishable_states: tuple[str, ...] = ("scheduled", "reserved")
    finish_requires_own_reservation: bool = True
    finish_detail_max_bytes: int = 4096
    # docs/reference/stacks-api.md §3.8: documented notification limits; the 1 s future
    # tolerance absorbs clock jitter between a client's timestamp and the server's.
    notification_detail_max_chars: int = 256
    notifications_per_job: int = 100
    notification_future_tolerance_seconds: float = 1.0
    notification_after_finish_seconds: float = 300.0
    # docs/reference/stacks-api.md §3.9: JATs only for jobs reserved by the calling stack;
    # lifetime 1..3600, default 900.
    default_jat_lifetime_seconds: int = 900
    min_jat_lifetime_seconds: int = 1
    max_jat_lifetime_seconds: int = 3600
    # docs/reference/stacks-api.md §7: an agent may acquire a job reserved by any stack;
    # acquire drops the reservation. A repeated acquire by the agent that already holds the
    # job answers 200 again, so a lost response does not turn into a 422 (and exit 27) on
    # the agent's retry.
    acquire_reserved_by_any_stack: bool = True
    acquire_idempotent_for_holder: bool = True
    locked_retry_after_seconds: int = 1
    # docs/reference/stacks-api.md §2.1 / §8.5: 429s carry `Retry-After: <reset>` as well as
    # the RateLimit-* headers.
    retry_after_on_429: bool = True
    rate_limits: dict[str, int] = field(default_factory=_default_rate_limits)
    # docs/reference/stacks-api.md §2.2: the org's active-stack quota is unknown; None =
    # unlimited (403 when exceeded).
    max_stacks: int | None = None
    # docs/reference/stacks-api.md §3.2: deregister forgets the stack; later calls for its
    # key are 404 until it registers again. Its reservations live on until they expire.
    deregister_forgets_stack: bool = True


# docs/reference/stacks-api.md §7: the agent's example message (buildkite/agent#1880).
NOT_ELIGIBLE = "Job {id} is no longer eligible to be assigned an agent"
# docs/reference/stacks-api.md §3.9: a JAT whose job cannot be acquired is refused at
# registration with this 422 (the agent matches status and text, buildkite/agent#4355).
NOT_ELIGIBLE_AT_REGISTRATION = "Job is not eligible for job acquisition registration"
# docs/reference/stacks-api.md §1: 401 means a token missing, invalid or expired (the text
# is a choice).
JAT_EXPIRED = "The job acquisition token has expired"
RATE_LIMITED = (
    "You have exceeded your API rate limit. Please wait {reset} seconds before making more "
    "requests."
)
