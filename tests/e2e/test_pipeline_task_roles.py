"""PipelineTaskRoles in the whole loop: a mapped pipeline's task role that the launcher may
not pass, or that ECS cannot assume, fails that job back at once with a reason naming
PipelineTaskRoles and the role, while the other jobs run as the stack's task role. (The
passable case is the default world's, tests/e2e/test_local_world.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from local.world import (
    DEPLOY_LABEL,
    DEPLOY_ROLE_NAME,
    DEPLOY_ROLE_PATH,
    PipelineRole,
)
from tests.e2e.test_iam_enforced import run_without

pytestmark = pytest.mark.slow

ROLE = f"arn:aws:iam::123456789012:role{DEPLOY_ROLE_PATH}{DEPLOY_ROLE_NAME}"


@pytest.mark.parametrize("mode", [PipelineRole.NOT_PASSABLE, PipelineRole.NOT_ASSUMABLE])
def test_a_pipeline_role_that_cannot_be_used_fails_its_job_back_naming_the_mapping(
    mode: str, tmp_path: Path
) -> None:
    report = run_without("", "", tmp_path, timeout=25, pipeline_role=mode)
    # Given the demo pipeline mapped to a role the launcher may not pass (the launcher's
    # mapping is not the template's) or that trusts Lambda, not ECS tasks
    deploy = next(j for j in report.jobs if j.label == DEPLOY_LABEL)
    # Then its job got no task and was failed back at once, the reason naming both
    assert deploy.task is None
    assert deploy.finished_by == "stack"
    assert deploy.exit_status == -1
    assert "PipelineTaskRoles" in (deploy.detail or "")
    assert ROLE in (deploy.detail or "")
    assert report.metrics.get("LaunchFailed[task_role_rejected]") == 1
    # and not retried: one RunTask for it, none left in the DLQ
    assert report.counts["dlq_left"] == 0
    # while the other job ran as the stack's own task role
    build = next(j for j in report.jobs if j.label == "build part 1")
    assert build.finished_by == "agent"
    assert build.task_role is not None and "AgentTaskRole" in build.task_role
    denied = {(e["caller"], e["action"], e["resource"]) for e in report.iam if not e["allowed"]}
    if mode == PipelineRole.NOT_PASSABLE:
        # IAM in the local world refused that role's PassRole, and only that
        assert denied == {("LauncherFunctionRole", "iam:PassRole", ROLE)}
    else:
        # IAM let it pass (it is mapped in the template); ECS could not assume it
        assert denied == set()
        assert report.violations == []
        assert "unable to assume the role" in (deploy.detail or "")
