"""Agent query rule matching, against the semantics in docs/reference/stacks-api.md §5."""

from __future__ import annotations

import pytest

from fargate_stack.domain.rules import SkipReason, StackTags, match_rules, parse_tags

STACK = StackTags.from_config("fargate", {"os": "linux", "size": "large"})
DEFAULT_STACK = StackTags.from_config("__default__", {})


@pytest.mark.parametrize(
    "rules",
    [
        ["queue=fargate"],
        ["queue=fargate", "os=linux"],
        ["queue=fargate", "os=*"],
        ["queue=*", "size=large"],
        ["queue=fargate", "*"],
        ["queue=fargate", "os="],
        ["queue=", "size=large"],
    ],
)
def test_matching_rules_match(rules: list[str]) -> None:
    assert match_rules(rules, STACK).matched


@pytest.mark.parametrize(
    ("rules", "reason", "rule"),
    [
        (["queue=other"], SkipReason.QUEUE_MISMATCH, "queue=other"),
        (["queue=fargate", "os=windows"], SkipReason.TAG_MISMATCH, "os=windows"),
        (["queue=fargate", "gpu=true"], SkipReason.TAG_MISSING, "gpu=true"),
        (["queue=fargate", "gpu=*"], SkipReason.TAG_MISSING, "gpu=*"),
        (["queue=fargate", "nonsense"], SkipReason.MALFORMED_RULE, "nonsense"),
        (["queue=fargate", "=x"], SkipReason.MALFORMED_RULE, "=x"),
        (["os=linux"], SkipReason.QUEUE_MISMATCH, None),
    ],
)
def test_non_matching_rules_name_the_reason_and_rule(
    rules: list[str], reason: SkipReason, rule: str | None
) -> None:
    result = match_rules(rules, STACK)
    assert not result.matched
    assert result.reason is reason
    assert result.rule == rule


def test_partial_wildcards_are_literal_values() -> None:
    # The agent does not support partial wildcards such as "1.9*" (docs/reference/stacks-api.md §5).
    assert match_rules(["queue=fargate", "os=lin*"], STACK).reason is SkipReason.TAG_MISMATCH


@pytest.mark.parametrize("rules", [[], ["*"]])
def test_untargeted_jobs_belong_to_the_default_queue(rules: list[str]) -> None:
    assert match_rules(rules, DEFAULT_STACK).matched
    assert match_rules(rules, STACK).reason is SkipReason.QUEUE_MISMATCH


def test_explicit_default_queue_flag() -> None:
    stack = StackTags.from_config("default", {}, default_queue=True)
    assert match_rules(["os=linux"], stack).reason is SkipReason.TAG_MISSING
    assert match_rules([], stack).matched


def test_values_may_contain_equals_signs() -> None:
    stack = StackTags.from_config("q", {"expr": "a=b"})
    assert match_rules(["queue=q", "expr=a=b"], stack).matched


def test_parse_tags() -> None:
    assert parse_tags("") == {}
    assert parse_tags(" os=linux , size=large,") == {"os": "linux", "size": "large"}
    with pytest.raises(ValueError, match="key=value"):
        parse_tags("os")
    with pytest.raises(ValueError, match="key=value"):
        parse_tags("=linux")


def test_extra_tags_cannot_override_the_queue() -> None:
    with pytest.raises(ValueError, match="queue"):
        StackTags.from_config("q", {"queue": "other"})


def test_launch_options_are_not_tags_the_stack_must_have() -> None:
    rules = ["queue=fargate", "cpu=2048", "memory=8192", "task-definition=big"]
    assert match_rules(rules, STACK).matched
