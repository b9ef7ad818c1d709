"""The operator docs match the template: the generated configuration table is current, and
docs/security.md lists, role by role, exactly the statements the template grants."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.iam import (
    as_list,
    inline_statements_under_any_parameters,
    managed_policy_names,
    managed_policy_statements,
)
from tests.support.template import parameter_values
from tests.template.test_stack import (
    PARAMETER_SETS,
    SAMPLE_PARAMETERS,
    Template,
    props,
    resources,
)

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "tools/config_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_parameter_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    template = (ROOT / "template.yaml").read_text()
    params = template.split("\nParameters:\n", 1)[1].split("\nConditions:\n", 1)[0]
    names = [
        line.strip().rstrip(":")
        for line in params.splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert names
    for name in names:
        assert f"| `{name}` |" in text, name


# ------------------------------------------------ docs/security.md against the template

SECURITY = ROOT / "docs" / "security.md"
IAM_SECTION = "## IAM (least privilege)\n"
ACTION = re.compile(r"`([a-z0-9-]+:[A-Za-z0-9*]+)`")
NOT_A_RESOURCE_SECTION = {"What the tests assert"}


def _iam_sections() -> dict[str, list[list[str]]]:
    """The table rows (cells) under each ``### <logical id>`` heading of the IAM section."""
    text = SECURITY.read_text()
    body = text.split(IAM_SECTION, 1)[1].split("\n## ", 1)[0]
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in body.splitlines():
        if line.startswith("### "):
            current = sections.setdefault(line[4:].strip(), [])
        elif current is not None and line.startswith("|") and not line.startswith("| ---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if cells[1] != "Sid":  # the header row
                current.append(cells)
    return sections


def _documented(rows: list[list[str]]) -> dict[str, tuple[set[str], list[str]]]:
    """Sid (or ``managed <name>``) -> (actions, the row's cells)."""
    found: dict[str, tuple[set[str], list[str]]] = {}
    for cells in rows:
        sid_cell = cells[1]
        if sid_cell == "(none)":
            key = "(none)"
        elif sid_cell.startswith("managed "):
            key = "managed " + sid_cell.removeprefix("managed ").strip("`")
        else:
            key = sid_cell.strip("`")
        assert key not in found, f"{cells[0]}: {key} twice"
        found[key] = (set(ACTION.findall(cells[2])), cells)
    return found


def _statement_sid(role: str, statement: dict[str, Any]) -> str:
    sid = statement.get("Sid")
    assert sid, f"{role}: every statement has a Sid, so its row can be found: {statement}"
    return str(sid)


def test_the_iam_tables_cover_every_role_and_resource_policy_and_nothing_else(
    cfn_template: Template,
) -> None:
    sections = set(_iam_sections()) - NOT_A_RESOURCE_SECTION
    expected = {
        name
        for name, resource in cfn_template["Resources"].items()
        if resource["Type"]
        in {"AWS::IAM::Role", "AWS::SQS::QueuePolicy", "AWS::Lambda::Permission"}
    }
    assert sections == expected


def test_each_role_table_lists_exactly_what_the_role_grants(cfn_template: Template) -> None:
    """Both ways, statement by statement: every statement a deploy can create (conditional
    ones too) has a row with its Sid and its actions, a managed policy has a row with its
    document's actions, and every row is granted."""
    sections = _iam_sections()
    for role in resources(cfn_template, "AWS::IAM::Role"):
        rows = sections[role]
        assert all(cells[0] == role for cells in rows), role
        documented = _documented(rows)
        granted: dict[str, set[str]] = {}
        for under, statement in inline_statements_under_any_parameters(cfn_template, role):
            sid = _statement_sid(role, statement)
            granted[sid] = set(as_list(statement["Action"]))
            cells = documented.get(sid, (set(), []))[1]
            for condition in (c for c in under if not c.startswith("!")):
                assert f"with `{condition}`" in cells[4], (role, sid, condition)
            if as_list(statement["Resource"]) == ["*"]:
                assert cells and cells[3] == "`*`", (role, sid)
        names = {
            name
            for given in PARAMETER_SETS.values()
            for name in managed_policy_names(
                cfn_template, role, parameter_values(cfn_template, **SAMPLE_PARAMETERS, **given)
            )
        }
        for name in names:
            granted[f"managed {name}"] = {
                action for s in managed_policy_statements(name) for action in as_list(s["Action"])
            }
        if not granted:
            assert set(documented) == {"(none)"} and not documented["(none)"][0], role
            continue
        assert {k: v[0] for k, v in documented.items()} == granted, role


def test_each_resource_policy_table_lists_exactly_what_it_allows(cfn_template: Template) -> None:
    sections = _iam_sections()
    for name in resources(cfn_template, "AWS::SQS::QueuePolicy"):
        documented = _documented(sections[name])
        statements = props(cfn_template, name)["PolicyDocument"]["Statement"]
        granted = {_statement_sid(name, s): set(as_list(s["Action"])) for s in statements}
        assert {k: v[0] for k, v in documented.items()} == granted, name
    for name in resources(cfn_template, "AWS::Lambda::Permission"):
        documented = _documented(sections[name])
        assert {k: v[0] for k, v in documented.items()} == {
            "(none)": {props(cfn_template, name)["Action"]}
        }, name
