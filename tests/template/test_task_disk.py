"""Given DefaultEphemeralStorageGiB, when the template deploys, then the task definition
asks Fargate for that disk, or for nothing at 20 GiB (Fargate's default, and not a value
EphemeralStorage takes: 21-200 GiB, docs/reference/aws.md §B.5), and the launcher knows
the default it names in its reasons."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.aws_world import resolve_intrinsic
from tests.support.template import deployed_resources, parameter_values


@pytest.mark.parametrize(("given", "storage"), [("20", None), ("21", 21), ("200", 200)])
def test_the_task_definition_sets_ephemeral_storage_only_beyond_the_default(
    cfn_template: dict[str, Any], given: str, storage: int | None
) -> None:
    params = parameter_values(cfn_template, DefaultEphemeralStorageGiB=given)
    task = deployed_resources(cfn_template, params)["AgentTaskDefinition"]["Properties"]
    if storage is None:
        assert "EphemeralStorage" not in task
    else:
        size = task["EphemeralStorage"]["SizeInGiB"]
        assert int(resolve_intrinsic(size, cfn_template, params, {})) == storage


def test_the_parameter_takes_fargates_range_and_defaults_to_fargates_default(
    cfn_template: dict[str, Any],
) -> None:
    spec = cfn_template["Parameters"]["DefaultEphemeralStorageGiB"]
    assert spec["Type"] == "String" and spec["Default"] == "20"
    # whole GiB only: a Number with MinValue/MaxValue would take 30.5 or 020
    pattern = re.compile(spec["AllowedPattern"])
    assert [v for v in ("20", "21", "99", "100", "200") if not pattern.fullmatch(v)] == []
    assert [v for v in ("19", "201", "30.5", "020", "", "0") if pattern.fullmatch(v)] == []


def test_the_launcher_gets_the_default(cfn_template: dict[str, Any]) -> None:
    env = cfn_template["Resources"]["LauncherFunction"]["Properties"]["Environment"]["Variables"]
    assert env["DEFAULT_EPHEMERAL_STORAGE_GIB"] == {"Ref": "DefaultEphemeralStorageGiB"}
