"""A deploy in the middle of a burst (docs/deploy.md#updating-a-running-stack): the local
world updates the stack in moto with a new agent image (a new task definition revision), a
changed redrive and a changed poller setting while jobs are in flight; containers started
after it run the new environment. No job is lost, none launched twice, none failed back."""

from __future__ import annotations

import io

import pytest

from local.outcome import WorldReport
from local.world import World, WorldOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> WorldReport:
    opts = WorldOptions(
        jobs=4,
        feed_jobs=12,
        feed_interval=0.5,
        pause_seconds=1.0,
        timeout=60,
        update_midway=True,
        out_dir=tmp_path_factory.mktemp("update"),
    )
    return World(opts, io.StringIO()).run()


def test_the_invariants_hold_across_the_update(report: WorldReport) -> None:
    assert report.violations == []
    assert report.ok


def test_the_update_happened_mid_run(report: WorldReport) -> None:
    counts = report.counts
    assert counts["stack_updates"] == 1
    # Some jobs were launched before it and some after it, on the new revision.
    assert counts["launched_before_update"] >= 1
    after_on_new = counts["launched_after_update"] - counts["launched_after_update_on_old_revision"]
    assert after_on_new >= 1, counts
    # The launcher's containers were replaced by the new version's.
    assert counts["launcher_containers"] > WorldOptions().launcher_concurrency


def test_no_ordinary_job_was_failed_back_by_the_update(report: WorldReport) -> None:
    # A launch in flight on the old revision must not meet an INACTIVE task definition.
    ordinary = [j for j in report.jobs if j.label.startswith(("build part", "arrival"))]
    assert len(ordinary) == 16
    for job in ordinary:
        assert job.finished_by == "agent", (job.label, job.state, job.detail)
