"""The task definition a step image runs in: found, or registered once, and the stale
ones cleaned up.

Registered once, for all launchers: each launcher container remembers what it has found;
the ledger table remembers for all of them, and a conditional claim there makes exactly one
launcher register a new image while the others wait for its ARN (a burst of jobs naming a
new image arrives at many launchers at once). RegisterTaskDefinition is throttled per
account and Region (docs/reference/aws.md §B.9), so it is called only by the claim's
holder, at most ``registrations_per_day`` times a day (StepImageRegistrationsPerDay), and
each registration deregisters at most ``cleanup_max`` revisions of families made from an
older version of the stack: the cleanup is bounded and runs only when something was added.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fargate_stack.domain.launch import LaunchRejection
from fargate_stack.domain.step_image import (
    REGISTRATIONS_PER_DAY,
    ImageReference,
    base_revision,
    derive_task_definition,
    derived_family,
    stale_family,
    through_cache,
)
from fargate_stack.errors import PermanentError, StackError, TransientError
from fargate_stack.observability import Metric, count, count_by, logger
from fargate_stack.ports import Clock, ImageDefinitionLedger, TaskDefinitions


class _Registration(StrEnum):
    REGISTERED = "registered"
    WAITED = "waited"  # another launcher held the claim and registered it
    BUSY = "busy"  # another launcher held the claim past our wait: retried later
    REFUSED = "refused"  # over the day's budget


@dataclass(frozen=True, slots=True)
class StepImageOptions:
    base_task_definition: str
    container_name: str
    family_prefix: str
    stack_key: str
    registrations_per_day: int
    # A claim outlives a RegisterTaskDefinition call by far; a crashed holder's claim is
    # taken over after it.
    claim_seconds: float = 30.0
    # How long a launcher waits for another one's registration before the record is
    # retried from the queue instead.
    wait_seconds: float = 5.0
    poll_seconds: float = 0.25
    # RegisterTaskDefinition and DeregisterTaskDefinition share a bucket of 20, refilled at
    # 1 a second (docs/reference/aws.md §B.9): the cleanup must not starve registrations.
    cleanup_max: int = 2
    # Upstream registry -> pull-through cache path (STEP_IMAGE_CACHES).
    caches: Mapping[str, str] = field(default_factory=dict)


class StepImageDefinitions:
    def __init__(
        self,
        *,
        definitions: TaskDefinitions,
        ledger: ImageDefinitionLedger,
        clock: Clock,
        options: StepImageOptions,
    ) -> None:
        self._definitions = definitions
        self._ledger = ledger
        self._clock = clock
        self._options = options
        self._known: dict[str, str] = {}  # family -> task definition ARN
        self._base: Mapping[str, Any] | None = None
        # Stale families come only from older stack versions, which this container's
        # version never adds to: once a pass leaves none, no later one can find any.
        self._clean = False

    def resolve(self, image: ImageReference) -> str:
        """The ARN of the task definition that runs ``image``."""
        opts = self._options
        # The reference ECS pulls names the family: enabling a cache makes new families.
        pulled = through_cache(image, opts.caches)
        family = derived_family(opts.family_prefix, opts.base_task_definition, pulled)
        known = self._known.get(family)
        if known is not None:
            return known
        arn = self._ledger.arn_of(family)
        if arn is None:
            arn = self._register_or_wait(family, image)
        self._known[family] = arn
        return arn

    def _register_or_wait(self, family: str, image: ImageReference) -> str:
        opts = self._options
        holder = uuid.uuid4().hex
        if not self._ledger.claim(family, holder, seconds=opts.claim_seconds):
            return self._wait_for(family)
        try:
            if not self._ledger.count_registration(
                self._clock.now().date().isoformat(), opts.registrations_per_day
            ):
                count_by(Metric.STEP_IMAGE_REGISTRATIONS, "result", _Registration.REFUSED)
                raise PermanentError(
                    f"image {image.text!r} would need a new task definition, and this stack "
                    f"has registered {opts.registrations_per_day} today, its "
                    f"{REGISTRATIONS_PER_DAY}. A tag per commit makes a definition per "
                    "build: pin images by digest or reuse tags, or raise the limit",
                    reason=LaunchRejection.IMAGE_REGISTRATIONS_EXHAUSTED,
                )
            arn = self._register(family, image)
        except StackError:
            # Another launcher may try at once instead of waiting for the claim to expire.
            self._ledger.release(family, holder)
            raise
        self._ledger.complete(family, holder, arn)
        count_by(Metric.STEP_IMAGE_REGISTRATIONS, "result", _Registration.REGISTERED)
        logger.info(
            "registered the task definition of a step image",
            extra={"family": family, "task_definition": arn, "image": image.text},
        )
        self._clean_up()
        return arn

    def _register(self, family: str, image: ImageReference) -> str:
        opts = self._options
        if self._base is None:
            self._base = self._definitions.describe(opts.base_task_definition)
        derived = derive_task_definition(
            self._base,
            container_name=opts.container_name,
            image=image,
            family=family,
            caches=opts.caches,
            tags=(
                ("buildkite:stack", opts.stack_key),
                ("buildkite:base-revision", str(base_revision(opts.base_task_definition))),
            ),
        )
        return self._definitions.register(derived.request)

    def _wait_for(self, family: str) -> str:
        opts = self._options
        deadline = self._clock.monotonic() + opts.wait_seconds
        while self._clock.monotonic() < deadline:
            self._clock.sleep(opts.poll_seconds)
            arn = self._ledger.arn_of(family)
            if arn is not None:
                count_by(Metric.STEP_IMAGE_REGISTRATIONS, "result", _Registration.WAITED)
                return arn
        count_by(Metric.STEP_IMAGE_REGISTRATIONS, "result", _Registration.BUSY)
        raise TransientError(
            f"the task definition {family} is being registered by another launch; retried"
        )

    def _clean_up(self) -> None:
        """Deregister up to ``cleanup_max`` revisions of stale families. Best effort: a
        revision left ACTIVE costs nothing, and the next registration tries again."""
        opts = self._options
        if self._clean:
            return
        current = base_revision(opts.base_task_definition)
        left = opts.cleanup_max
        try:
            for family in self._definitions.families(opts.family_prefix):
                if left <= 0:
                    break
                if not stale_family(opts.family_prefix, family, current):
                    continue
                for arn in self._definitions.active_revisions(family)[:left]:
                    self._definitions.deregister(arn)
                    left -= 1
                    count(Metric.STEP_IMAGE_DEREGISTERED)
            # Budget left over: every stale revision listed is gone (a full pass might
            # have left some; the next registration looks again).
            self._clean = left > 0
        except StackError as exc:
            logger.warning(
                "stale step-image task definitions not cleaned up", extra={"error": str(exc)}
            )
