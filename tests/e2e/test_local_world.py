"""The whole loop on one machine: emulator + moto (from template.yaml) + the real handlers +
a simulated Fargate. Given the demo workload, the run ends with the invariants of
docs/design.md intact and each hard case handled as a user would expect."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from fargate_stack.domain.task_logs import LOG_LINK_LEAD
from local.aws_world import GIT_CREDENTIALS, GIT_SSH_KEY
from local.cli import print_report
from local.emf import poll_times
from local.outcome import JobOutcome, WorldReport, overlapping_polls
from local.report import write
from local.world import (
    DEMO_DISK_GIB,
    DEMO_REFUSED_IMAGE,
    DEMO_STEP_IMAGE,
    DEPLOY_LABEL,
    DEPLOY_ROLE_NAME,
    DEPLOY_ROLE_PATH,
    PRIVATE_HTTPS_LABEL,
    PRIVATE_SSH_LABEL,
    World,
    WorldOptions,
)

# The whole local world: `make test-fast` skips it (slow); `make test` and CI run it.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldReport, Path, str]:
    out = tmp_path_factory.mktemp("world")
    # Buildkite refuses the failure handler's first seven state lookups (its User-Agent
    # names it; the poller's sweep asks the same endpoint and is left alone). Three stop
    # events ask (image pull, out of memory, the task the stack stopped), three tries each
    # at most: seven refusals cannot all go to events that each failed only twice, so at
    # least one event must come back through EventsDeadLetterQueue, and its job still end
    # as expected.
    refuse = {
        "endpoint": "batch-load-job-states",
        "kind": "status",
        "status": 400,
        "count": 7,
        "user_agent": "(failure-handler)",
    }
    opts = WorldOptions(jobs=4, timeout=60, pause_seconds=1.5, out_dir=out, stacks_faults=(refuse,))
    console = io.StringIO()
    result = World(opts, console).run()
    return result, out, opts.token


def by_label(report: WorldReport, label: str) -> JobOutcome:
    (job,) = [j for j in report.jobs if j.label == label]
    return job


def test_invariants_hold(report: tuple[WorldReport, Path, str]) -> None:
    result, _, _ = report
    assert result.violations == []
    assert result.ok


# What each function's role must have been asked for in a run of the demo workload: the
# calls reached moto signed as that role, and its policies as created from template.yaml
# allowed them (docs/local.md, "IAM").
EXPECTED_CALLS = {
    ("PollerFunctionRole", "secretsmanager:GetSecretValue"),
    ("PollerFunctionRole", "dynamodb:UpdateItem"),
    ("PollerFunctionRole", "sqs:SendMessage"),
    # the sweep of starting tasks: it stopped the demo's task of a canceled job
    ("PollerFunctionRole", "ecs:ListTasks"),
    ("PollerFunctionRole", "ecs:DescribeTasks"),
    ("PollerFunctionRole", "ecs:StopTask"),
    ("LauncherFunctionRole", "sqs:ReceiveMessage"),
    ("LauncherFunctionRole", "sqs:DeleteMessage"),
    ("LauncherFunctionRole", "secretsmanager:GetSecretValue"),
    ("LauncherFunctionRole", "dynamodb:PutItem"),
    ("LauncherFunctionRole", "ecs:RunTask"),
    ("LauncherFunctionRole", "iam:PassRole"),
    ("LauncherFunctionRole", "ecs:TagResource"),
    ("FailureHandlerFunctionRole", "secretsmanager:GetSecretValue"),
    ("FailureHandlerFunctionRole", "sqs:ReceiveMessage"),
    ("FailureHandlerFunctionRole", "sqs:DeleteMessage"),
}
# What only the stack does: none of it may reach AWS as the local world's plumbing.
STACK_ONLY = {
    "ecs:RunTask",
    "iam:PassRole",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "secretsmanager:GetSecretValue",
}


def test_every_call_went_out_as_its_functions_role_and_was_allowed(
    report: tuple[WorldReport, Path, str],
) -> None:
    result, _, _ = report
    # Given IAM enforced on every request of the run
    calls = {(e["caller"], e["action"]) for e in result.iam}
    # Then nothing was denied
    assert result.counts["iam_denied"] == 0
    assert [e for e in result.iam if not e["allowed"]] == []
    # and each function's own calls were made, as its role
    assert calls >= EXPECTED_CALLS
    # and none of the stack's calls went out as the all-powerful plumbing
    plumbing = {action for caller, action in calls if caller == "local-plumbing"}
    assert plumbing.isdisjoint(STACK_ONLY)
    # every call the stack made was one the local world knows the resource of
    assert all(e["modelled"] for e in result.iam if e["caller"] != "local-plumbing")
    # RunTask was checked with its cluster, PassRole with the service it was passed to
    run_task = [e for e in result.iam if e["action"] == "ecs:RunTask"]
    assert all(e["context"].get("ecs:cluster") for e in run_task)
    pass_role = [e for e in result.iam if e["action"] == "iam:PassRole"]
    assert {e["resource"].rsplit("/", 1)[-1].rsplit("-", 1)[0] for e in pass_role} == {
        "buildkite-fargate-stack-AgentExecutionRole",
        "buildkite-fargate-stack-AgentTaskRole",
        "deploy",  # the demo pipeline's own role (PipelineTaskRoles), deploy-app
    }


def test_a_mapped_pipelines_job_ran_as_its_role_and_the_others_as_the_stacks(
    report: tuple[WorldReport, Path, str],
) -> None:
    # Given the demo pipeline deploy-app mapped to its own role (PipelineTaskRoles)
    result, _, _ = report
    deploy = by_label(result, DEPLOY_LABEL)
    # Then its task ran as that role, given as the RunTask override
    assert deploy.finished_by == "agent"
    assert deploy.task_role == f"arn:aws:iam::123456789012:role{DEPLOY_ROLE_PATH}{DEPLOY_ROLE_NAME}"
    # and every other job's task as the task definition's own role
    others = {j.task_role for j in result.jobs if j.task and j.label != DEPLOY_LABEL}
    assert len(others) == 1
    (default,) = others
    assert default is not None and "AgentTaskRole" in default


def test_two_overlapping_poller_invocations_never_both_poll(
    report: tuple[WorldReport, Path, str],
) -> None:
    # Given a second poller container invoked half an invocation out of step with the first
    result, out, _ = report
    polls = poll_times(out / "lambda.log")
    # Then both polled in turn, one at a time (the invariant check found no interleaving)
    invocations = {invocation for invocation, _ in polls}
    assert len(invocations) >= 3
    assert overlapping_polls(polls) == []
    # and an invocation found the lease held and waited, so the check was not vacuous
    assert result.metrics.get("PollerLeaseHeld", 0) >= 1


def test_ordinary_jobs_ran_on_their_own_task(report: tuple[WorldReport, Path, str]) -> None:
    result, _, _ = report
    ordinary = [j for j in result.jobs if j.label.startswith("build part")]
    assert len(ordinary) == 4
    for job in ordinary:
        assert job.state == "finished", job
        assert job.finished_by == "agent"
        assert job.task is not None
        assert job.dispatch_ms is not None
    assert len({j.task for j in ordinary}) == 4
    assert by_label(result, "build part 1").exit_status == 0


def test_a_job_asking_for_disk_got_it_as_its_run_task_override(
    report: tuple[WorldReport, Path, str],
) -> None:
    result, _, _ = report
    by_job = {
        env["value"]: overrides
        for overrides in map(json.loads, result.evidence["task overrides"])
        for env in overrides["containerOverrides"][0]["environment"]
        if env["name"] == "BUILDKITE_AGENT_ACQUIRE_JOB"
    }
    asked = by_label(result, f"build part 2 ({DEMO_DISK_GIB} GiB disk)")
    assert asked.state == "finished" and asked.finished_by == "agent", asked
    assert by_job[asked.id]["ephemeralStorage"] == {"sizeInGiB": DEMO_DISK_GIB}
    # the others run with the task definition's own storage: nothing sent
    assert "ephemeralStorage" not in by_job[by_label(result, "build part 1").id]


def test_a_step_with_an_allowed_image_ran_in_that_image(
    report: tuple[WorldReport, Path, str],
) -> None:
    """Its task definition (registered by the launcher) runs the node image, which has no
    agent: the simulated Fargate starts it only behind the setup container that copies one
    in (local/fargate.py), and the job finished by its agent."""
    result, _, _ = report
    for label in ("runs in its own image (node)", PRIVATE_HTTPS_LABEL):
        job = by_label(result, label)
        assert (job.state, job.finished_by, job.exit_status) == ("finished", "agent", 0), job
        assert job.image == DEMO_STEP_IMAGE
    others = {j.image for j in result.jobs if j.label.startswith("build part")}
    assert len(others) == 1 and DEMO_STEP_IMAGE not in others  # the agent image
    assert result.aws_calls.get("ecs.RegisterTaskDefinition") == 1  # one image, one definition


def test_a_step_whose_image_is_not_allowed_is_failed_back_naming_allowed_images(
    report: tuple[WorldReport, Path, str],
) -> None:
    job = by_label(report[0], "image not allowed")
    assert (job.finished_by, job.exit_status, job.task) == ("stack", -1, None)
    assert "AllowedImages" in (job.detail or "") and DEMO_REFUSED_IMAGE in (job.detail or "")


def test_private_checkouts_found_their_credentials_from_the_task_definitions_secrets(
    report: tuple[WorldReport, Path, str],
) -> None:
    """The simulated agent's checkout fails (exit 128) without the key or the credentials
    in the container's environment; both jobs passed, in the agent image and in a step image."""
    for label in (PRIVATE_SSH_LABEL, PRIVATE_HTTPS_LABEL):
        job = by_label(report[0], label)
        assert (job.state, job.exit_status) == ("finished", 0), job


