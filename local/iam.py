"""IAM for the local world: each request evaluated against its caller's policies, as AWS does.

moto can check requests against IAM, but not faithfully enough to prove the stack's grants
(docs/reference/aws.md §H.11): for DynamoDB, Secrets Manager and ECS it checks Resource
``"*"``, it evaluates conditions only by plain string equality against values it rarely
has, it cannot read the inline policies CloudFormation created, it ignores
``ManagedPolicyArns``, and RunTask checks neither ``iam:PassRole`` nor ``ecs:TagResource``.

No well-kept Python library evaluates an IAM request with its resource and condition keys:
cloudsplaining and parliament lint policies, policyuniverse expands action names, moto's own
evaluator is the one above. So this module does the small part the stack needs, by hand:

- ``evaluate``: the identity-policy logic of the IAM guide (docs/reference/aws.md §H.40): an
  explicit Deny wins, else an Allow whose Action, Resource and Condition all match, else an
  implicit deny; the condition operators the template uses, with ``IfExists`` and the
  ``ForAllValues``/``ForAnyValue`` set qualifiers (docs/reference/aws.md §H.41). An
  operator it does not know raises, so a new condition cannot pass unchecked.
- ``calls_of``: what one API request asks IAM for: its action, the resource ARN and the
  condition keys derived from the request (a table's ``dynamodb:LeadingKeys``, RunTask's
  ``ecs:cluster``), plus the actions a request implies (RunTask: ``iam:PassRole`` for the
  task definition's roles with ``iam:PassedToService``, and ``ecs:TagResource`` with
  ``ecs:CreateAction`` when it tags the task; docs/reference/aws.md §H.42).

The moto process (local.aws_world) applies both to every request once enforcement is on,
and records each decision, so a run reports every call the stack made and what IAM said.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# ------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Call:
    """One authorization IAM makes: an action on a resource, with the request's keys."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # False when the local world does not know the operation's resource: it is then "*",
    # which a scoped grant does not match (so it is denied, and the record says why).
    modelled: bool = True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # The Sid (or "<policy>#<index>") of the statement that decided, if one did.
    statement: str | None
    reason: str


class UnsupportedPolicyError(ValueError):
    """A policy uses what the local evaluator does not model (an operator, a variable)."""


