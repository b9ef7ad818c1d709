"""The stack's policies evaluated, not only read: each grant of the translated template
allows the call the stack makes and refuses its near misses, by the IAM guide's rules
(local/iam.py; docs/reference/aws.md §H.40, §H.41).

The local world enforces IAM on every call it makes (docs/local.md, "IAM"), but only on the
calls it makes: these cases cover the refusals (another cluster, another role, tagging an
existing task, another ledger key) and the policies the world never exercises, because it
plays EventBridge and the Scheduler itself (the events DLQ's queue policy, the trust of the
schedule's and the task role).
"""

from __future__ import annotations

from typing import Any

import pytest

from local.iam import Call, evaluate
from tests.support.template import (
    PSEUDO_PARAMETERS,
    choose_branches,
    parameter_values,
    render,
)

Template = dict[str, Any]
ACCOUNT, REGION = PSEUDO_PARAMETERS["AWS::AccountId"], PSEUDO_PARAMETERS["AWS::Region"]
STACK = PSEUDO_PARAMETERS["AWS::StackName"]
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:buildkite/token-AbCdEf"

# A deploy's physical ARNs, by resource type (what GetAtt <X>.Arn would give).
_ARNS = {
    "AWS::ECS::Cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{{}}",
    "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{{}}",
    "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{}}",
    "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{}}",
    "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{{}}",
    "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{}}",
    "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{{}}:*",
}


def arn_of(cfn: Template, logical: str) -> str:
    return _ARNS[cfn["Resources"][logical]["Type"]].format(logical)


def resolved(value: Any, cfn: Template, params: dict[str, str]) -> Any:
    """A policy as a deploy with ``params`` has it: branches chosen, every intrinsic
    computed, each resource named by its logical id."""
    value = choose_branches(value, cfn, params)
    # ${Resource} and ${Resource.Arn} in a Fn::Sub, as a deploy would fill them in.
    names = {logical: logical for logical in cfn["Resources"]}
    names |= {
        f"{r}.Arn": arn_of(cfn, r) for r in cfn["Resources"] if cfn["Resources"][r]["Type"] in _ARNS
    }

    def physical(v: Any) -> Any:
        if isinstance(v, list):
            return [physical(x) for x in v]
        if not isinstance(v, dict):
            return v
        if set(v) == {"Fn::GetAtt"}:
            logical, attribute = v["Fn::GetAtt"]
            return arn_of(cfn, logical) if attribute == "Arn" else logical
        if set(v) == {"Ref"} and v["Ref"] in cfn["Resources"]:
            return v["Ref"]
        if set(v) & {"Ref", "Fn::Sub", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::If"}:
            return render(physical_args(v), cfn, {**names, **params})
        return {k: physical(x) for k, x in v.items()}

    def physical_args(v: dict[str, Any]) -> dict[str, Any]:
        ((function, args),) = v.items()
        if function == "Fn::Sub" and isinstance(args, list):
            text, variables = args
            return {function: [text, {k: physical(x) for k, x in variables.items()}]}
        if function in {"Fn::Join", "Fn::Select", "Fn::Split"}:
            return {function: [args[0], physical(args[1])]}
        return v

    return physical(value)


def role_policies(cfn: Template, role: str, **given: str) -> dict[str, dict[str, Any]]:
    params = parameter_values(
        cfn, ClusterTokenSecretArn=SECRET, AgentTokenSecretArn=SECRET, **given
    )
    properties = resolved(cfn["Resources"][role]["Properties"], cfn, params)
    return {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])}