def test_an_image_pull_failure_is_failed_back_with_the_reason(
    report: tuple[WorldReport, Path, str],
) -> None:
    job = by_label(report[0], "image cannot be pulled")
    assert job.finished_by == "stack"
    assert job.exit_status == -1
    assert "could not be pulled" in (job.detail or "")


def test_a_failed_back_tasks_detail_links_to_its_agent_log_and_the_output_shows_it(
    report: tuple[WorldReport, Path, str],
) -> None:
    # Given the task whose image could not be pulled, when the stack failed its job back,
    # then the detail links to that task's own stream, and make local's output shows a link
    job = by_label(report[0], "image cannot be pulled")
    assert job.task
    assert f"{LOG_LINK_LEAD} https://" in (job.detail or "")
    assert (job.detail or "").endswith(f"/log-events/job$252Fagent$252F{job.task}")
    out = io.StringIO()
    print_report(report[0], out)
    assert "Agent log links in FailJob details: " in out.getvalue()


def test_stop_events_the_handler_failed_on_are_retried_from_their_queue(
    report: tuple[WorldReport, Path, str],
) -> None:
    result, _, _ = report
    assert result.counts["events_dead_lettered"] >= 1
    assert result.counts["event_retry_records"] >= 1
    assert result.counts["events_left"] == 0
    assert result.counts["parked"] == 0


