"""What AWS would refuse at the first real deploy, checked on the translated template.

moto and cfn-lint accept each of these; the public sources below do not. Every test names
the rule it holds the template to (docs/reference/aws.md §H has the sources).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fargate_stack.aws.lease import LEASE_KEY
from tests.template.test_stack import Template, as_list, props, resources, statements

# PutMetricAlarm: metric math ids start with a lower-case letter and hold letters, digits and
# underscores; exactly one item is what the alarm watches (ReturnData true). API reference:
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDataQuery.html
METRIC_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


def alarm_queries(cfn: Template) -> dict[str, list[dict[str, Any]]]:
    return {
        name: alarm["Properties"]["Metrics"]
        for name, alarm in resources(cfn, "AWS::CloudWatch::Alarm").items()
        if "Metrics" in alarm["Properties"]
    }


def expression_text(query: dict[str, Any]) -> str:
    expression = query.get("Expression", "")
    return json.dumps(expression)  # a !Sub is a dict: its text is still searched


def test_no_alarm_uses_a_search_expression(cfn_template: Template) -> None:
    # docs/reference/aws.md §H.1: "You can't create an alarm based on the SEARCH expression".
    # Given every alarm with metric math, then none of its expressions searches
    queries = alarm_queries(cfn_template)
    assert "LaunchFailureRateAlarm" in queries
    for name, metrics in queries.items():
        for query in metrics:
            assert "SEARCH" not in expression_text(query).upper(), (name, query["Id"])


def test_alarm_metric_math_follows_put_metric_alarm(cfn_template: Template) -> None:
    for name, metrics in alarm_queries(cfn_template).items():
        alarm = props(cfn_template, name)
        # Metrics replaces the single-metric fields; both at once is a validation error.
        assert not {"MetricName", "Namespace", "Statistic", "Period"} & set(alarm), name
        watched = [q for q in metrics if q.get("ReturnData", True)]
        assert len(watched) == 1, f"{name}: exactly one query returns data"
        for query in metrics:
            assert METRIC_ID.match(query["Id"]), (name, query["Id"])
            assert ("MetricStat" in query) != ("Expression" in query), (name, query["Id"])
            if "MetricStat" in query:
                # An alarm's period is 10, 30 or a multiple of 60 seconds.
                assert query["MetricStat"]["Period"] % 60 == 0, (name, query["Id"])


def test_the_failure_rate_alarm_watches_what_the_launcher_publishes(
    cfn_template: Template,
) -> None:
    # Given the alarm's two metrics, then each is the launcher's undimensioned total: the
    # namespace and service the launcher's environment sets, and the stack dimension only.
    launcher_env = props(cfn_template, "LauncherFunction")["Environment"]["Variables"]
    globals_env = props(cfn_template, "PollerFunction")["Environment"]["Variables"]
    namespace = launcher_env.get("POWERTOOLS_METRICS_NAMESPACE") or globals_env.get(
        "POWERTOOLS_METRICS_NAMESPACE"
    )
    for query in props(cfn_template, "LaunchFailureRateAlarm")["Metrics"]:
        if "MetricStat" not in query:
            continue
        metric = query["MetricStat"]["Metric"]
        assert metric["Namespace"] == namespace
        assert metric["MetricName"] in {"LaunchFailed", "TasksLaunched"}
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims == {
            "service": launcher_env["POWERTOOLS_SERVICE_NAME"],
            "stack": {"Ref": "StackKey"},
        }


def test_every_dashboard_expression_has_an_id(cfn_template: Template) -> None:
    # PutDashboard: an expression in a metric widget needs an "id" (dashboard body structure,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).
    # Dashboards may SEARCH; alarms may not.
    body, _ = props(cfn_template, "Dashboard")["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(re.sub(r"\$\{([^}!]+)\}", lambda m: f"sub-{m.group(1)}", body))
    for widget in dashboard["widgets"]:
        ids: list[str] = []
        for row in widget["properties"].get("metrics", []):
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    assert METRIC_ID.match(item.get("id", "")), item
                    ids.append(item["id"])
        assert len(ids) == len(set(ids)), widget["properties"]["title"]


def redrive_bound(cfn: Template, queue: dict[str, Any]) -> int:
    """The most receives a queue's redrive policy allows, over its parameter's whole range."""
    count = queue["RedrivePolicy"]["maxReceiveCount"]
    if isinstance(count, dict):
        return int(cfn["Parameters"][count["Ref"]]["MaxValue"])
    return int(count)


def test_every_redriven_message_reaches_its_dlq_before_it_expires(cfn_template: Template) -> None:
    # docs/reference/aws.md §C.3: retention counts from the first enqueue, so it must cover
    # every receive the redrive allows; a standard DLQ keeps the original timestamp, so it
    # keeps messages at least as long as its source.
    queues = resources(cfn_template, "AWS::SQS::Queue")
    redriven = {name: q["Properties"] for name, q in queues.items()}
    redriven = {name: q for name, q in redriven.items() if "RedrivePolicy" in q}
    assert {"LaunchQueue", "LaunchDeadLetterQueue", "EventsDeadLetterQueue"} <= set(redriven)
    for name, queue in redriven.items():
        retention = queue.get("MessageRetentionPeriod", 345600)  # SQS's default: 4 days
        receives = redrive_bound(cfn_template, queue)
        visibility = queue.get("VisibilityTimeout", 30)
        assert retention >= receives * visibility, (name, retention, receives, visibility)
        dlq = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        dlq_retention = queues[dlq]["Properties"].get("MessageRetentionPeriod", 345600)
        assert dlq_retention >= retention, (name, dlq)


def test_no_function_reserves_concurrency(cfn_template: Template) -> None:
    # docs/reference/aws.md §H.2: a reservation must leave 100 unreserved, so on a new
    # account (quota 10) any reservation fails the deploy.
    for name, function in resources(cfn_template, "AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" not in function["Properties"], name


def test_the_poller_may_write_only_its_lease_in_the_ledger(cfn_template: Template) -> None:
    role = "PollerFunctionRole"  # the role SAM generates for the function
    granted = [
        s
        for s in statements(cfn_template, role)
        if any(str(a).startswith("dynamodb:") for a in as_list(s.get("Action", [])))
    ]
    (lease,) = granted
    assert lease["Action"] == "dynamodb:UpdateItem"
    assert lease["Resource"] == {"Fn::GetAtt": ["LaunchLedger", "Arn"]}
    keys = lease["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    assert keys == [LEASE_KEY]
