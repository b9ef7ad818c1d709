"""IAM is enforced in the local world (docs/local.md, "IAM"): each function runs as its own
role, and taking one grant away makes the world fail with AccessDenied where AWS would.

Each case removes one action from one role of the stack as created from template.yaml,
runs a small world, and checks that moto's process denied exactly that call and what
became of the jobs. The full world's own run (tests/e2e/test_local_world.py) checks the
other side: nothing denied, and each call made as the role of the function that made it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from local.outcome import WorldReport
from local.world import PipelineRole, World, WorldOptions

pytestmark = pytest.mark.slow


def run_without(
    role: str,
    action: str,
    out: Path,
    timeout: float,
    mode: str = "job-acquisition-token",
    pipeline_role: str = PipelineRole.PASSABLE,
) -> WorldReport:
    """A small world with ``action`` taken from ``role`` (an empty role takes nothing), and
    the demo pipeline's own task role as ``pipeline_role`` says (local.world.PipelineRole)."""
    opts = WorldOptions(
        agent_token_mode=mode,
        jobs=1,
        timeout=timeout,
        pause_seconds=0.5,
        overlapping_poller=False,
        launcher_concurrency=1,
        out_dir=out,
        iam_without=((role, action),) if role else (),
        pipeline_role=pipeline_role,
    )
    return World(opts, io.StringIO()).run()


def denied(report: WorldReport) -> set[tuple[str, str]]:
    return {(e["caller"], e["action"]) for e in report.iam if not e["allowed"]}


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("LauncherFunctionRole", "ecs:RunTask"),
        ("LauncherFunctionRole", "iam:PassRole"),
        ("LauncherFunctionRole", "ecs:TagResource"),
    ],
)
def test_a_launcher_that_may_not_start_the_task_starts_none_and_fails_the_job_back(
    role: str, action: str, tmp_path: Path
) -> None:
    # Given the launcher's role without one of the grants RunTask needs
    report = run_without(role, action, tmp_path, timeout=25)
    # Then IAM denied that one action, as the launcher's role, and the run says so
    assert denied(report) == {(role, action)}
    assert any(v.startswith(f"AccessDenied: {role} may not {action}") for v in report.violations)
    # and no task started; the job was failed back (RunTask's AccessDeniedException is permanent)
    assert report.launched == 0
    build = next(j for j in report.jobs if j.label == "build part 1")
    assert build.state == "finished"
    assert build.finished_by == "stack"


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("LauncherFunctionRole", "dynamodb:PutItem"),  # the ledger's write
        ("LauncherFunctionRole", "sqs:ReceiveMessage"),  # its event source's receive
        ("PollerFunctionRole", "secretsmanager:GetSecretValue"),  # the token
        ("PollerFunctionRole", "dynamodb:UpdateItem"),  # the lease
    ],
)
def test_a_function_refused_its_ledger_queue_secret_or_lease_launches_nothing(
    role: str, action: str, tmp_path: Path
) -> None:
    # Given one of those grants taken from the function's role
    report = run_without(role, action, tmp_path, timeout=10)
    # Then that call was refused, as that role, and no job got a task
    assert (role, action) in denied(report)
    assert report.launched == 0
    if role == "PollerFunctionRole":
        # and a poller without its token or its lease reserved nothing
        assert all(j.state == "scheduled" for j in report.jobs if j.label == "build part 1")


def test_a_task_whose_execution_role_may_not_read_the_token_fails_to_start(
    tmp_path: Path,
) -> None:
    # Given AgentTokenMode=agent-token and its task execution role without the token secret
    report = run_without(
        "AgentExecutionRole", "secretsmanager:GetSecretValue", tmp_path, 25, mode="agent-token"
    )
    # Then Fargate's read of the task's secrets was denied, as that role
    assert ("AgentExecutionRole", "secretsmanager:GetSecretValue") in denied(report)
    # and the job's task stopped before the agent ran: the failure handler failed it back
    build = next(j for j in report.jobs if j.label == "build part 1")
    assert build.task is not None
    assert build.finished_by == "stack"
    assert "secret" in (build.detail or "").lower()


def test_in_agent_token_mode_tasks_register_with_the_secret_their_role_reads(
    tmp_path: Path,
) -> None:
    # Given AgentTokenMode=agent-token and every grant in place
    report = run_without("", "", tmp_path, timeout=25, mode="agent-token")
    # Then the job ran on an agent that registered with the agent token's secret, read by
    # the task execution role, and no job acquisition token was asked for
    assert report.violations == []
    build = next(j for j in report.jobs if j.label == "build part 1")
    assert build.finished_by == "agent"
    assert ("AgentExecutionRole", "secretsmanager:GetSecretValue") in {
        (e["caller"], e["action"]) for e in report.iam if e["allowed"]
    }
    assert "job-acquisition-tokens" not in report.stacks_calls
    assert report.jats == []