def test_jobs_the_agent_took_are_never_failed_back(report: tuple[WorldReport, Path, str]) -> None:
    job = by_label(report[0], "runs out of memory")
    assert job.finished_by is None
    assert job.state == "running"


def test_jobs_for_other_stacks_and_canceled_jobs_are_left_alone(
    report: tuple[WorldReport, Path, str],
) -> None:
    result = report[0]
    gpu = by_label(result, "needs a GPU (not for this stack)")
    assert gpu.state == "scheduled"
    assert all(h["state"] != "reserved" for h in gpu.history)
    assert by_label(result, "canceled while queued").state == "canceled"


def test_the_paused_window_launched_nothing(report: tuple[WorldReport, Path, str]) -> None:
    result = report[0]
    assert result.metrics.get("PollsPaused", 0) >= 1
    # 4 builds, the image pull, out of memory, the deploy, the node image, the two private
    # checkouts and the job canceled while its task started: one task each, no more
    assert result.metrics["TasksLaunched[spot]"] == 11


def test_the_token_never_leaves_secrets_manager(report: tuple[WorldReport, Path, str]) -> None:
    """The run's token (known to the test) appears in no log line, metric, SQS message,
    ECS event, task override, report or error text the stack produced."""
    result, out, token = report
    channels = dict(result.evidence)
    log = (out / "lambda.log").read_text()
    channels["logs and EMF metrics"] = log.splitlines()
    channels["html report"] = [write(result, out / "report.html").read_text()]
    channels["finish and skip reasons"] = [j.detail or "" for j in result.jobs]
    # Every channel carried something (errors only when something failed), so finding
    # nothing in it means something.
    assert all(v for k, v in channels.items() if k != "errors"), {
        k: len(v) for k, v in channels.items()
    }
    assert '"_aws"' in log
    # The git checkout key and credentials (read by the execution role for every task's
    # secrets: each ordinary job finishing proves that read) leak nowhere either.
    for secret in (token, GIT_SSH_KEY, GIT_CREDENTIALS):
        for channel, texts in channels.items():
            leaks = [text[:200] for text in texts if secret in text]
            assert not leaks, f"a secret leaked into {channel}: {leaks}"