def cluster(name: str) -> dict[str, tuple[str, ...]]:
    return {"ecs:cluster": (f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}",)}


def task_in(cluster_name: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster_name}/0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def container_instances_of(cluster_name: str) -> str:
    """What ListTasks is authorized on (the container instance resource type)."""
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/{cluster_name}/*"


def task_definition(family: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:4"


def arn_of_queue(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


# ------------------------------------------------------------------ the launcher


@pytest.mark.parametrize(
    ("call", "allowed"),
    [
        (Call("ecs:RunTask", task_definition(f"{STACK}-agent"), cluster("Cluster")), True),
        # ecs:cluster: the stack's own cluster only (docs/reference/aws.md §B.8)
        (Call("ecs:RunTask", task_definition(f"{STACK}-agent"), cluster("other")), False),
        (Call("ecs:RunTask", task_definition(f"{STACK}-agent")), False),
        # its own family only
        (Call("ecs:RunTask", task_definition("someone-elses"), cluster("Cluster")), False),
        # iam:PassRole: the two task roles, to ECS tasks only (docs/reference/aws.md §B.8)
        (
            Call(
                "iam:PassRole",
                f"arn:aws:iam::{ACCOUNT}:role/AgentTaskRole",
                {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)},
            ),
            True,
        ),
        (
            Call(
                "iam:PassRole",
                f"arn:aws:iam::{ACCOUNT}:role/AgentExecutionRole",
                {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)},
            ),
            True,
        ),
        (
            Call(
                "iam:PassRole",
                f"arn:aws:iam::{ACCOUNT}:role/AgentTaskRole",
                {"iam:PassedToService": ("lambda.amazonaws.com",)},
            ),
            False,
        ),
        (
            Call(
                "iam:PassRole",
                f"arn:aws:iam::{ACCOUNT}:role/Admin",
                {"iam:PassedToService": ("ecs-tasks.amazonaws.com",)},
            ),
            False,
        ),
        # ecs:TagResource: in the RunTask that creates the task only (docs/reference/aws.md §H.42)
        (
            Call(
                "ecs:TagResource",
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/Cluster/new",
                {"ecs:CreateAction": ("RunTask",)},
            ),
            True,
        ),
        (Call("ecs:TagResource", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/Cluster/abc"), False),
        # its event source's queue only, not the account's others (issue #12 item 4)
        (Call("sqs:ReceiveMessage", arn_of_queue("LaunchQueue")), True),
        (Call("sqs:ReceiveMessage", arn_of_queue("ParkedQueue")), False),
        (Call("sqs:DeleteMessage", arn_of_queue("someone-elses-queue")), False),
        # no task reads: a redelivery relies on RunTask's client token
        (
            Call(
                "ecs:DescribeTasks",
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/Cluster/abc",
                cluster("Cluster"),
            ),
            False,
        ),
        (Call("secretsmanager:GetSecretValue", SECRET), True),
        (Call("secretsmanager:GetSecretValue", SECRET.replace("token", "other")), False),
    ],
)
def test_the_launchers_grants(cfn_template: Template, call: Call, allowed: bool) -> None:
    assert evaluate(role_policies(cfn_template, "LauncherFunctionRole"), call).allowed is allowed


def test_an_existing_cluster_is_the_one_the_launcher_may_run_in(cfn_template: Template) -> None:
    policies = role_policies(cfn_template, "LauncherFunctionRole", ExistingClusterName="ci")
    run = Call("ecs:RunTask", task_definition(f"{STACK}-agent"), cluster("ci"))
    assert evaluate(policies, run).allowed
    assert not evaluate(policies, Call(run.action, run.resource, cluster("Cluster"))).allowed


# ------------------------------------------------------------------ the poller


@pytest.mark.parametrize(
    ("call", "allowed"),
    [
        # dynamodb:LeadingKeys: the lease item only (docs/reference/aws.md §H.42)
        (
            Call(
                "dynamodb:UpdateItem",
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/LaunchLedger",
                {"dynamodb:LeadingKeys": ("lease#poller",)},
            ),
            True,
        ),
        (
            Call(
                "dynamodb:UpdateItem",
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/LaunchLedger",
                {"dynamodb:LeadingKeys": ("job#5d7b",)},
            ),
            False,
        ),
        (
            Call(
                "dynamodb:PutItem",
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/LaunchLedger",
                {"dynamodb:LeadingKeys": ("lease#poller",)},
            ),
            False,
        ),
        # SendMessageBatch is authorized as SendMessage (docs/reference/aws.md §H.42),
        # on the launch queue only
        (Call("sqs:SendMessage", arn_of_queue("LaunchQueue")), True),
        (Call("sqs:SendMessage", arn_of_queue("ParkedQueue")), False),
        (
            Call(
                "ecs:ListTasks",
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/Cluster/*",
                cluster("Cluster"),
            ),
            True,
        ),
        (
            Call(
                "ecs:ListTasks",
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/other/*",
                cluster("other"),
            ),
            False,
        ),
        (Call("ecs:RunTask", task_definition(f"{STACK}-agent"), cluster("Cluster")), False),
        # Starting tasks of canceled jobs, and stuck ones: StopTask and DescribeTasks take
        # the task resource type with ecs:cluster (the Service Authorization Reference for
        # ECS, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html)
        (Call("ecs:StopTask", task_in("Cluster"), cluster("Cluster")), True),
        (Call("ecs:DescribeTasks", task_in("Cluster"), cluster("Cluster")), True),
        (Call("ecs:StopTask", task_in("other"), cluster("other")), False),
        (Call("ecs:DescribeTasks", task_in("other"), cluster("other")), False),
        (Call("ecs:StopTask", task_in("Cluster"), cluster("other")), False),
    ],
)
def test_the_pollers_grants(cfn_template: Template, call: Call, allowed: bool) -> None:
    assert evaluate(role_policies(cfn_template, "PollerFunctionRole"), call).allowed is allowed


def test_an_existing_clusters_tasks_are_the_only_ones_the_poller_may_stop(
    cfn_template: Template,
) -> None:
    policies = role_policies(cfn_template, "PollerFunctionRole", ExistingClusterName="ci")
    assert evaluate(policies, Call("ecs:StopTask", task_in("ci"), cluster("ci"))).allowed
    refused = Call("ecs:StopTask", task_in("Cluster"), cluster("Cluster"))
    assert not evaluate(policies, refused).allowed


def test_the_provisioning_timeout_is_safe_by_default_and_reaches_the_poller(
    cfn_template: Template,
) -> None:
    # agent-stack-k8s's pod-pending-timeout is 15 minutes (docs/reference/stacks-api.md §6).
    parameter = cfn_template["Parameters"]["ProvisioningTimeoutSeconds"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (900, 60, 3600)
    env = cfn_template["Resources"]["PollerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["PROVISIONING_TIMEOUT_SECONDS"] == {"Ref": "ProvisioningTimeoutSeconds"}


# ------------------------------------------------------------------ the failure handler


@pytest.mark.parametrize(
    ("call", "allowed"),
    [
        (Call("sqs:ReceiveMessage", arn_of_queue("LaunchDeadLetterQueue")), True),
        (Call("sqs:ReceiveMessage", arn_of_queue("EventsDeadLetterQueue")), True),
        (Call("sqs:ReceiveMessage", arn_of_queue("LaunchQueue")), False),
        # its on-failure destination (docs/reference/aws.md §H.38)
        (Call("sqs:SendMessage", arn_of_queue("EventsDeadLetterQueue")), True),
        (Call("sqs:SendMessage", arn_of_queue("LaunchQueue")), False),
        (Call("ecs:RunTask", task_definition(f"{STACK}-agent"), cluster("Cluster")), False),
        (Call("ecs:StopTask", task_in("Cluster"), cluster("Cluster")), False),
        # a dead letter's job: a later launch's task, looked for in this cluster only
        (Call("ecs:DescribeTasks", task_in("Cluster"), cluster("Cluster")), True),
        (Call("ecs:DescribeTasks", task_in("other"), cluster("other")), False),
        (Call("ecs:ListTasks", container_instances_of("Cluster"), cluster("Cluster")), True),
        (Call("ecs:ListTasks", container_instances_of("other"), cluster("other")), False),
    ],
)
def test_the_failure_handlers_grants(cfn_template: Template, call: Call, allowed: bool) -> None:
    policies = role_policies(cfn_template, "FailureHandlerFunctionRole")
    assert evaluate(policies, call).allowed is allowed


# ------------------------------------------------------------------ what the world never exercises


def resource_policy(cfn: Template, logical: str, key: str) -> dict[str, dict[str, Any]]:
    params = parameter_values(cfn, ClusterTokenSecretArn=SECRET, AgentTokenSecretArn=SECRET)
    document = resolved(cfn["Resources"][logical]["Properties"][key], cfn, params)
    return {logical: document}


@pytest.mark.parametrize(
    ("caller", "source", "allowed"),
    [
        ({"Service": "events.amazonaws.com"}, "FailureHandlerFunctionTaskStopped", True),
        # another rule of the account may not dead-letter into it
        ({"Service": "events.amazonaws.com"}, "SomeoneElsesRule", False),
        ({"Service": "sns.amazonaws.com"}, "FailureHandlerFunctionTaskStopped", False),
    ],
)
def test_only_the_stacks_rule_dead_letters_into_the_events_dlq(
    cfn_template: Template, caller: dict[str, str], source: str, allowed: bool
) -> None:
    policy = resource_policy(cfn_template, "EventsDeadLetterQueuePolicy", "PolicyDocument")
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{source}"
    call = Call(
        "sqs:SendMessage", arn_of(cfn_template, "EventsDeadLetterQueue"), {"aws:SourceArn": (rule,)}
    )
    assert evaluate(policy, call, caller).allowed is allowed


@pytest.mark.parametrize(
    ("caller", "account", "allowed"),
    [
        ({"Service": "scheduler.amazonaws.com"}, ACCOUNT, True),
        # a schedule of another account (the confused deputy)
        ({"Service": "scheduler.amazonaws.com"}, "999999999999", False),
        ({"Service": "lambda.amazonaws.com"}, ACCOUNT, False),
    ],
)
def test_only_this_accounts_schedules_assume_the_schedule_role(
    cfn_template: Template, caller: dict[str, str], account: str, allowed: bool
) -> None:
    trust = resource_policy(cfn_template, "PollerScheduleRole", "AssumeRolePolicyDocument")
    call = Call(
        "sts:AssumeRole",
        arn_of(cfn_template, "PollerScheduleRole"),
        {"aws:SourceAccount": (account,)},
    )
    assert evaluate(trust, call, caller).allowed is allowed


@pytest.mark.parametrize(
    ("source_arn", "account", "allowed"),
    [
        (f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/Cluster/abc", ACCOUNT, True),
        (f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/Cluster/abc", ACCOUNT, False),
        (f"arn:aws:ecs:{REGION}:999999999999:task/Cluster/abc", "999999999999", False),
    ],
)
def test_only_ecs_in_this_account_and_region_assumes_the_task_role(
    cfn_template: Template, source_arn: str, account: str, allowed: bool
) -> None:
    # docs/reference/aws.md §H.31: aws:SourceArn and aws:SourceAccount on the task role
    trust = resource_policy(cfn_template, "AgentTaskRole", "AssumeRolePolicyDocument")
    context = {"aws:SourceArn": (source_arn,), "aws:SourceAccount": (account,)}
    call = Call("sts:AssumeRole", arn_of(cfn_template, "AgentTaskRole"), context)
    assert evaluate(trust, call, {"Service": "ecs-tasks.amazonaws.com"}).allowed is allowed
