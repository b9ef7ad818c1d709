"""Given Plugins and AllowedPlugins, when the template deploys, then the agent container's
environment carries the agent's own plugin controls, BUILDKITE_NO_PLUGINS and
BUILDKITE_ALLOWED_PLUGINS, and by default neither (any plugin, as before). The agent checks
them from its own configuration before a job runs (docs/reference/aws.md §A.10)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.aws_world import resolve_intrinsic
from tests.support.template import deployed_resources, parameter_values

BUILDKITE_PLUGINS = r"^github\.com/buildkite-plugins/.*$"


def agent_env(cfn: dict[str, Any], **given: str) -> dict[str, str]:
    params = parameter_values(cfn, **given)
    task = deployed_resources(cfn, params)["AgentTaskDefinition"]["Properties"]
    (agent,) = task["ContainerDefinitions"]
    return {e["Name"]: resolve_intrinsic(e["Value"], cfn, params, {}) for e in agent["Environment"]}


def test_by_default_the_agent_loads_any_plugin(cfn_template: dict[str, Any]) -> None:
    env = agent_env(cfn_template)
    assert "BUILDKITE_NO_PLUGINS" not in env
    assert "BUILDKITE_ALLOWED_PLUGINS" not in env


def test_plugins_off_sets_the_agents_no_plugins(cfn_template: dict[str, Any]) -> None:
    assert agent_env(cfn_template, Plugins="off")["BUILDKITE_NO_PLUGINS"] == "true"


@pytest.mark.parametrize("patterns", [BUILDKITE_PLUGINS, f"{BUILDKITE_PLUGINS},^/plugins/.*"])
def test_an_allow_list_reaches_the_agent_as_given(
    cfn_template: dict[str, Any], patterns: str
) -> None:
    env = agent_env(cfn_template, AllowedPlugins=patterns)
    assert env["BUILDKITE_ALLOWED_PLUGINS"] == patterns
    # each pattern is a regular expression the agent can compile (it stops on one it cannot)
    for pattern in patterns.split(","):
        re.compile(pattern)
