"""One poll loop at a time, without reserved concurrency.

The poller used to rely on ``ReservedConcurrentExecutions: 1``, which a new account's
concurrency quota refuses at deploy (docs/reference/aws.md §H.2). Instead each invocation
claims a lease before it polls: the one that holds it polls, any other waits, polling
nothing, until the lease is released or expires.
"""

from __future__ import annotations

from dataclasses import dataclass

from fargate_stack.errors import TransientError
from fargate_stack.observability import Metric, count, logger
from fargate_stack.ports import Clock, Lease


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    # Under a minute, so a holder that died is replaced by the next one-minute tick.
    seconds: float = 45
    # Renewed this often, not on every poll (a write per poll would be millions a month);
    # a poll starts only while at least seconds - renew_every (25 s) of the lease remain.
    renew_every: float = 20

    def __post_init__(self) -> None:
        if not 0 < self.renew_every < self.seconds:
            msg = f"renew_every must be within (0, {self.seconds}): {self.renew_every}"
            raise ValueError(msg)


class PollerLease:
    """Whether this invocation may poll now."""

    def __init__(self, lease: Lease, clock: Clock, holder: str, timing: LeaseTiming) -> None:
        self._lease = lease
        self._clock = clock
        self._holder = holder
        self._timing = timing
        self._claimed_at: float | None = None
        self._told_held = False

    @property
    def held(self) -> bool:
        return self._claimed_at is not None

    def may_poll(self) -> bool:
        now = self._clock.now().timestamp()
        if self._claimed_at is not None and now - self._claimed_at < self._timing.renew_every:
            return True
        try:
            won = self._lease.claim(self._holder, now=now, seconds=self._timing.seconds)
        except TransientError as exc:
            # Unconfirmed is not held: polling now could overlap another invocation.
            logger.warning(
                "could not claim the poller lease; not polling", extra={"error": str(exc)}
            )
            count(Metric.POLLER_LEASE_ERRORS)
            self._claimed_at = None
            return False
        self._claimed_at = now if won else None
        if not won and not self._told_held:
            self._told_held = True
            logger.info("another poller invocation holds the lease; waiting for it")
            count(Metric.POLLER_LEASE_HELD)
        return won

    def release(self) -> None:
        if self._claimed_at is not None:
            self._lease.release(self._holder)
            self._claimed_at = None
