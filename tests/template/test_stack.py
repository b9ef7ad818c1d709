"""Given the translated template, the properties the product's invariants rely on hold:
redrive to a DLQ, partial batch failures, one poller, least-privilege IAM, settings that
validate, and a dashboard body that is valid JSON once substituted."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from fargate_stack.settings import (
    FailureHandlerSettings,
    LauncherSettings,
    PollerSettings,
    load,
)
from local.aws_world import resolve_intrinsic
from tests.support.iam import (
    is_wildcard_resource,
    managed_policy_names,
    managed_policy_statements,
)
from tests.support.template import choose_branches, deployed_resources, parameter_values

ROOT = Path(__file__).resolve().parents[2]

Template = dict[str, Any]

SAMPLE_PARAMETERS = {
    "ClusterTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bk-AbCdEf",
    "AgentTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bk-AbCdEf",
    "Subnets": "subnet-0123456789abcdef0",
    "SecurityGroups": "sg-0123456789abcdef0",
}


def resources(cfn: Template, type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == type_name}


def props(cfn: Template, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cfn["Resources"][name]["Properties"]
    return result


def statements(
    cfn: Template, role: str, params: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The role's inline statements as a deploy with ``params`` (default: the defaults and
    SAMPLE_PARAMETERS) creates them: conditional policies resolved."""
    values = params or parameter_values(cfn, **SAMPLE_PARAMETERS)
    found: list[dict[str, Any]] = []
    for policy in choose_branches(props(cfn, role).get("Policies", []), cfn, values):
        found += policy["PolicyDocument"]["Statement"]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_function_is_python312_on_arm64(cfn_template: Template) -> None:
    functions = resources(cfn_template, "AWS::Lambda::Function")
    assert set(functions) == {"PollerFunction", "LauncherFunction", "FailureHandlerFunction"}
    for fn in functions.values():
        assert fn["Properties"]["Runtime"] == "python3.12"
        assert fn["Properties"]["Architectures"] == ["arm64"]
        assert fn["Properties"]["LoggingConfig"]["LogGroup"]


def test_log_groups_have_retention(cfn_template: Template) -> None:
    for group in resources(cfn_template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_launch_queue_redrives_to_a_dlq_and_outlasts_the_launcher(cfn_template: Template) -> None:
    queue = props(cfn_template, "LaunchQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["LaunchDeadLetterQueue", "Arn"]
    }
    timeout = props(cfn_template, "LauncherFunction")["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    # The DLQ itself parks what its consumer cannot parse instead of dropping it.
    dlq = props(cfn_template, "LaunchDeadLetterQueue")
    assert dlq["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ParkedQueue", "Arn"]}
    dlq_timeout = props(cfn_template, "FailureHandlerFunction")["Timeout"]
    assert dlq["VisibilityTimeout"] >= 3 * dlq_timeout


def test_sqs_consumers_report_partial_batch_failures(cfn_template: Template) -> None:
    mappings = resources(cfn_template, "AWS::Lambda::EventSourceMapping")
    assert set(mappings) == {
        "LauncherFunctionLaunches",
        "FailureHandlerFunctionGaveUp",
        "FailureHandlerFunctionEventRetries",
    }
    for mapping in mappings.values():
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    launcher = mappings["LauncherFunctionLaunches"]["Properties"]
    assert launcher["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "LauncherMaxConcurrency"}}


def test_failed_stop_events_are_retried_then_parked(cfn_template: Template) -> None:
    """Nothing the failure handler failed on waits for an operator unless it keeps failing."""
    mapping = props(cfn_template, "FailureHandlerFunctionEventRetries")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    queue = props(cfn_template, "EventsDeadLetterQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ParkedQueue", "Arn"]}
    timeout = props(cfn_template, "FailureHandlerFunction")["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    # Retried for about an hour (receives x visibility timeout) before parking.
    assert queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"] >= 3600


def test_one_poller_on_an_unnamed_schedule(cfn_template: Template) -> None:
    # One loop at a time comes from the lease in the ledger, not reserved concurrency
    # (tests/template/test_deploy_constraints.py checks that no function reserves any).
    poller = props(cfn_template, "PollerFunction")
    assert poller["Environment"]["Variables"]["LEASE_TABLE"] == {"Ref": "LaunchLedger"}
    (schedule,) = resources(cfn_template, "AWS::Scheduler::Schedule").values()
    assert "Name" not in schedule["Properties"]
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    invoke = props(cfn_template, "PollerFunctionEventInvokeConfig")
    assert invoke["MaximumEventAgeInSeconds"] <= 120


def test_task_stopped_rule_sees_only_this_stacks_stopped_tasks(cfn_template: Template) -> None:
    rule = props(cfn_template, "FailureHandlerFunctionTaskStopped")
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert pattern["detail"]["startedBy"] == [{"Ref": "StackKey"}]
    (target,) = rule["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target


def test_run_task_is_scoped_to_the_stacks_task_definition_and_cluster(
    cfn_template: Template,
) -> None:
    for allowed, families in (("", ["agent:*"]), ("node:*", ["agent:*", "step-*:*"])):
        params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, AllowedImages=allowed)
        run = [
            s
            for s in statements(cfn_template, "LauncherFunctionRole", params)
            if s["Action"] == "ecs:RunTask"
        ]
        (statement,) = run
        subs = [r["Fn::Sub"] for r in as_list(statement["Resource"])]
        assert subs == [
            "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/"
            f"${{AWS::StackName}}-{family}"
            for family in families
        ]
        assert "ecs:cluster" in statement["Condition"]["ArnEquals"]


def test_pass_role_only_for_the_two_task_roles_and_only_to_ecs_tasks(
    cfn_template: Template,
) -> None:
    found = []
    for role in resources(cfn_template, "AWS::IAM::Role"):
        found += [
            (role, s)
            for s in statements(cfn_template, role)
            if "iam:PassRole" in as_list(s["Action"])
        ]
    ((role, statement),) = found
    assert role == "LauncherFunctionRole"
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["AgentExecutionRole", "Arn"]},
        {"Fn::GetAtt": ["AgentTaskRole", "Arn"]},
    ]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