# ------------------------------------------------------------------ evaluation


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob(pattern: str, value: str, *, case: bool) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character."""
    if "${" in pattern:
        raise UnsupportedPolicyError(f"policy variables are not modelled: {pattern!r}")
    return _regex(pattern, case).match(value) is not None


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str, case: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]")), 0 if case else re.IGNORECASE)


def _matches_any(patterns: Any, value: str, *, case: bool) -> bool:
    return any(_glob(str(p), value, case=case) for p in _as_list(patterns))


def _string_like(expected: str, actual: str) -> bool:
    return _glob(expected, actual, case=True)


def _arn_like(expected: str, actual: str) -> bool:
    # ArnLike compares the six colon-separated parts one by one, each with wildcards.
    want, got = expected.split(":", 5), actual.split(":", 5)
    return len(want) == len(got) == 6 and all(
        _glob(w, g, case=True) for w, g in zip(want, got, strict=True)
    )


_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda e, a: e == a,
    "StringEqualsIgnoreCase": lambda e, a: e.lower() == a.lower(),
    "StringLike": _string_like,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda e, a: e.lower() == a.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    values = [str(v) for v in _as_list(expected)]
    present = key in context and len(context[key]) > 0
    actual = [str(v) for v in context.get(key, ())]
    if op == "Null":
        # "true": the key must be absent; "false": present.
        return all((v.lower() == "true") == (not present) for v in values)
    negated = op in _NEGATED
    base = _NEGATED.get(op, op)
    if base not in _MATCHERS:
        raise UnsupportedPolicyError(f"condition operator {operator!r} is not modelled")
    match = _MATCHERS[base]

    def one(value: str) -> bool:
        hit = any(match(e, value) for e in values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in actual)  # true when the key is absent or empty
    if qualifier == "ForAnyValue":
        return any(one(v) for v in actual)  # false when absent
    if qualifier:
        raise UnsupportedPolicyError(f"condition qualifier {qualifier!r} is not modelled")
    if not present:
        # A missing key matches nothing, except under a negated operator or IfExists.
        return if_exists or negated
    return any(one(v) for v in actual)


def _conditions_hold(condition: Mapping[str, Any] | None, context: Mapping[str, Any]) -> bool:
    for operator, block in (condition or {}).items():
        for key, expected in block.items():
            # Condition keys are case-insensitive; the context is keyed in lower case.
            if not _condition_holds(operator, key.lower(), expected, context):
                return False
    return True


def _principal_matches(principal: Any, caller: Mapping[str, str] | None) -> bool:
    if principal is None:
        return True  # an identity policy: it is the caller's own
    if caller is None:
        return False
    if principal == "*":
        return True
    return any(
        str(p) == "*" or str(p) == caller.get(kind)
        for kind, names in dict(principal).items()
        for p in _as_list(names)
    )


def statement_applies(
    statement: Mapping[str, Any],
    call: Call,
    caller: Mapping[str, str] | None = None,
) -> bool:
    """Whether a statement's Action, Resource, Principal and Condition all match the call.

    ``caller`` is for resource and trust policies: ``{"Service": "events.amazonaws.com"}``
    or ``{"AWS": "<arn>"}``; identity policies have no Principal."""
    if "Action" in statement:
        action_ok = _matches_any(statement["Action"], call.action, case=False)
    else:
        action_ok = not _matches_any(statement.get("NotAction", []), call.action, case=False)
    if not action_ok:
        return False
    if "Resource" in statement:
        resource_ok = _matches_any(statement["Resource"], call.resource, case=True)
    elif "NotResource" in statement:
        resource_ok = not _matches_any(statement["NotResource"], call.resource, case=True)
    else:
        resource_ok = caller is not None  # a trust policy names no resource
    if not resource_ok:
        return False
    if "Principal" in statement or "NotPrincipal" in statement:
        if "NotPrincipal" in statement:
            raise UnsupportedPolicyError("NotPrincipal is not modelled")
        if not _principal_matches(statement["Principal"], caller):
            return False
    context = {k.lower(): v for k, v in call.context.items()}
    return _conditions_hold(statement.get("Condition"), context)


def evaluate(
    policies: Mapping[str, Mapping[str, Any]],
    call: Call,
    caller: Mapping[str, str] | None = None,
) -> Decision:
    """The decision for one call under named policy documents (docs/reference/aws.md §H.40)."""
    allowed_by: str | None = None
    for name, document in policies.items():
        for index, statement in enumerate(_as_list(document.get("Statement", []))):
            if not statement_applies(statement, call, caller):
                continue
            label = str(statement.get("Sid") or f"{name}#{index}")
            if statement.get("Effect") == "Deny":
                return Decision(False, label, f"explicitly denied by {label}")
            allowed_by = allowed_by or label
    if allowed_by:
        return Decision(True, allowed_by, f"allowed by {allowed_by}")
    return Decision(False, None, f"no identity-based policy allows the {call.action} action")


@functools.lru_cache(maxsize=512)
def _parsed(document: str) -> dict[str, Any]:
    # Every request reads its caller's policies: parse each document once (read-only).
    return dict(json.loads(document))


def document_of(policy: Any) -> dict[str, Any]:
    """A policy document as moto keeps it: a JSON string (the API), a dict (CloudFormation's
    inline policies), or moto's record of a user policy."""
    if isinstance(policy, str):
        return _parsed(policy)
    if isinstance(policy, Mapping) and "policy_document" in policy:
        return document_of(policy["policy_document"])
    if isinstance(policy, Mapping):
        return dict(policy)
    raise TypeError(f"not a policy document: {type(policy).__name__}")


