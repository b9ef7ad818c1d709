"""What a role of the translated template grants: its inline statements (under one set of
parameters, or under any), and the statements of its AWS managed policies, read from moto's
bundled copy of them (docs/reference/aws.md §H.39) so that a managed policy is judged by its
document, not by its name."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from moto.iam.aws_managed_policies import aws_managed_policies_data

from tests.support.template import NO_VALUE, choose_branches, render

Statement = dict[str, Any]

AWS_MANAGED_PREFIX = "iam::aws:policy/"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _aws_managed_policies() -> dict[str, Any]:
    policies: dict[str, Any] = json.loads(aws_managed_policies_data)
    return policies


def managed_policy_names(cfn: dict[str, Any], role: str, params: dict[str, str]) -> list[str]:
    """The names of the AWS managed policies a deploy with ``params`` attaches to ``role``;
    a customer-managed policy ARN fails here (the stack creates none)."""
    arns = choose_branches(
        cfn["Resources"][role]["Properties"].get("ManagedPolicyArns", []), cfn, params
    )
    names = []
    for arn in arns:
        text = str(render(arn, cfn, params))
        assert AWS_MANAGED_PREFIX in text, f"{role}: {text} is not an AWS managed policy"
        names.append(text.rsplit("/", 1)[-1])
    return names


def managed_policy_statements(name: str) -> list[Statement]:
    """The statements of the AWS managed policy ``name`` (its default version)."""
    policy = _aws_managed_policies().get(name)
    assert policy is not None, f"{name} is not in moto's copy of the AWS managed policies"
    statements: list[Statement] = as_list(policy["Document"]["Statement"])
    return statements


def inline_statements_under_any_parameters(
    cfn: dict[str, Any], role: str
) -> list[tuple[tuple[str, ...], Statement]]:
    """Every inline statement ``role`` grants under some set of parameters (both branches of
    each ``Fn::If`` in its ``Policies``), with the template conditions it exists under:
    ``Name`` for a ``Fn::If`` taken, ``!Name`` for its other branch."""
    found: list[tuple[tuple[str, ...], Statement]] = []

    def walk(value: Any, under: tuple[str, ...]) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, under)
        elif isinstance(value, dict) and set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            walk(if_true, (*under, name))
            walk(if_false, (*under, f"!{name}"))
        elif isinstance(value, dict) and value != NO_VALUE:
            if "PolicyDocument" in value:
                walk(value["PolicyDocument"]["Statement"], under)
            else:
                found.append((under, value))

    walk(cfn["Resources"][role]["Properties"].get("Policies", []), ())
    return found


def allows(statement: Statement, action: str) -> bool:
    """Whether an Allow ``statement`` names ``action``, wildcards included (IAM compares
    action names without regard to case)."""
    if statement.get("Effect") != "Allow":
        return False
    return any(fnmatchcase(action.lower(), str(a).lower()) for a in as_list(statement["Action"]))


def is_wildcard_resource(statement: Statement) -> bool:
    return "*" in as_list(statement.get("Resource", []))