GIT_KEY = "arn:aws:secretsmanager:us-east-1:123456789012:secret:git-deploy-key-AbCdEf"
GIT_CREDS = "arn:aws:secretsmanager:us-east-1:123456789012:secret:git-credentials-AbCdEf"


@pytest.mark.parametrize("git_creds", ["", GIT_CREDS])
@pytest.mark.parametrize("git_key", ["", GIT_KEY])
@pytest.mark.parametrize("mode", ["job-acquisition-token", "agent-token"])
def test_secrets_are_readable_only_by_who_needs_them(
    cfn_template: Template, mode: str, git_key: str, git_creds: str
) -> None:
    values = parameter_values(
        cfn_template,
        **SAMPLE_PARAMETERS,
        AgentTokenMode=mode,
        GitSshKeySecretArn=git_key,
        GitCredentialsSecretArn=git_creds,
    )
    readers: dict[str, list[Any]] = {}
    for role in resources(cfn_template, "AWS::IAM::Role"):
        for s in statements(cfn_template, role, values):
            if "secretsmanager:GetSecretValue" in as_list(s["Action"]):
                readers.setdefault(role, []).append(s["Resource"])
    functions = {"PollerFunctionRole", "LauncherFunctionRole", "FailureHandlerFunctionRole"}
    # With job acquisition tokens no task reads a token secret (issue #13).
    # The git SSH key: the task execution role reads it for the task definition's secrets.
    task_secrets = [{"Ref": "AgentTokenSecretArn"}] if mode == "agent-token" else []
    task_secrets += [{"Ref": "GitSshKeySecretArn"}] if git_key else []
    task_secrets += [{"Ref": "GitCredentialsSecretArn"}] if git_creds else []
    tasks = {"AgentExecutionRole"} if task_secrets else set()
    assert set(readers) == functions | tasks
    if tasks:
        assert readers["AgentExecutionRole"] == task_secrets
    for role in functions:
        assert readers[role] == [{"Ref": "ClusterTokenSecretArn"}]
    # The job's own code (task role) can read nothing.
    assert statements(cfn_template, "AgentTaskRole", values) == []


# Actions with no resource type in the Service Authorization Reference: IAM takes only "*"
# for them, so "*" names nothing broader.
NO_RESOURCE_TYPE = {
    "ecr:GetAuthorizationToken",  # docs/reference/aws.md §H.9, §H.36
    "xray:PutTraceSegments",  # docs/reference/aws.md §H.36
    "xray:PutTelemetryRecords",  # docs/reference/aws.md §H.36
    # AllowedImages' task definitions: docs/reference/aws.md §B.9
    "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitionFamilies",
    "ecs:ListTaskDefinitions",
    "ecs:DeregisterTaskDefinition",
}
# No role has a managed policy. The task execution role's AmazonECSTaskExecutionRolePolicy
# (ECR pulls and log writes on "*", docs/reference/aws.md §H.9) was replaced by inline
# statements for the agent's log group and the named repositories (issue #14). Any managed
# policy, on any role, fails the tests below.
ALLOWED_MANAGED_POLICIES: set[tuple[str, str]] = set()
# Deploys that between them take every conditional statement (X-Ray, the KMS key, each image
# cache mode, an existing cluster).
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PARAMETER_SETS = {
    "defaults": {},
    "traced, KMS, existing cluster and cache": {
        "Tracing": "Active",
        "SecretsKmsKeyArn": KEY,
        "ExistingClusterName": "ci",
        "AgentImageCache": "existing",
        "AgentImageCachePrefix": "ecr-public",
    },
    "no image cache, an override from a named repository": {
        "AgentImageCache": "off",
        "AgentImageOverride": "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1",
        "PrivateImageRepositoryArns": "arn:aws:ecr:us-east-1:123456789012:repository/agent",
    },
    "step images allowed, a Docker Hub cache": {
        "AllowedImages": "node:*,public.ecr.aws/docker/library/*",
        "DockerHubCacheSecretArn": (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbCdEf"
        ),
    },
}


