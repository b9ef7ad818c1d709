"""The simulated Fargate and agent against moto's ECS and the emulator: a task goes
through its phases, the agent runs the job for real, and the events have AWS's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from fargate_stack.aws.ecs import EcsTasks
from fargate_stack.domain.launch import Capacity, LaunchConfig, build_launch_spec
from fargate_stack.intake import parse_task_state_change
from local.emulator import Emulator
from local.fargate import Failure, FargateTiming, SimulatedAgent, SimulatedFargate, wait_until
from tests.conftest import EMULATOR_TOKEN

FAST = FargateTiming(provisioning_seconds=0.0, pending_seconds=0.0, command_timeout_seconds=10)


@pytest.fixture
def ecs(fake_aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ecs", region_name="us-east-1")
        client.create_cluster(clusterName="bk")
        client.register_task_definition(
            family="agent",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="1024",
            memory="2048",
            containerDefinitions=[{"name": "agent", "image": "buildkite/agent", "memory": 2048}],
        )
        yield client


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


def launch(ecs: Any, job: str) -> str:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    config = LaunchConfig(
        stack_key="s",
        queue_key="fargate",
        cluster="bk",
        task_definition="agent",
        container_name="agent",
        default_cpu=1024,
        default_memory=2048,
        subnets=[ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
        security_groups=[ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]],
        assign_public_ip=False,
    )
    spec = build_launch_spec(
        config, job_uuid=job, agent_query_rules=[], job_env={}, capacity=Capacity.SPOT
    )
    return EcsTasks(ecs).run(spec)


def simulate(ecs: Any, emulator: Emulator) -> tuple[SimulatedFargate, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    def failure_of(job: str) -> Failure:
        env = requests.get(emulator.control_url + f"jobs/{job}", timeout=5).json()["env"]
        return Failure(env.get("LOCAL_FAILURE", ""))

    fargate = SimulatedFargate(
        ecs=ecs,
        cluster="bk",
        agent=SimulatedAgent(emulator.base_url, EMULATOR_TOKEN, FAST),
        emit=events.append,
        failure_of=failure_of,
        timing=FAST,
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


def test_a_task_runs_its_job_to_the_commands_exit_status(ecs: Any, emulator: Emulator) -> None:
    job = create_job(emulator, "exit 3")
    launch(ecs, job)
    fargate, events = simulate(ecs, emulator)
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


def test_an_image_that_cannot_be_pulled_never_reaches_the_agent(
    ecs: Any, emulator: Emulator
) -> None:
    job = create_job(emulator, "true", Failure.IMAGE_PULL)
    launch(ecs, job)
    fargate, events = simulate(ecs, emulator)
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "scheduled"
    stopped = parse_task_state_change(events[-1])
    assert stopped.detail.stop_code == "TaskFailedToStart"
    assert "CannotPullContainerError" in (stopped.detail.stopped_reason or "")


def test_a_canceled_job_makes_the_agent_exit_27(ecs: Any, emulator: Emulator) -> None:
    job = create_job(emulator, "true")
    requests.post(emulator.control_url + f"jobs/{job}/cancel", timeout=5).raise_for_status()
    launch(ecs, job)
    fargate, events = simulate(ecs, emulator)
    run_until_stopped(fargate)
    assert parse_task_state_change(events[-1]).stopped_task("agent").agent_exit_code == 27


def test_out_of_memory_kills_the_agent_after_it_took_the_job(ecs: Any, emulator: Emulator) -> None:
    job = create_job(emulator, "true", Failure.OUT_OF_MEMORY)
    launch(ecs, job)
    fargate, events = simulate(ecs, emulator)
    run_until_stopped(fargate)
    assert job_view(emulator, job)["state"] == "running"
    task = parse_task_state_change(events[-1]).stopped_task("agent")
    assert "OutOfMemoryError" in (task.agent_reason or "")
