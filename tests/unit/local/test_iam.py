"""The local world's IAM evaluator (local/iam.py) against the rules of the IAM guide
(docs/reference/aws.md §H.40, §H.41) and what each request asks for (§H.42)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.iam import (
    Call,
    Decision,
    Record,
    UnsupportedPolicyError,
    calls_of,
    denials,
    document_of,
    evaluate,
)

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/stack-Cluster-1"
LEDGER = "arn:aws:dynamodb:us-east-1:123456789012:table/ledger"


def policy(*statements: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"p": {"Version": "2012-10-17", "Statement": list(statements)}}


def allow(action: Any, resource: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Sid": "S", "Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def decide(statements: Sequence[dict[str, Any]], call: Call) -> Decision:
    return evaluate(policy(*statements), call)


def test_nothing_granted_is_an_implicit_deny() -> None:
    decision = decide([], Call("ecs:RunTask", "arn:aws:ecs:::task-definition/x:1"))
    assert not decision.allowed
    assert "no identity-based policy allows the ecs:RunTask action" in decision.reason


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Sid": "No", "Effect": "Deny", "Action": "sqs:*", "Resource": "*"}
    decision = decide([allow("sqs:SendMessage", "*"), deny], Call("sqs:SendMessage", "arn:q"))
    assert (decision.allowed, decision.statement) == (False, "No")


def test_actions_match_case_insensitively_and_resources_by_wildcard() -> None:
    grant = allow("ECS:runtask", "arn:aws:ecs:us-east-1:123456789012:task-definition/stack-agent:*")
    assert decide(
        [grant],
        Call("ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/stack-agent:7"),
    ).allowed
    # Another family: the wildcard stops at the family's name.
    assert not decide(
        [grant], Call("ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/other:1")
    ).allowed
    assert not decide(
        [grant],
        Call("ecs:StopTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/stack-agent:7"),
    ).allowed


def test_resource_arns_are_case_sensitive() -> None:
    grant = allow("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:Launch")
    assert not decide([grant], Call("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:launch")).allowed


@pytest.mark.parametrize(
    ("cluster", "allowed"),
    [
        ((CLUSTER,), True),
        (("arn:aws:ecs:us-east-1:123456789012:cluster/other",), False),
        ((), False),
    ],
)
def test_an_arn_condition_needs_the_key_with_a_matching_value(
    cluster: tuple[str, ...], allowed: bool
) -> None:
    grant = allow("ecs:ListTasks", "*", {"ArnEquals": {"ecs:cluster": CLUSTER}})
    call = Call("ecs:ListTasks", "x", {"ecs:cluster": cluster} if cluster else {})
    assert decide([grant], call).allowed is allowed


@pytest.mark.parametrize(
    ("keys", "allowed"),
    [
        ({"dynamodb:LeadingKeys": ("lease#poller",)}, True),
        ({"dynamodb:LeadingKeys": ("job#1234",)}, False),
        ({"dynamodb:LeadingKeys": ("lease#poller", "job#1")}, False),
        # ForAllValues holds for an absent key (docs/reference/aws.md §H.41).
        ({}, True),
    ],
)
def test_for_all_values_checks_every_request_value(
    keys: dict[str, tuple[str, ...]], allowed: bool
) -> None:
    grant = allow(
        "dynamodb:UpdateItem",
        LEDGER,
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["lease#poller"]}},
    )
    assert decide([grant], Call("dynamodb:UpdateItem", LEDGER, keys)).allowed is allowed


def test_for_any_value_is_false_without_the_key() -> None:
    grant = allow("s:A", "*", {"ForAnyValue:StringEquals": {"k": ["v"]}})
    assert not decide([grant], Call("s:A", "r")).allowed
    assert decide([grant], Call("s:A", "r", {"k": ("x", "v")})).allowed


def test_a_negated_operator_and_if_exists_hold_without_the_key() -> None:
    assert decide([allow("s:A", "*", {"StringNotEquals": {"k": "v"}})], Call("s:A", "r")).allowed
    assert decide(
        [allow("s:A", "*", {"StringEqualsIfExists": {"k": "v"}})], Call("s:A", "r")
    ).allowed
    assert not decide(
        [allow("s:A", "*", {"StringEqualsIfExists": {"k": "v"}})], Call("s:A", "r", {"k": ("w",)})
    ).allowed


def test_null_tests_whether_the_key_is_present() -> None:
    absent = allow("s:A", "*", {"Null": {"k": "true"}})
    assert decide([absent], Call("s:A", "r")).allowed
    assert not decide([absent], Call("s:A", "r", {"k": ("v",)})).allowed


def test_condition_keys_are_case_insensitive_and_values_are_not() -> None:
    grant = allow(
        "iam:PassRole", "*", {"StringEquals": {"IAM:PassedToService": "ecs-tasks.amazonaws.com"}}
    )
    assert decide(
        [grant], Call("iam:PassRole", "r", {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)})
    ).allowed
    assert not decide(
        [grant], Call("iam:PassRole", "r", {"iam:PassedToService": ("ECS-tasks.amazonaws.com",)})
    ).allowed


def test_every_operator_block_must_hold() -> None:
    grant = allow("s:A", "*", {"StringEquals": {"a": "1"}, "StringLike": {"b": "x-*"}})
    assert decide([grant], Call("s:A", "r", {"a": ("1",), "b": ("x-9",)})).allowed
    assert not decide([grant], Call("s:A", "r", {"a": ("1",), "b": ("y-9",)})).allowed


def test_what_it_does_not_model_raises_instead_of_passing() -> None:
    with pytest.raises(UnsupportedPolicyError, match="NumericLessThan"):
        decide(
            [allow("s:A", "*", {"NumericLessThan": {"k": "1"}})], Call("s:A", "r", {"k": ("0",)})
        )
    with pytest.raises(UnsupportedPolicyError, match="variables"):
        decide([allow("s:A", "arn:${aws:username}")], Call("s:A", "r"))


def test_a_resource_policy_names_its_principal() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": "arn:aws:sqs:us-east-1:1:dlq",
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/mine"}},
    }
    call = Call(
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:1:dlq",
        {"aws:SourceArn": ("arn:aws:events:us-east-1:1:rule/mine",)},
    )
    assert evaluate(policy(statement), call, {"Service": "events.amazonaws.com"}).allowed
    assert not evaluate(policy(statement), call, {"Service": "sns.amazonaws.com"}).allowed


def test_policy_documents_are_read_in_every_form_moto_keeps() -> None:
    document = {"Version": "2012-10-17", "Statement": []}
    assert document_of('{"Version": "2012-10-17", "Statement": []}') == document
    assert document_of(document) == document
    assert document_of({"policy_name": "x", "policy_document": document}) == document


# ------------------------------------------------------------------ requests


@dataclass
class Account:
    """The account's answers a request leaves out, as moto's backends give them."""

    account: str = "123456789012"
    region: str = "us-east-1"
    roles: list[str] = field(
        default_factory=lambda: [
            "arn:aws:iam::123456789012:role/task",
            "arn:aws:iam::123456789012:role/execution",
        ]
    )

    def table_hash_key(self, table: str) -> str | None:
        return "pk" if table == "ledger" else None

    def secret_arn(self, secret_id: str) -> str:
        return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf"

    def task_definition(self, name: str) -> tuple[str, list[str]]:
        return f"arn:aws:ecs:us-east-1:123456789012:task-definition/{name}:3", self.roles


def test_run_task_implies_pass_role_for_both_roles_and_tagging_at_create() -> None:
    calls = calls_of(
        "ecs",
        "RunTask",
        {
            "cluster": "stack-Cluster-1",
            "taskDefinition": "stack-agent",
            "tags": [{"key": "a", "value": "b"}],
        },
        Account(),
    )
    assert [c.action for c in calls] == [
        "ecs:RunTask",
        "iam:PassRole",
        "iam:PassRole",
        "ecs:TagResource",
    ]
    run, task_role, execution_role, tag = calls
    assert run.resource.endswith("task-definition/stack-agent:3")
    assert run.context == {"ecs:cluster": (CLUSTER,)}
    assert (task_role.resource, execution_role.resource) == tuple(Account().roles)
    assert task_role.context == {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)}
    assert tag.context == {"ecs:CreateAction": ("RunTask",)}
    assert tag.resource.startswith("arn:aws:ecs:us-east-1:123456789012:task/stack-Cluster-1/")


def test_run_task_without_tags_needs_no_tag_resource() -> None:
    calls = calls_of("ecs", "RunTask", {"taskDefinition": "x"}, Account(roles=[]))
    assert [c.action for c in calls] == ["ecs:RunTask"]
    assert calls[0].context == {
        "ecs:cluster": ("arn:aws:ecs:us-east-1:123456789012:cluster/default",)
    }


def test_sqs_batches_are_authorized_as_their_single_action_on_the_queue() -> None:
    (call,) = calls_of(
        "sqs", "SendMessageBatch", {"QueueUrl": "http://localhost:1/123456789012/launch"}, Account()
    )
    assert (call.action, call.resource) == (
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:123456789012:launch",
    )


def test_dynamodb_requests_carry_their_partition_key_as_leading_keys() -> None:
    (call,) = calls_of(
        "dynamodb",
        "UpdateItem",
        {"TableName": "ledger", "Key": {"pk": {"S": "lease#poller"}}},
        Account(),
    )
    assert call.resource == LEDGER
    assert call.context == {"dynamodb:LeadingKeys": ("lease#poller",)}


def test_a_secret_named_by_name_is_authorized_on_its_full_arn() -> None:
    (call,) = calls_of("secretsmanager", "GetSecretValue", {"SecretId": "token"}, Account())
    assert call.resource.endswith(":secret:token-AbCdEf")


def test_an_operation_it_does_not_know_is_asked_on_every_resource_and_says_so() -> None:
    (call,) = calls_of("ecs", "DeleteCluster", {}, Account())
    assert (call.resource, call.modelled) == ("*", False)
    assert not decide([allow("ecs:DeleteCluster", CLUSTER)], call).allowed


def test_the_record_counts_decisions_and_lists_the_denied() -> None:
    record = Record()
    call = Call("ecs:RunTask", "arn:td")
    for _ in range(3):
        record.add("LauncherFunctionRole", call, Decision(False, None, "no grant"))
    record.add("LauncherFunctionRole", call, Decision(True, "S", "allowed by S"))
    entries = record.as_list()
    assert sorted(e["count"] for e in entries) == [1, 3]
    assert denials(entries) == [
        "AccessDenied: LauncherFunctionRole may not ecs:RunTask on arn:td (no grant; 3x)"
    ]


def test_a_task_role_override_is_passed_too_and_an_unmapped_one_is_denied() -> None:
    # Given a RunTask whose overrides name a pipeline's task role (PipelineTaskRoles)
    mapped = "arn:aws:iam::123456789012:role/buildkite-pipeline/web"
    calls = calls_of(
        "ecs",
        "RunTask",
        {"taskDefinition": "stack-agent", "overrides": {"taskRoleArn": mapped}},
        Account(),
    )
    # Then PassRole is asked for it as well as for the definition's two roles
    passed = [c.resource for c in calls if c.action == "iam:PassRole"]
    assert passed == [*Account().roles, mapped]
    # and a launcher allowed exactly the definition's roles and the mapped one passes it,
    grant = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": [*Account().roles, mapped],
        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
    }
    policies = {"launch": {"Statement": [grant]}}
    assert all(evaluate(policies, c).allowed for c in calls if c.action == "iam:PassRole")
    # but not a role the mapping does not name
    other = calls_of(
        "ecs",
        "RunTask",
        {"taskDefinition": "stack-agent", "overrides": {"taskRoleArn": mapped + "-admin"}},
        Account(),
    )
    denied = [
        c.resource
        for c in other
        if c.action == "iam:PassRole" and not evaluate(policies, c).allowed
    ]
    assert denied == [mapped + "-admin"]
