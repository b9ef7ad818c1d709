"""The model without HTTP: rules that depend only on time and state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.emulator import Behaviour, State, VirtualClock
from local.emulator.errors import LockedError, NotFoundError, ValidationError


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> VirtualClock:
    fake = FakeTime()
    return VirtualClock(wall=fake, monotonic=fake)


def _state(clock: VirtualClock, **behaviour: object) -> State:
    state = State(clock, Behaviour(**behaviour))  # type: ignore[arg-type]
    state.register_stack(key="s", type_="custom", queue_key="q", metadata={})
    return state


def test_expiry_returns_a_job_to_scheduled_at_the_moment_it_lapsed(clock: VirtualClock):
    state = _state(clock)
    (job,) = state.create_jobs([{"queue_key": "q"}])
    state.reserve("s", [job.id], 10)
    expires_at = job.reservation.expires_at  # type: ignore[union-attr]
    clock.advance(3600)
    assert state.job_states("s", [job.id]) == {job.id: "scheduled"}
    assert job.history[-1].at == expires_at
    assert job.history[-1].at + timedelta(seconds=3590) == clock.now()


def test_behaviour_switches_change_the_rules(clock: VirtualClock):
    state = _state(clock, reserve_when_paused=False, max_stacks=1)
    (job,) = state.create_jobs([{"queue_key": "q"}])
    state.pause_queue("q", paused=True)
    assert state.reserve("s", [job.id], None) == ([], [job.id])
    with pytest.raises(Exception, match="stack limit"):
        state.register_stack(key="t", type_="custom", queue_key="q", metadata={})


def test_locked_beats_eligible_but_not_the_other_way_round(clock: VirtualClock):
    state = _state(clock)
    locked, done = state.create_jobs([{"queue_key": "q", "locked": True}, {"queue_key": "q"}])
    state.cancel(done.id)
    agent = state.register_agent(jat=None, name="a", tags=[])
    with pytest.raises(LockedError):
        state.acquire(agent, locked.id)
    state.set_locked(done.id, locked=True)
    with pytest.raises(ValidationError):
        state.acquire(agent, done.id)
    with pytest.raises(NotFoundError):
        state.acquire(agent, "missing")


def test_the_virtual_clock_never_goes_back(clock: VirtualClock):
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_jobs_of_one_pipeline_share_its_uuid_unless_the_spec_names_one(clock: VirtualClock):
    # The listing's pipeline.uuid is the pipeline's (PipelineTaskRoles maps it to a role).
    state = _state(clock)
    given = "5b0f6c1e-8d2a-4f3b-9c7e-2a1d4e6f8b90"
    a, b, other, named = state.create_jobs(
        [
            {"queue_key": "q", "pipeline": {"slug": "app"}},
            {"queue_key": "q", "pipeline": {"slug": "app"}},
            {"queue_key": "q", "pipeline": {"slug": "docs"}},
            {"queue_key": "q", "pipeline": {"slug": "app", "uuid": given}},
        ]
    )
    assert a.pipeline["uuid"] == b.pipeline["uuid"] != other.pipeline["uuid"]
    assert named.pipeline["uuid"] == given
    # and GetJob's env carries the same one, as BUILDKITE_PIPELINE_ID
    assert named.env["BUILDKITE_PIPELINE_ID"] == given
