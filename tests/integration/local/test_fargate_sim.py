"""The simulated Fargate and agent against moto's ECS and the emulator: a task goes
through its phases, the agent runs the job for real, and the events have AWS's shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from fargate_stack.aws.ecs import EcsTasks
from fargate_stack.domain.launch import Capacity, build_launch_spec
from fargate_stack.intake import parse_task_state_change
from local.emulator import Emulator
from local.fargate import (
    REGISTER_ATTEMPTS,
    Failure,
    FargateTiming,
    Phase,
    SimulatedAgent,
    SimulatedFargate,
    wait_until,
)
from tests.support.aws import MotoEcs, launch_config
from tests.support.emulator import EMULATOR_TOKEN, Api

FAST = FargateTiming(
    provisioning_seconds=0.0,
    pending_seconds=0.0,
    command_timeout_seconds=10,
    agent_retry_seconds=0.01,
    slow_start_seconds=2.0,
)


def create_job(emulator: Emulator, command: str, failure: Failure = Failure.NONE) -> str:
    env = {"LOCAL_FAILURE": str(failure)} if failure else {}
    answer = requests.post(
        emulator.control_url + "jobs",
        json={"queue_key": "fargate", "command": command, "env": env},
        timeout=5,
    )
    answer.raise_for_status()
    job_id: str = answer.json()["jobs"][0]["id"]
    return job_id


def launch(aws: MotoEcs, job: str) -> str:
    config = launch_config("s", aws.subnet, aws.security_group)
    spec = build_launch_spec(
        config, job_uuid=job, agent_query_rules=[], job_env={}, capacity=Capacity.SPOT
    )
    return EcsTasks(aws.ecs).run(spec).arn


def simulate(
    aws: MotoEcs,
    emulator: Emulator,
    token: str = EMULATOR_TOKEN,
    before_agent: Callable[[str], None] | None = None,
) -> tuple[SimulatedFargate, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    def failure_of(job: str) -> Failure:
        env = requests.get(emulator.control_url + f"jobs/{job}", timeout=5).json()["env"]
        return Failure(env.get("LOCAL_FAILURE", ""))

    fargate = SimulatedFargate(
        ecs=aws.ecs,
        cluster="bk",
        agent=SimulatedAgent(emulator.base_url, FAST),
        emit=events.append,
        failure_of=failure_of,
        timing=FAST,
        # The task definition's secret, as its execution role reads it (agent-token mode).
        pull_secrets=lambda _definition: ({"BUILDKITE_AGENT_TOKEN": token}, None),
        before_agent=before_agent,
    )
    return fargate, events


def run_until_stopped(fargate: SimulatedFargate) -> None:
    def step() -> bool:
        fargate.tick()
        return bool(fargate.tasks) and not fargate.busy()

    assert wait_until(step, timeout=15)


def job_view(emulator: Emulator, job: str) -> dict[str, Any]:
    view: dict[str, Any] = requests.get(emulator.control_url + f"jobs/{job}", timeout=5).json()
    return view


def test_a_task_runs_its_job_to_the_commands_exit_status(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "exit 3")
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator)
    run_until_stopped(fargate)
    view = job_view(emulator, job)
    assert view["state"] == "finished"
    assert view["exit_status"] == 3
    assert view["finished_by"] == "agent"
    phases = [e["detail"]["lastStatus"] for e in events]
    assert phases == ["PROVISIONING", "PENDING", "RUNNING", "STOPPED"]
    versions = [e["detail"]["version"] for e in events]
    assert versions == sorted(versions)
    stopped = parse_task_state_change(events[-1])
    assert stopped.detail.stop_code == "EssentialContainerExited"
    assert stopped.detail.group == f"buildkite-job:{job}"
    assert stopped.detail.started_by == "s"
    assert stopped.stopped_task("agent").agent_exit_code == 0


def test_an_agent_with_a_token_buildkite_refuses_exits_1_and_takes_nothing(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "true")
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator, token="bkjat_expired-or-someone-elses")
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "scheduled"
    assert fargate.agent.tokens_refused == 1
    stopped = parse_task_state_change(events[-1])
    assert stopped.stopped_task("agent").agent_exit_code == 1


def add_fault(emulator: Emulator, **spec: Any) -> None:
    requests.post(emulator.control_url + "faults", json=spec, timeout=5).raise_for_status()


def test_the_agent_rides_out_transient_failures_as_the_real_one_does(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    # Given Buildkite answers 503 twice at registration, drops one acquire and rate-limits
    # one finish
    add_fault(emulator, endpoint="agent-register", kind="status", status=503, count=2)
    add_fault(emulator, endpoint="agent-acquire", kind="drop")
    add_fault(emulator, endpoint="agent-finish", kind="status", status=429)
    job = create_job(emulator, "exit 0")
    launch(moto_ecs, job)
    # When the task runs
    fargate, events = simulate(moto_ecs, emulator)
    run_until_stopped(fargate)
    # Then the agent retried each call and ran the job
    view = job_view(emulator, job)
    assert (view["state"], view["finished_by"]) == ("finished", "agent")
    assert parse_task_state_change(events[-1]).stopped_task("agent").agent_exit_code == 0


def test_an_outage_longer_than_the_agents_retries_ends_the_task_with_exit_1(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    add_fault(
        emulator, endpoint="agent-register", kind="status", status=502, count=REGISTER_ATTEMPTS
    )
    job = create_job(emulator, "true")
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator)
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "scheduled"
    assert parse_task_state_change(events[-1]).stopped_task("agent").agent_exit_code == 1
    assert fargate.agent.tokens_refused == 0


def test_a_task_whose_agent_never_took_its_job_is_not_killed_for_memory_later(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "true", Failure.OUT_OF_MEMORY)
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator, token="bkjat_expired-or-someone-elses")
    run_until_stopped(fargate)
    task = parse_task_state_change(events[-1]).stopped_task("agent")
    assert (task.agent_exit_code, task.agent_reason) == (1, None)


def reserved_with_jat(emulator: Emulator, job: str, lifetime: int = 900) -> tuple[Api, str]:
    api = Api(emulator)
    assert api.register(key="s", queue_key="fargate").status_code == 201
    assert api.reserve([job], key="s").json()["reserved"] == [job]
    answer = api.call(
        "POST",
        "stacks/s/job-acquisition-tokens",
        json={"job_uuids": [job], "token_lifetime_seconds": lifetime},
    )
    return api, str(answer.json()["job_acquisition_tokens"][0]["job_acquisition_token"])


def test_a_jat_that_expired_before_the_task_started_is_refused_and_counted(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "true")
    api, token = reserved_with_jat(emulator, job, lifetime=60)
    launch(moto_ecs, job)
    fargate, events = simulate(
        moto_ecs, emulator, token=token, before_agent=lambda _: api.advance(61)
    )
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "reserved"  # for the failure handler to fail
    assert fargate.agent.refused == [(job, token)]
    assert parse_task_state_change(events[-1]).stopped_task("agent").agent_exit_code == 1


def test_a_job_canceled_after_its_jat_was_issued_makes_the_agent_exit_27_at_registration(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "true")
    api, token = reserved_with_jat(emulator, job)
    launch(moto_ecs, job)
    fargate, events = simulate(
        moto_ecs,
        emulator,
        token=token,
        before_agent=lambda j: api.control("POST", f"jobs/{j}/cancel"),
    )
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "canceled"
    assert fargate.agent.refused == []
    assert parse_task_state_change(events[-1]).stopped_task("agent").agent_exit_code == 27
    acquires = [c for c in api.calls() if c["endpoint"] == "agent-acquire"]
    assert acquires == []  # refused at registration, before any acquire


def test_an_image_that_cannot_be_pulled_never_reaches_the_agent(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "true", Failure.IMAGE_PULL)
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator)
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "scheduled"
    stopped = parse_task_state_change(events[-1])
    assert stopped.detail.stop_code == "TaskFailedToStart"
    assert "CannotPullContainerError" in (stopped.detail.stopped_reason or "")


def test_a_canceled_job_makes_the_agent_exit_27(moto_ecs: MotoEcs, emulator: Emulator) -> None:
    job = create_job(emulator, "true")
    requests.post(emulator.control_url + f"jobs/{job}/cancel", timeout=5).raise_for_status()
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator)
    run_until_stopped(fargate)
    assert parse_task_state_change(events[-1]).stopped_task("agent").agent_exit_code == 27


def test_out_of_memory_kills_the_agent_after_it_took_the_job(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "true", Failure.OUT_OF_MEMORY)
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator)
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "running"
    task = parse_task_state_change(events[-1]).stopped_task("agent")
    assert "OutOfMemoryError" in (task.agent_reason or "")


def test_a_spot_interruption_cancels_the_job_cleanly_instead_of_losing_the_agent(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    """The task's entrypoint turns ECS's SIGTERM into the agent's SIGQUIT (template.yaml),
    so the agent cancels its job and finishes it with signal reason agent_stop, which a
    `retry: automatic` rule can match (docs/deploy.md), instead of running on until
    Fargate kills it and Buildkite marks the agent lost."""
    job = create_job(emulator, "sleep 5", Failure.SPOT)
    launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator)
    run_until_stopped(fargate)
    view = job_view(emulator, job)
    assert view["state"] == "finished"
    assert view["finished_by"] == "agent"
    assert (view["exit_status"], view["signal_reason"]) == (-1, "agent_stop")
    stopped = parse_task_state_change(events[-1])
    assert stopped.detail.stop_code == "SpotInterruption"
    assert stopped.stopped_task("agent").agent_exit_code == 0


# ------------------------------------------------------------------ tasks stopped by a call


def stop_when(fargate: SimulatedFargate, ecs: Any, arn: str, phase: Phase) -> None:
    def step() -> bool:
        fargate.tick()
        return fargate.tasks.get(arn) is not None and fargate.tasks[arn].phase is phase

    assert wait_until(step, timeout=10)
    ecs.stop_task(cluster="bk", task=arn, reason="Buildkite Fargate Stack: test stop")


def test_ecs_reports_the_simulated_phase_and_a_stopped_task_never_runs(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    # Given a task that stays PENDING (a slow start)
    job = create_job(emulator, "true", Failure.SLOW_START)
    arn = launch(moto_ecs, job)
    fargate, events = simulate(moto_ecs, emulator)
    (described,) = moto_ecs.ecs.describe_tasks(cluster="bk", tasks=[arn])["tasks"]
    assert described["lastStatus"] == "PROVISIONING"
    # When something stops it while it is PENDING
    stop_when(fargate, moto_ecs.ecs, arn, Phase.PENDING)
    run_until_stopped(fargate)
    # Then it stops as ECS stops it, and its agent never ran
    task = fargate.tasks[arn]
    assert (task.stopped_by, task.agent) == ("Buildkite Fargate Stack: test stop", None)
    stopped = parse_task_state_change(events[-1])
    assert stopped.detail.stop_code == "UserInitiated"
    assert stopped.detail.stopped_reason == "Buildkite Fargate Stack: test stop"
    assert "RUNNING" not in [e["detail"]["lastStatus"] for e in events]
    assert job_view(emulator, job)["state"] == "scheduled"


def test_a_running_task_stopped_after_its_agent_took_the_job_is_counted(
    moto_ecs: MotoEcs, emulator: Emulator
) -> None:
    job = create_job(emulator, "sleep 2")
    arn = launch(moto_ecs, job)
    fargate, _ = simulate(moto_ecs, emulator)

    def acquired() -> bool:
        fargate.tick()
        return fargate.agent.took(job)

    assert wait_until(acquired, timeout=10)
    (described,) = moto_ecs.ecs.describe_tasks(cluster="bk", tasks=[arn])["tasks"]
    assert described["lastStatus"] == "RUNNING"
    moto_ecs.ecs.stop_task(cluster="bk", task=arn, reason="by hand")
    run_until_stopped(fargate)
    # What the soak counts: it must be 0 there, the stack stops no running task.
    assert fargate.tasks[arn].stopped_after_acquire
