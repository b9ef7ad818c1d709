"""`make soak`: the local world under seeded random faults, judged by figures.

Every job must end run by an agent, failed back with a reason, or canceled (or be left
alone when it is not for this stack); no job may get two tasks, none the agent took may be
failed back, and every launch dead letter must be handled. Any non-zero among those is a
failing exit. The seed is printed first: `make soak ARGS="--seed N"` replays a run's dice
(thread timing still varies, so a replay is the same faults, not the same interleaving).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from local.chaos import ChaosPlan
from local.outcome import AGENT_STATES, JobOutcome, WorldReport, wrong_image
from local.world import DEMO_REFUSED_IMAGE, OUT, World, WorldOptions

MUST_BE_ZERO = (
    "lost",
    "double_launches",
    "failjob_on_acquired",
    "dlq_unaccounted",
    "access_denied",
    "tasks_without_a_valid_token",
    "failjob_on_canceled",
    "token_expired_unclear",
    "wrong_image",
    "stopped_after_acquire",
)


@dataclass(frozen=True)
class SoakFigures:
    jobs: int
    run: int
    failed_back: int
    canceled: int
    not_for_this_stack: int
    lost: int
    double_launches: int
    failjob_on_acquired: int
    dlq_unaccounted: int
    faults: dict[str, int]
    lost_jobs: list[str]
    # Calls IAM refused (the local world enforces each role's policies: docs/local.md).
    access_denied: int = 0
    # Tasks whose agent's token Buildkite refused at registration (JAT mode: expired, or
    # another job's).
    tasks_without_a_valid_token: int = 0
    # FailJob sent for a job canceled after its task got its token, before the agent
    # registered (the agent is refused and exits 27: nothing may fail the job).
    failjob_on_canceled: int = 0
    # Jobs whose token a fault made expire before the task started, not ended failed back
    # with a reason naming the token (or canceled): each must be.
    token_expired_unclear: int = 0
    # Jobs that ran in another image than their allowed step image, or in one not allowed.
    wrong_image: int = 0
    # Tasks stopped by a StopTask (the stack's sweep) after their agent had acquired the
    # job: the stack stops only tasks still starting.
    stopped_after_acquire: int = 0
    # Tasks the stack stopped before they ran (a canceled job's, a stuck one).
    stopped_by_the_stack: int = 0

    @property
    def ok(self) -> bool:
        return all(getattr(self, name) == 0 for name in MUST_BE_ZERO)


def figures(report: WorldReport) -> SoakFigures:
    """Judge a run: every job lands in exactly one outcome, or it is lost."""
    outcome: Counter[str] = Counter()
    lost: list[str] = []
    for job in report.jobs:
        if job.label.endswith("(not for this stack)") and job.state == "scheduled":
            outcome["not_for_this_stack"] += 1
        elif job.state == "canceled":
            outcome["canceled"] += 1
        elif job.finished_by == "stack" and job.detail:
            outcome["failed_back"] += 1
        elif job.finished_by == "agent" or job.state in AGENT_STATES:
            # Includes agents lost with their task (out of memory) and jobs a Spot stop
            # canceled (finished by the agent, signal reason agent_stop).
            outcome["run"] += 1
        else:
            outcome["lost"] += 1
            steps = " > ".join(f"{h['state']}({h.get('by', '')})" for h in job.history)
            lost.append(f"{job.label} ({job.id}): {job.state}, task {job.task}; history {steps}")
    expired = set(report.token_expired_jobs)
    kinds = Counter(v.split(":", 1)[0] for v in report.violations)
    counts = report.counts
    return SoakFigures(
        jobs=len(report.jobs),
        run=outcome["run"],
        failed_back=outcome["failed_back"],
        canceled=outcome["canceled"],
        not_for_this_stack=outcome["not_for_this_stack"],
        lost=outcome["lost"],
        double_launches=kinds["double launch"],
        failjob_on_acquired=kinds["FailJob on a job the agent took"],
        # Left in a dead-letter queue (launches, or stop events still failing) or parked.
        dlq_unaccounted=counts.get("dlq_left", 0)
        + counts.get("events_left", 0)
        + counts.get("parked", 0),
        faults=dict(sorted(report.faults.items())),
        lost_jobs=lost,
        access_denied=counts.get("iam_denied", 0),
        tasks_without_a_valid_token=counts.get("tasks_without_a_valid_token", 0),
        failjob_on_canceled=counts.get("failjob_on_canceled_before_registration", 0),
        token_expired_unclear=sum(
            1 for job in report.jobs if job.id in expired and not _token_reason(job)
        ),
        stopped_after_acquire=counts.get("tasks_stopped_after_acquire", 0),
        stopped_by_the_stack=counts.get("tasks_stopped_by_the_stack", 0),
        # The workload's one refused image is the soak's own list, not the stack's rule.
        wrong_image=sum(
            1 for job in report.jobs if wrong_image(job, lambda i: i != DEMO_REFUSED_IMAGE)
        ),
    )


def _token_reason(job: JobOutcome) -> bool:
    """Failed back with a reason naming the token (local.fargate: the agent exits 1), or
    canceled meanwhile."""
    return job.state == "canceled" or (
        job.finished_by == "stack" and "job acquisition token" in (job.detail or "")
    )


def print_figures(result: SoakFigures, report: WorldReport, out: TextIO) -> None:
    counts = report.counts
    print("\nFaults injected:", file=out)
    for kind, n in result.faults.items():
        print(f"  {kind:<52} {n:>6}", file=out)
    extra = {
        "sqs duplicate deliveries": counts.get("sqs_duplicate_deliveries", 0),
        "ECS events duplicated": counts.get("events_duplicated", 0),
        "ECS events delivered late": counts.get("events_delayed", 0),
        "RunTask retries inside botocore": report.aws_retries.get("ecs.RunTask", 0),
        "jobs a token request left in not_issued": round(
            report.metrics.get("JobTokens[not_issued]", 0)
        ),
        "jobs no longer held when asked (no token, no task)": round(
            report.metrics.get("JobTokens[not_reserved]", 0)
        ),
        "tasks whose token expired before registering": counts.get(
            "tasks_whose_token_expired_first", 0
        ),
        "jobs naming a step image": sum(1 for j in report.jobs if j.asked_image),
        "RegisterTaskDefinition calls (one per image and version)": report.aws_calls.get(
            "ecs.RegisterTaskDefinition", 0
        ),
        "  retries of them inside botocore": report.aws_retries.get(
            "ecs.RegisterTaskDefinition", 0
        ),
        "launches that waited for another's registration": round(
            report.metrics.get("StepImageRegistrations[waited]", 0)
        ),
        "launches retried while another registered": round(
            report.metrics.get("StepImageRegistrations[busy]", 0)
        ),
        "stack updates mid-run": counts.get("stack_updates", 0),
        "launches before the update": counts.get("launched_before_update", 0),
        "launches after it": counts.get("launched_after_update", 0),
        "  of them on the old task definition revision": counts.get(
            "launched_after_update_on_old_revision", 0
        ),
    }
    for kind, n in extra.items():
        print(f"  {kind:<52} {n:>6}", file=out)
    print("\nFigures:", file=out)
    rows = [
        ("jobs", result.jobs),
        ("run by an agent", result.run),
        ("failed back with a reason", result.failed_back),
        ("canceled", result.canceled),
        ("left alone (not for this stack)", result.not_for_this_stack),
        ("launch dead letters handled", counts.get("dlq_records", 0)),
        ("stop events retried from their dead-letter queue", counts.get("event_retry_records", 0)),
        ("lost (must be 0)", result.lost),
        ("double launches (must be 0)", result.double_launches),
        ("FailJob on an acquired job (must be 0)", result.failjob_on_acquired),
        ("DLQ records unaccounted for (must be 0)", result.dlq_unaccounted),
        ("calls IAM denied (must be 0)", result.access_denied),
        ("tasks started without a valid token (must be 0)", result.tasks_without_a_valid_token),
        ("FailJob on jobs canceled at task start (must be 0)", result.failjob_on_canceled),
        ("token expired, not failed back naming it (must be 0)", result.token_expired_unclear),
        ("ran in another image than asked and allowed (must be 0)", result.wrong_image),
        ("tasks the stack stopped before they ran", result.stopped_by_the_stack),
        ("tasks stopped after their agent took the job (must be 0)", result.stopped_after_acquire),
    ]
    for name, n in rows:
        print(f"  {name:<52} {n:>6}", file=out)
    for line in result.lost_jobs[:20]:
        print(f"  lost: {line}", file=out)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000, help="ordinary jobs (default 5000)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's dice")
    parser.add_argument("--max-in-flight", type=int, default=300, help="MaxInFlight (300)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before giving up")
    parser.add_argument(
        "--no-update",
        action="store_true",
        help="skip the mid-run stack update (a deploy with jobs in flight, on by default)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder ({OUT})")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    print(f'soak seed: {seed}   (replay: make soak ARGS="--seed {seed}")', file=out, flush=True)
    opts = WorldOptions(
        jobs=args.jobs,
        pause_seconds=0,
        # Short reservations, so jobs that a crash or a fault strands come back in the run.
        reservation_expiry=60,
        # As an operator would: reserve about what launches within a reservation (the local
        # launcher does ~10/s under these faults), so only delays make reservations expire.
        max_in_flight=args.max_in_flight,
        chaos=ChaosPlan(seed=seed),
        # A deploy of a new version mid-run: lose nothing, launch nothing twice.
        update_midway=not args.no_update,
        timeout=args.timeout or 240 + args.jobs / 5,
        out_dir=args.out,
    )
    started = time.monotonic()
    report = World(opts, out).run()
    result = figures(report)
    print_figures(result, report, out)
    verdict = "OK" if result.ok else "FAILED"
    print(f"\nsoak {verdict} in {time.monotonic() - started:.0f} s (seed {seed})", file=out)
    record = {"seed": seed, "ok": result.ok, **result.__dict__, "counts": report.counts}
    (args.out / "soak.json").write_text(json.dumps(record, indent=2, default=str))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
