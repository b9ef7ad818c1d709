"""cfn-lint on a translated template, the check that catches bad references, runtimes and
property values once SAM's transform has run (docs/reference/tooling.md §2)."""

from __future__ import annotations

import json
import re
from typing import Any

import cfnlint.api


def lint(cfn: dict[str, Any]) -> list[Any]:
    config = cfnlint.api.ManualArgs(regions=["us-east-1"])
    return list(cfnlint.api.lint(json.dumps(cfn), config=config))


NO_VALUE = {"Ref": "AWS::NoValue"}


def parameter_values(cfn: dict[str, Any], **given: str) -> dict[str, str]:
    """The template's parameter defaults with ``given`` on top, as a deploy would pass them."""
    values = {name: str(spec.get("Default", "")) for name, spec in cfn["Parameters"].items()}
    return values | given


def condition(cfn: dict[str, Any], name: str, params: dict[str, str]) -> bool:
    """A condition of the template, evaluated as CloudFormation would for ``params`` (the
    functions the template's conditions use: Equals, Not, And, Or, Condition)."""
    return evaluate(cfn["Conditions"][name], cfn, params)


def evaluate(spec: Any, cfn: dict[str, Any], params: dict[str, str]) -> bool:
    """A condition or rule expression (a rule's ``RuleCondition`` or ``Assert``)."""
    ((function, args),) = spec.items()
    if function == "Condition":
        return condition(cfn, args, params)
    if function == "Fn::Equals":
        left, right = (params[a["Ref"]] if isinstance(a, dict) else str(a) for a in args)
        return left == right
    if function == "Fn::Not":
        return not evaluate(args[0], cfn, params)
    if function == "Fn::And":
        return all(evaluate(a, cfn, params) for a in args)
    if function == "Fn::Or":
        return any(evaluate(a, cfn, params) for a in args)
    raise ValueError(f"unsupported condition function {function}")


def choose_branches(value: Any, cfn: dict[str, Any], params: dict[str, str]) -> Any:
    """``value`` with every ``Fn::If`` replaced by the branch ``params`` select, and
    ``AWS::NoValue`` dropped from lists and mappings (what CloudFormation deploys)."""
    if isinstance(value, list):
        chosen = [choose_branches(v, cfn, params) for v in value]
        return [v for v in chosen if v != NO_VALUE]
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            branch = if_true if condition(cfn, name, params) else if_false
            return choose_branches(branch, cfn, params)
        chosen_map = {k: choose_branches(v, cfn, params) for k, v in value.items()}
        return {k: v for k, v in chosen_map.items() if v != NO_VALUE}
    return value


def deployed_resources(cfn: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """The resources a deploy with ``params`` creates (their ``Condition`` holds), with each
    ``Fn::If`` resolved."""
    return {
        name: choose_branches(resource, cfn, params)
        for name, resource in cfn["Resources"].items()
        if "Condition" not in resource or condition(cfn, resource["Condition"], params)
    }


PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "buildkite-fargate-stack",
    "AWS::StackId": (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/buildkite-fargate-stack/"
        "51af3dc0-da77-11e4-872e-1234567db123"
    ),
}


def render(value: Any, cfn: dict[str, Any], params: dict[str, str], **pseudo: str) -> Any:
    """A value built from parameters and pseudo parameters (``Ref``, ``Fn::Sub``,
    ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If``), computed as CloudFormation
    would; ``pseudo`` overrides PSEUDO_PARAMETERS (e.g. ``AWS__StackId``)."""
    known = PSEUDO_PARAMETERS | {k.replace("__", "::"): v for k, v in pseudo.items()} | params
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, list):
        return [render(v, cfn, params, **pseudo) for v in value]
    ((function, args),) = value.items()
    if function == "Ref":
        return known[args]
    if function == "Fn::If":
        name, if_true, if_false = args
        return render(if_true if condition(cfn, name, params) else if_false, cfn, params, **pseudo)
    if function == "Fn::Join":
        return str(args[0]).join(render(args[1], cfn, params, **pseudo))
    if function == "Fn::Split":
        return str(render(args[1], cfn, params, **pseudo)).split(args[0])
    if function == "Fn::Select":
        return render(args[1], cfn, params, **pseudo)[int(args[0])]
    if function == "Fn::Sub":
        text, variables = (args, {}) if isinstance(args, str) else args
        local = {k: render(v, cfn, params, **pseudo) for k, v in variables.items()}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: (local | known)[m.group(1)], text)
    raise ValueError(f"cannot render {function}")