# ------------------------------------------------------------------ what a request asks for


class Lookup(Protocol):
    """What the account knows that a request names only in part (moto's backends)."""

    account: str
    region: str

    def table_hash_key(self, table: str) -> str | None: ...
    def secret_arn(self, secret_id: str) -> str: ...
    def task_definition(self, name: str) -> tuple[str, Sequence[str]]:
        """The revision's ARN and the roles it names (task role, execution role)."""
        ...


def _arn(lookup: Lookup, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{lookup.region}:{lookup.account}:{resource}"


def _queue_arn(lookup: Lookup, params: Mapping[str, Any]) -> str:
    name = str(params.get("QueueName") or str(params.get("QueueUrl", "")).rstrip("/"))
    return _arn(lookup, "sqs", name.rsplit("/", 1)[-1])


def _cluster_arn(lookup: Lookup, cluster: Any) -> str:
    name = str(cluster or "default")
    return name if name.startswith("arn:") else _arn(lookup, "ecs", f"cluster/{name}")


def _attribute_value(value: Mapping[str, Any]) -> str:
    ((_, scalar),) = value.items()
    return str(scalar)


def _dynamodb(lookup: Lookup, operation: str, params: Mapping[str, Any]) -> list[Call]:
    table = str(params.get("TableName", ""))
    context: dict[str, tuple[str, ...]] = {}
    key = lookup.table_hash_key(table) if table else None
    item = params.get("Key") or params.get("Item") or {}
    if key and key in item:
        # dynamodb:LeadingKeys: the partition key values the request touches
        # (docs/reference/aws.md §H.42).
        context["dynamodb:LeadingKeys"] = (_attribute_value(item[key]),)
    return [Call(f"dynamodb:{operation}", _arn(lookup, "dynamodb", f"table/{table}"), context)]


# SQS authorizes each batch operation as its single action (docs/reference/aws.md §H.42).
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_SQS_ON_A_QUEUE = {
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
    "SetQueueAttributes",
    "PurgeQueue",
}


def _sqs(lookup: Lookup, operation: str, params: Mapping[str, Any]) -> list[Call]:
    action = _SQS_BATCH.get(operation, operation)
    if action not in _SQS_ON_A_QUEUE:
        return [Call(f"sqs:{action}", "*", modelled=False)]
    return [Call(f"sqs:{action}", _queue_arn(lookup, params))]


def _run_task(lookup: Lookup, params: Mapping[str, Any]) -> list[Call]:
    cluster = _cluster_arn(lookup, params.get("cluster"))
    context = {"ecs:cluster": (cluster,)}
    definition, roles = lookup.task_definition(str(params.get("taskDefinition", "")))
    overrides = params.get("overrides") or {}
    passed = [overrides.get("taskRoleArn"), overrides.get("executionRoleArn")]
    calls = [Call("ecs:RunTask", definition, context)]
    calls += [
        Call("iam:PassRole", role, {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)})
        for role in dict.fromkeys([*roles, *(r for r in passed if r)])
    ]
    if params.get("tags"):
        cluster_name = cluster.rsplit("/", 1)[-1]
        task = _arn(lookup, "ecs", f"task/{cluster_name}/(new)")
        calls.append(Call("ecs:TagResource", task, {"ecs:CreateAction": ("RunTask",)}))
    return calls


def _register_task_definition(lookup: Lookup, params: Mapping[str, Any]) -> list[Call]:
    """The new revision's ARN (its number unknown before ECS answers: "(new)"), its two
    roles passed to ECS tasks, and TagResource when it tags (docs/reference/aws.md §B.9)."""
    definition = _arn(lookup, "ecs", f"task-definition/{params.get('family', '')}:(new)")
    calls = [Call("ecs:RegisterTaskDefinition", definition)]
    roles = [params.get("taskRoleArn"), params.get("executionRoleArn")]
    calls += [
        Call("iam:PassRole", role, {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)})
        for role in dict.fromkeys(r for r in roles if r)
    ]
    if params.get("tags"):
        calls.append(
            Call("ecs:TagResource", definition, {"ecs:CreateAction": ("RegisterTaskDefinition",)})
        )
    return calls


