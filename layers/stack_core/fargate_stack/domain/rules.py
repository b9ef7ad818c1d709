"""Agent query rule matching: which listed jobs this stack may run.

The Stacks API lists every scheduled job of a queue regardless of its agent tags, so the
stack must filter itself (docs/reference/stacks-api.md §3.3). Semantics follow the agent's
targeting rules (docs/reference/stacks-api.md §5): a job's rules are ``key=value`` strings,
every one must be satisfied by the stack's tags, and a value of ``*`` (or an empty value)
accepts any value of a tag the stack has (docs/reference/aws.md §A.7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

QUEUE_TAG = "queue"
WILDCARD = "*"
_ANY_VALUE = frozenset({WILDCARD, ""})

# Rules that are launch options, not tags: a job asks the stack for a size or a task
# definition (as Buildkite's on-demand scheduler allowed), and the launcher decides whether
# it may. Matching ignores them, so a job asking for something not allowed is failed back
# with the reason instead of being skipped and left waiting forever.
LAUNCH_OPTION_KEYS = frozenset({"cpu", "memory", "disk", "task-definition"})

# Spellings of "the cluster's default queue" (docs/reference/stacks-api.md §8.2: docs say
# __default__, the Go client says _default). A stack registered with either serves jobs that
# name no queue.
DEFAULT_QUEUE_KEYS = frozenset({"_default", "__default__"})


class SkipReason(StrEnum):
    """Why a job was not matched; a bounded set so it can be a metric dimension."""

    MALFORMED_RULE = "malformed_rule"
    TAG_MISSING = "tag_missing"
    TAG_MISMATCH = "tag_mismatch"
    QUEUE_MISMATCH = "queue_mismatch"


@dataclass(frozen=True, slots=True)
class Match:
    """The outcome for one job; ``rule`` names the first rule that failed, for the log."""

    matched: bool
    reason: SkipReason | None = None
    rule: str | None = None


MATCHED = Match(matched=True)


@dataclass(frozen=True, slots=True)
class StackTags:
    """The tags this stack offers: its queue plus the operator's extra tags."""

    queue: str
    extra: Mapping[str, str]
    serves_default_queue: bool = False

    @classmethod
    def from_config(
        cls, queue_key: str, extra: Mapping[str, str], *, default_queue: bool = False
    ) -> StackTags:
        if QUEUE_TAG in extra:
            raise ValueError(f"extra agent tags must not set {QUEUE_TAG!r}; it is the queue key")
        return cls(
            queue=queue_key,
            extra=dict(extra),
            serves_default_queue=default_queue or queue_key in DEFAULT_QUEUE_KEYS,
        )


def parse_tags(text: str) -> dict[str, str]:
    """Parse ``k=v,k2=v2`` (the operator's extra tags parameter) into a mapping.

    Empty text gives no tags; a pair without ``=`` or with an empty key is an error, because
    a silently ignored tag would make jobs never match.
    """
    tags: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"agent tag {item!r} is not of the form key=value")
        tags[key.strip()] = value.strip()
    return tags


def match_rules(rules: Iterable[str], tags: StackTags) -> Match:
    """Decide whether a job with these agent query rules may run on this stack.

    ``[]`` and ``["*"]`` (an untargeted job, as the REST API shows it) match any stack.
    A job without a ``queue`` rule belongs to the default queue (docs/reference/stacks-api.md §5).
    """
    saw_queue = False
    for rule in rules:
        if rule == WILDCARD:
            continue
        key, sep, value = rule.partition("=")
        if not sep or not key:
            return Match(matched=False, reason=SkipReason.MALFORMED_RULE, rule=rule)
        if key in LAUNCH_OPTION_KEYS:
            continue
        if key == QUEUE_TAG:
            saw_queue = True
            if value not in _ANY_VALUE and value != tags.queue:
                return Match(matched=False, reason=SkipReason.QUEUE_MISMATCH, rule=rule)
            continue
        if key not in tags.extra:
            return Match(matched=False, reason=SkipReason.TAG_MISSING, rule=rule)
        if value not in _ANY_VALUE and value != tags.extra[key]:
            return Match(matched=False, reason=SkipReason.TAG_MISMATCH, rule=rule)
    if not saw_queue and not tags.serves_default_queue:
        return Match(matched=False, reason=SkipReason.QUEUE_MISMATCH, rule=None)
    return MATCHED