def test_each_task_got_its_own_jobs_token_and_no_other_store_holds_one(
    report: tuple[WorldReport, Path, str],
) -> None:
    """AgentTokenMode=job-acquisition-token (the default): every launched task started
    with a JAT issued for its own job, and no log line, metric, launch message, reason,
    report or error holds one."""
    result, out, _ = report
    launched = [j for j in result.jobs if j.task is not None]
    assert launched
    assert len(result.jats) >= len(launched)
    # The tokens went where they must: the agent container's RunTask override (ECS
    # echoes it in DescribeTasks and its task events: docs/security.md#who-can-see-which-token)
    overrides = "\n".join(result.evidence["task overrides"])
    assert sum(jat in overrides for jat in result.jats) >= len(launched)
    # ECS echoes them in its raw events; the stack's rule strips them before delivery
    raw = "\n".join(result.evidence["ecs events"])
    assert any(jat in raw for jat in result.jats)
    channels = {
        "what the rule delivered to the failure handler": result.evidence["failure handler events"],
        "SQS messages (launch, dead-letter and event-retry queues)": result.evidence[
            "sqs messages"
        ],
        "logs and EMF metrics": (out / "lambda.log").read_text().splitlines(),
        "launch messages": result.evidence["launch messages"],
        "html report": [write(result, out / "report.html").read_text()],
        "finish and skip reasons": [j.detail or "" for j in result.jobs],
        "errors": result.evidence["errors"],
        "IAM record": [(out / "iam.json").read_text()],
    }
    assert all(v for k, v in channels.items() if k != "errors")
    for channel, texts in channels.items():
        leaks = [text[:120] for text in texts if any(jat in text for jat in result.jats)]
        assert not leaks, f"a job acquisition token leaked into {channel}: {leaks}"
    # and Buildkite's calls show the issuance: one request per launcher batch
    assert (
        1 <= result.stacks_calls["job-acquisition-tokens"] <= result.counts["launcher_invocations"]
    )


def test_the_html_report_shows_every_job_and_the_verdict(
    report: tuple[WorldReport, Path, str],
) -> None:
    result, out, token = report
    page = write(result, out / "report.html").read_text()
    assert "Invariants held" in page
    # The dashboard's count widgets as charts: launches over the run, as many as launched.
    by_capacity = sum(v for k, v in result.metrics.items() if k.startswith("TasksLaunched["))
    launched = result.metrics["TasksLaunched"]  # the total LaunchFailureRateAlarm watches
    assert launched == by_capacity
    assert f"TasksLaunched: {launched:.0f} in " in page
    assert page.count("<figure") >= 3
    assert page.count("<rect") >= len(result.jobs)
    for job in result.jobs:
        assert job.label in page
    assert token not in page


def test_launches_ran_in_separate_containers_whose_calls_are_counted(
    report: tuple[WorldReport, Path, str],
) -> None:
    result, _, _ = report
    assert result.counts["launcher_containers"] == WorldOptions().launcher_concurrency
    # The containers' own AWS calls come back to the world: one RunTask per launched job.
    assert result.aws_calls["ecs.RunTask"] == result.launched
    # One idempotency record per launch message (the launched, and the one failed back at
    # launch for its image), and one claim per step image registered.
    refused_at_launch = [j for j in result.jobs if j.finished_by == "stack" and j.task is None]
    assert len(refused_at_launch) == 1
    assert result.aws_calls["dynamodb.PutItem"] == (
        result.launched + len(refused_at_launch) + result.aws_calls["ecs.RegisterTaskDefinition"]
    )
