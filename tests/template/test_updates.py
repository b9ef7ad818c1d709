"""Updating a running stack loses nothing: checked on the translated template.

CloudFormation deletes a resource it replaces, and one a template change removes, unless the
resource's UpdateReplacePolicy / DeletionPolicy says Retain; both attributes apply to any
resource type (docs/reference/aws.md §H.25:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatereplacepolicy.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
Which properties replace a resource is each type's "Update requires: Replacement", the
createOnlyProperties of its CloudFormation registry schema, which cfn-lint ships
(docs/reference/aws.md §H.27). A replaced task definition is a new revision and, without
Retain, the old one is deregistered: ECS runs no new task from it
(docs/reference/aws.md §H.26).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.template.test_stack import Template, resources

# The policy chosen for each stateful resource (docs/deploy.md#updating-a-running-stack).
# (DeletionPolicy, UpdateReplacePolicy)
POLICIES: dict[str, tuple[str, str]] = {
    # Removed when ExistingClusterName is set, with tasks maybe still running jobs.
    "Cluster": ("Retain", "Retain"),
    # A replacement would drop reserved jobs; the stack's deletion lets them expire.
    "LaunchQueue": ("Delete", "Retain"),
    # Dead letters and parked records an operator must still see.
    "LaunchDeadLetterQueue": ("Retain", "Retain"),
    "EventsDeadLetterQueue": ("Retain", "Retain"),
    "ParkedQueue": ("Retain", "Retain"),
    # Which jobs were launched: a replacement would forget them.
    "LaunchLedger": ("Delete", "Retain"),
    # The old revision stays ACTIVE for launches in flight during the update.
    "AgentTaskDefinition": ("Delete", "Retain"),
    "AgentLogGroup": ("Delete", "Retain"),
    "PollerLogGroup": ("Delete", "Retain"),
    "LauncherLogGroup": ("Delete", "Retain"),
    "FailureHandlerLogGroup": ("Delete", "Retain"),
}

STATEFUL_TYPES = (
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::ECS::Cluster",
    "AWS::ECS::TaskDefinition",
    "AWS::Logs::LogGroup",
)
# Types whose replacement would drop state: no parameter may reach what replaces them.
NO_PARAMETER_REPLACES = ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup")
# The DynamoDB reference also lists these as replacing the table
# (docs/reference/aws.md §H.27); the registry schema does not mark them create-only.
EXTRA_REPLACING = {"AWS::DynamoDB::Table": ("KeySchema", "AttributeDefinitions")}


def replacing_properties(type_name: str) -> set[str]:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", type_name).schema
    create_only = {p.split("/")[2] for p in schema.get("createOnlyProperties", [])}
    return create_only | set(EXTRA_REPLACING.get(type_name, ()))


def parameter_refs(value: Any, parameters: set[str]) -> Iterator[str]:
    """Every template parameter a property's value refers to (Ref, or ${Name} in a Sub)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            yield value["Ref"]
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, names = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            yield from (p for p in parameters if f"${{{p}}}" in text and p not in names)
        for item in value.values():
            yield from parameter_refs(item, parameters)
    elif isinstance(value, list):
        for item in value:
            yield from parameter_refs(item, parameters)


def test_every_stateful_resource_has_its_chosen_policies(cfn_template: Template) -> None:
    stateful = {name for type_name in STATEFUL_TYPES for name in resources(cfn_template, type_name)}
    # Every stateful resource has a decision, and each decision names one of them.
    assert stateful == set(POLICIES)
    for name, (deletion, replace) in POLICIES.items():
        resource = cfn_template["Resources"][name]
        assert resource.get("DeletionPolicy") == deletion, name
        assert resource.get("UpdateReplacePolicy") == replace, name


def test_a_resource_a_parameter_can_remove_is_retained(cfn_template: Template) -> None:
    # A condition that a parameter turns false removes its resources at the next update:
    # CloudFormation then applies their DeletionPolicy.
    conditional = {
        name: r
        for name, r in cfn_template["Resources"].items()
        if "Condition" in r and r["Type"] in STATEFUL_TYPES
    }
    assert "Cluster" in conditional
    for name, resource in conditional.items():
        assert resource.get("DeletionPolicy") == "Retain", name


@pytest.mark.parametrize("type_name", NO_PARAMETER_REPLACES)
def test_no_parameter_reaches_a_property_that_replaces_state(
    cfn_template: Template, type_name: str
) -> None:
    parameters = set(cfn_template["Parameters"])
    replacing = replacing_properties(type_name)
    assert replacing, type_name
    found = resources(cfn_template, type_name)
    assert found, type_name
    for name, resource in found.items():
        for prop in replacing & set(resource.get("Properties", {})):
            refs = sorted(set(parameter_refs(resource["Properties"][prop], parameters)))
            assert refs == [], f"{name}.{prop} is replaced when {refs} change"


def test_the_walk_finds_parameters_in_refs_and_subs() -> None:
    params = {"StackKey", "Other"}
    assert list(parameter_refs({"Fn::Sub": "/x/${StackKey}/agent"}, params)) == ["StackKey"]
    assert list(parameter_refs({"Fn::Sub": "/x/${AWS::StackName}/agent"}, params)) == []
    assert list(parameter_refs([{"Fn::Join": [",", [{"Ref": "Other"}]]}], params)) == ["Other"]
    assert replacing_properties("AWS::SQS::Queue") >= {"QueueName", "FifoQueue"}
    assert "LogGroupName" in replacing_properties("AWS::Logs::LogGroup")
    assert "TableName" in replacing_properties("AWS::DynamoDB::Table")


def test_the_task_definition_is_replaced_by_the_common_changes(cfn_template: Template) -> None:
    # Why it keeps its old revisions: the agent image, size and architecture parameters all
    # reach properties that replace it.
    (task,) = resources(cfn_template, "AWS::ECS::TaskDefinition").values()
    replacing = replacing_properties("AWS::ECS::TaskDefinition")
    params = set(cfn_template["Parameters"])
    reached = {
        p
        for prop in replacing & set(task["Properties"])
        for p in parameter_refs(task["Properties"][prop], params)
    }
    assert {"AgentImage", "DefaultCpu", "DefaultMemory", "CpuArchitecture"} <= reached
    assert task["UpdateReplacePolicy"] == "Retain"