# ECS actions with no resource type: IAM authorizes them on "*" only, so "*" is their real
# resource, not a gap of the model (docs/reference/aws.md §B.9).
_ECS_ON_NO_RESOURCE = frozenset(
    {
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "ListTaskDefinitionFamilies",
        "DeregisterTaskDefinition",
    }
)


def _ecs(lookup: Lookup, operation: str, params: Mapping[str, Any]) -> list[Call]:
    if operation == "RunTask":
        return _run_task(lookup, params)
    if operation == "RegisterTaskDefinition":
        return _register_task_definition(lookup, params)
    if operation in _ECS_ON_NO_RESOURCE:
        return [Call(f"ecs:{operation}", "*")]
    cluster = _cluster_arn(lookup, params.get("cluster"))
    context = {"ecs:cluster": (cluster,)}
    name = cluster.rsplit("/", 1)[-1]
    if operation in {"DescribeTasks", "StopTask"}:
        tasks = _as_list(params.get("tasks") or params.get("task") or [])
        return [
            Call(
                f"ecs:{operation}",
                t if str(t).startswith("arn:") else _arn(lookup, "ecs", f"task/{name}/{t}"),
                context,
            )
            for t in tasks
        ]
    if operation == "ListTasks":
        # ListTasks is authorized on the cluster's container instances with ecs:cluster.
        return [Call("ecs:ListTasks", _arn(lookup, "ecs", f"container-instance/{name}/*"), context)]
    return [Call(f"ecs:{operation}", "*", modelled=False)]


def _secretsmanager(lookup: Lookup, operation: str, params: Mapping[str, Any]) -> list[Call]:
    secret = params.get("SecretId")
    if not secret:
        return [Call(f"secretsmanager:{operation}", "*", modelled=False)]
    return [Call(f"secretsmanager:{operation}", lookup.secret_arn(str(secret)))]


_BY_SERVICE: dict[str, Callable[[Lookup, str, Mapping[str, Any]], list[Call]]] = {
    "dynamodb": _dynamodb,
    "sqs": _sqs,
    "ecs": _ecs,
    "secretsmanager": _secretsmanager,
}


def calls_of(service: str, operation: str, params: Mapping[str, Any], lookup: Lookup) -> list[Call]:
    """The authorizations one request needs (its own action first, then implied ones)."""
    derive = _BY_SERVICE.get(service)
    if derive is None:
        return [Call(f"{service}:{operation}", "*", modelled=False)]
    return derive(lookup, operation, params)


# ------------------------------------------------------------------ the record


@dataclass
class Record:
    """Every decision of a run, counted by caller, action, resource, keys and outcome."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, caller: str, call: Call, decision: Decision) -> None:
        context = {k: list(v) for k, v in sorted(call.context.items())}
        key = json.dumps([caller, call.action, call.resource, context, decision.allowed])
        entry = self.entries.setdefault(
            key,
            {
                "caller": caller,
                "action": call.action,
                "resource": call.resource,
                "context": context,
                "allowed": decision.allowed,
                "statement": decision.statement,
                "reason": decision.reason,
                "modelled": call.modelled,
                "count": 0,
            },
        )
        entry["count"] += 1

    def as_list(self) -> list[dict[str, Any]]:
        return sorted(self.entries.values(), key=lambda e: (e["caller"], e["action"]))


def denials(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per denied call of a record, for the verdict."""
    return [
        f"AccessDenied: {e['caller']} may not {e['action']} on {e['resource']} "
        f"({e['reason']}; {e['count']}x)"
        for e in entries
        if not e["allowed"]
    ]
