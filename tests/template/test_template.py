"""Given the real template.yaml, when the real SAM translator and cfn-lint run on it,
then it translates, lints without errors and has the properties the product relies on."""

from __future__ import annotations

from typing import Any

from fargate_stack.domain.task_logs import AGENT_LOG_STREAM_PREFIX
from local.template import ROOT, translate
from tests.support.template import lint


def _of_type(cfn: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == type_name}


def test_translates_to_plain_cloudformation(cfn_template: dict[str, Any]) -> None:
    assert "Transform" not in cfn_template
    assert not any(
        r["Type"].startswith("AWS::Serverless::") for r in cfn_template["Resources"].values()
    )


def test_cfn_lint_reports_no_errors(cfn_lint_matches: list[Any]) -> None:
    # W1020 ("Sub isn't needed") is a known artefact of the translator's constant Subs.
    errors = [m for m in cfn_lint_matches if str(m.rule.id).startswith("E")]
    assert errors == [], "\n".join(str(m) for m in errors)


def test_cfn_lint_catches_a_broken_template(sam_template: dict[str, Any]) -> None:
    """Proves the lint fixture can fail: a bad runtime must be reported."""
    broken = {**sam_template, "Resources": dict(sam_template["Resources"])}
    layer = dict(broken["Resources"]["StackCoreLayer"])
    layer["Properties"] = {**layer["Properties"], "CompatibleRuntimes": ["python3.99"]}
    broken["Resources"]["StackCoreLayer"] = layer
    ids = {str(m.rule.id) for m in lint(translate(broken))}
    assert any(i.startswith("E") for i in ids), ids


def test_layer_targets_python312_on_arm64(
    sam_template: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    layer = sam_template["Resources"]["StackCoreLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    (cfn_layer,) = _of_type(cfn_template, "AWS::Lambda::LayerVersion").values()
    assert cfn_layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert cfn_layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_layer_content_holds_the_package_and_its_pins(sam_template: dict[str, Any]) -> None:
    content = ROOT / sam_template["Resources"]["StackCoreLayer"]["Properties"]["ContentUri"]
    assert (content / "requirements.txt").is_file()
    assert "build-StackCoreLayer:" in (content / "Makefile").read_text()
    assert (content / "fargate_stack" / "__init__.py").is_file()
    # sam build adds python/ itself; a python/ folder here would end up as python/python/.
    assert not (content / "python").exists()


def test_a_relisted_job_is_always_reserved_later_than_the_launchers_lock(
    sam_template: dict[str, Any],
) -> None:
    """The launcher reads the fallback mark only for a redelivery or a job reserved more
    than its timeout (less 5 s) after it was scheduled; a job re-listed after its
    reservation expired was reserved again at least ReservationExpirySeconds after, so the
    shortest reservation must outlast the launcher's timeout (usecases/launch.py)."""
    launcher = sam_template["Resources"]["LauncherFunction"]["Properties"]
    shortest_reservation = sam_template["Parameters"]["ReservationExpirySeconds"]["MinValue"]
    assert launcher["Timeout"] - 5 < shortest_reservation


def test_failjob_log_links_name_the_agents_real_stream(sam_template: dict[str, Any]) -> None:
    """The failure handler builds job/<container>/<task id> links: the prefix, the container
    and the group must be the agent container's own (domain/task_logs.py)."""
    resources = sam_template["Resources"]
    (agent,) = resources["AgentTaskDefinition"]["Properties"]["ContainerDefinitions"]
    options = agent["LogConfiguration"]["Options"]
    assert options["awslogs-stream-prefix"] == AGENT_LOG_STREAM_PREFIX
    assert options["awslogs-group"] == {"Ref": "AgentLogGroup"}
    common = sam_template["Globals"]["Function"]["Environment"]["Variables"]
    assert agent["Name"] == common["AGENT_CONTAINER_NAME"]
    handler = resources["FailureHandlerFunction"]["Properties"]["Environment"]["Variables"]
    assert handler["AGENT_LOG_GROUP"] == {"Ref": "AgentLogGroup"}