def granted_statements(
    cfn: Template, role: str, params: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement ``role`` holds in a deploy with ``params``:
    its inline ones, then those of each managed policy, resolved to its document."""
    found = [("inline", s) for s in statements(cfn, role, params)]
    for name in managed_policy_names(cfn, role, params):
        found += [(f"managed {name}", s) for s in managed_policy_statements(name)]
    return found


@pytest.mark.parametrize("given", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_no_wildcard_resource_without_a_cluster_condition(
    cfn_template: Template, given: dict[str, str]
) -> None:
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, **given)
    for role in resources(cfn_template, "AWS::IAM::Role"):
        for where, s in granted_statements(cfn_template, role, params):
            if where.startswith("managed ") and (role, where[8:]) in ALLOWED_MANAGED_POLICIES:
                continue  # allow-listed above, until issue #14
            if not is_wildcard_resource(s) or s.get("Effect") != "Allow":
                continue
            actions = set(as_list(s["Action"]))
            if actions <= NO_RESOURCE_TYPE:
                continue
            assert actions <= {"ecs:ListTasks", "ecs:DescribeTasks"}, (role, where, s)
            assert "ecs:cluster" in s["Condition"]["ArnEquals"], (role, where, s)


@pytest.mark.parametrize("given", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_no_managed_policy_but_the_allow_listed_one(
    cfn_template: Template, given: dict[str, str]
) -> None:
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, **given)
    attached = {
        (role, name)
        for role in resources(cfn_template, "AWS::IAM::Role")
        for name in managed_policy_names(cfn_template, role, params)
    }
    assert attached <= ALLOWED_MANAGED_POLICIES, attached - ALLOWED_MANAGED_POLICIES


def test_the_launcher_cannot_list_or_describe_tasks(cfn_template: Template) -> None:
    """A redelivery relies on RunTask's client token, not on a scan of the stack's tasks."""
    for s in statements(cfn_template, "LauncherFunctionRole"):
        assert not {"ecs:ListTasks", "ecs:DescribeTasks"} & set(as_list(s["Action"])), s


@pytest.mark.parametrize("mode", ["job-acquisition-token", "agent-token"])
@pytest.mark.parametrize("given", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_no_role_the_stack_passes_to_a_task_can_describe_tasks(
    cfn_template: Template, given: dict[str, str], mode: str
) -> None:
    """DescribeTasks echoes RunTask's overrides, so the jobs' acquisition tokens
    (docs/reference/aws.md §H.44): no task of the queue may read another's."""
    params = parameter_values(cfn_template, **SAMPLE_PARAMETERS, **given, AgentTokenMode=mode)
    passed = {
        arn["Fn::GetAtt"][0]
        for s in statements(cfn_template, "LauncherFunctionRole", params)
        if "iam:PassRole" in as_list(s["Action"])
        for arn in as_list(s["Resource"])
        if isinstance(arn, dict) and "Fn::GetAtt" in arn
    }
    assert {"AgentTaskRole", "AgentExecutionRole"} <= passed
    for role in passed:
        for where, s in granted_statements(cfn_template, role, params):
            actions = as_list(s.get("Action", []))
            # IAM action names are case-insensitive
            assert not any(fnmatch.fnmatchcase("ecs:describetasks", a.lower()) for a in actions), (
                role,
                where,
            )
            assert "NotAction" not in s, (role, where)


def test_the_launcher_timeout_is_the_one_its_crash_logic_assumes(cfn_template: Template) -> None:
    default = LauncherSettings.model_fields["launcher_timeout_seconds"].default
    assert props(cfn_template, "LauncherFunction")["Timeout"] == default


@pytest.mark.parametrize("mode", ["job-acquisition-token", "agent-token"])
def test_no_task_definition_holds_a_token_but_the_agent_tokens_secret(
    cfn_template: Template, mode: str
) -> None:
    values = parameter_values(cfn_template, **SAMPLE_PARAMETERS, AgentTokenMode=mode)
    task = deployed_resources(cfn_template, values)["AgentTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    # Never a token in the plain environment of the definition
    env_names = {e["Name"] for e in container["Environment"]}
    assert "BUILDKITE_AGENT_TOKEN" not in env_names
    if mode == "agent-token":
        # the agent token only from its secret
        assert container["Secrets"] == [
            {"Name": "BUILDKITE_AGENT_TOKEN", "ValueFrom": {"Ref": "AgentTokenSecretArn"}}
        ]
    else:
        # the default: no secret at all; the launcher passes each task its job's JAT
        assert "Secrets" not in container


def test_job_acquisition_tokens_are_the_default(cfn_template: Template) -> None:
    assert cfn_template["Parameters"]["AgentTokenMode"]["Default"] == "job-acquisition-token"
    env = props(cfn_template, "LauncherFunction")["Environment"]["Variables"]
    assert env["AGENT_TOKEN_MODE"] == {"Ref": "AgentTokenMode"}


@pytest.mark.parametrize(
    ("function", "model"),
    [
        ("PollerFunction", PollerSettings),
        ("LauncherFunction", LauncherSettings),
        ("FailureHandlerFunction", FailureHandlerSettings),
    ],
)
def test_the_template_sets_every_setting_a_function_needs(
    cfn_template: Template, monkeypatch: pytest.MonkeyPatch, function: str, model: type[Any]
) -> None:
    params = {k: str(v.get("Default", "")) for k, v in cfn_template["Parameters"].items()}
    params |= SAMPLE_PARAMETERS
    env = props(cfn_template, function)["Environment"]["Variables"]
    # Resources stand in by a name, as CloudFormation would give them one.
    physical = {name: f"{name}-physical-id" for name in cfn_template["Resources"]}
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, resolve_intrinsic(value, cfn_template, params, physical))
    settings = load(model)
    assert settings.stack_key == "fargate"


def test_dashboard_body_is_valid_json_after_substitution(cfn_template: Template) -> None:
    body, variables = props(cfn_template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}!]+)\}", body))
    known = set(cfn_template["Parameters"]) | set(variables) | set(cfn_template["Resources"])
    assert names - known <= {"AWS::Region"}, names - known
    substituted = re.sub(r"\$\{([^}!]+)\}", lambda m: f"sub-{m.group(1)}", body)
    dashboard = json.loads(substituted)
    assert dashboard["widgets"]
    for widget in dashboard["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        assert widget["type"] in {"metric", "text"}
    titles = " ".join(w["properties"].get("title", "") for w in dashboard["widgets"])
    for must in ("latency", "queue", "Lambda errors", "failures", "Running tasks", "funnel"):
        assert must in titles


def test_alarms_cover_the_runbook(cfn_template: Template) -> None:
    alarms = resources(cfn_template, "AWS::CloudWatch::Alarm")
    assert {
        "DeadLetterAlarm",
        "PollerErrorsAlarm",
        "PollerNotRunningAlarm",
        "LaunchFailureRateAlarm",
        "OldestLaunchAlarm",
        "EventsDeadLetterAlarm",
    } <= set(alarms)
    runbook = (ROOT / "docs" / "operations.md").read_text()
    for alarm in alarms.values():
        description = alarm["Properties"]["AlarmDescription"]
        anchor = description.split("docs/operations.md#", 1)[1].rstrip(").")
        assert f"### {anchor}\n" in runbook, anchor


def test_a_stopped_event_the_failure_handler_fails_on_is_kept_not_dropped(
    cfn_template: Template,
) -> None:
    """Lambda drops an asynchronous event after its retries unless a destination keeps it;
    the chaos soak's Buildkite outages made that visible."""
    config = resources(cfn_template, "AWS::Lambda::EventInvokeConfig")
    (handler,) = [c for c in config.values() if "FailureHandler" in str(c)]
    on_failure = handler["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert on_failure == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}


def test_every_checkov_skip_is_justified_on_its_resource(cfn_template: Template) -> None:
    """make security runs checkov on this translated template; a skip without a reason, or
    one SAM dropped in translation, would hide a finding silently."""
    skipped = {
        name: resource["Metadata"]["checkov"]["skip"]
        for name, resource in cfn_template["Resources"].items()
        if "checkov" in resource.get("Metadata", {})
    }
    assert {"PollerFunction", "LauncherFunction", "FailureHandlerFunction"} <= set(skipped)
    for name, skips in skipped.items():
        for skip in skips:
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
            assert len(skip["comment"]) > 40, (name, skip)


def test_the_agent_log_group_takes_an_optional_kms_key(cfn_template: Template) -> None:
    group = props(cfn_template, "AgentLogGroup")
    assert group["KmsKeyId"] == {
        "Fn::If": ["AgentLogEncrypted", {"Ref": "AgentLogKmsKeyArn"}, {"Ref": "AWS::NoValue"}]
    }
    parameter = cfn_template["Parameters"]["AgentLogKmsKeyArn"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "")
    assert re.fullmatch(
        parameter["AllowedPattern"], "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd"
    )
    assert not re.fullmatch(parameter["AllowedPattern"], "alias/mine")
