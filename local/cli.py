"""Command line of the local world: options, progress, the final table and the verdict."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from fargate_stack.domain.starting_tasks import STOP_REASON_PREFIX
from fargate_stack.domain.task_logs import LOG_LINK_LEAD
from local.outcome import WorldReport
from local.report import write
from local.world import OUT, PipelineRole, World, WorldOptions


def parse_args(argv: Sequence[str] | None) -> WorldOptions:
    parser = argparse.ArgumentParser(
        prog="make local",
        description="Run the whole Buildkite Fargate Stack loop locally: the Stacks API "
        "emulator, moto provisioned from template.yaml, the real poller, launcher and "
        "failure handler, and a simulated Fargate. Exits 1 if an invariant breaks.",
    )
    parser.add_argument("--jobs", type=int, default=8, help="ordinary jobs (default 8)")
    parser.add_argument("--poll-interval", type=int, default=1, help="seconds (default 1)")
    parser.add_argument("--max-in-flight", type=int, default=0, help="0 = unlimited (default)")
    parser.add_argument("--timeout", type=float, default=90, help="seconds before giving up")
    parser.add_argument(
        "--start-latency",
        type=float,
        default=0.6,
        help="simulated Fargate start time, seconds (default 0.6)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder ({OUT})")
    parser.add_argument(
        "--pipeline-role",
        choices=[
            PipelineRole.PASSABLE,
            PipelineRole.NOT_ASSUMABLE,
            PipelineRole.NOT_PASSABLE,
            PipelineRole.OFF,
        ],
        default=PipelineRole.PASSABLE,
        help="the demo pipeline's own task role (PipelineTaskRoles): passable (default), a "
        "role ECS cannot assume, one the launcher may not pass, or off",
    )
    args = parser.parse_args(argv)
    if args.jobs < 0 or args.poll_interval < 1:
        parser.error("--jobs must be >= 0 and --poll-interval >= 1")
    return WorldOptions(
        jobs=args.jobs,
        poll_interval=args.poll_interval,
        max_in_flight=args.max_in_flight,
        timeout=args.timeout,
        provisioning_seconds=args.start_latency / 2,
        pending_seconds=args.start_latency / 2,
        out_dir=args.out,
        pipeline_role=args.pipeline_role,
    )


def print_report(report: WorldReport, out: TextIO) -> None:
    print("", file=out)
    header = (
        f"{'job':<9} {'what':<30} {'prio':>4}  {'final state':<22} {'task':<10} "
        f"{'image':<16} {'dispatch':>9}  why"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for job in sorted(report.jobs, key=lambda j: (-j.priority, j.label)):
        state = job.state + (f" (exit {job.exit_status})" if job.exit_status is not None else "")
        if job.finished_by == "stack":
            state = f"failed back (exit {job.exit_status})"
        dispatch = f"{job.dispatch_ms / 1000:.2f} s" if job.dispatch_ms is not None else "-"
        why = _why(job.detail, job.state, job.label, job.task_stopped_by)
        print(
            f"{job.id[:8]:<9} {job.label[:30]:<30} {job.priority:>4}  {state:<22} "
            f"{(job.task or '-')[:10]:<10} {_image(job.image):<16} {dispatch:>9}  {why}",
            file=out,
        )
    print("", file=out)
    linked = [j for j in report.jobs if j.detail and LOG_LINK_LEAD in j.detail]
    if linked:
        # The link is too long for the table; one shows where every failed-back task's is.
        first = linked[0]
        print(
            f"Agent log links in FailJob details: {len(linked)}; job {first.id[:8]}'s: "
            + (first.detail or "").split(LOG_LINK_LEAD, 1)[1].strip(),
            file=out,
        )
        print("", file=out)
    roles = Counter(job.task_role.rsplit(":", 1)[-1] for job in report.jobs if job.task_role)
    if roles:
        print("Task roles the jobs' code ran as (PipelineTaskRoles): " + _counts(roles), file=out)
        print("", file=out)
    print("Dashboard metrics (what the handlers emitted over the run):", file=out)
    for name, value in sorted(report.metrics.items()):
        if value:
            print(f"  {name:<40} {value:>10.0f}", file=out)
    print("", file=out)
    launched = max(report.launched, 1)
    stacks = sum(report.stacks_calls.values())
    aws = sum(report.aws_calls.values())
    print(
        f"API calls per launched job ({report.launched} launched): Stacks API "
        f"{stacks / launched:.2f}, AWS {aws / launched:.2f}",
        file=out,
    )
    print("  Stacks API: " + _counts(report.stacks_calls), file=out)
    print("  AWS:        " + _counts(report.aws_calls), file=out)
    if report.aws_retries:
        print("  AWS retries inside those calls: " + _counts(report.aws_retries), file=out)
    print("Local plumbing: " + _counts(report.counts), file=out)
    print("", file=out)
    if report.ok:
        print(
            "Invariants: no job lost, no double launch, FailJob only for jobs never taken: OK",
            file=out,
        )
    else:
        print("INVARIANTS BROKEN:", file=out)
        for violation in report.violations:
            print(f"  - {violation}", file=out)


def _image(image: str | None) -> str:
    """The image's last path component (node:22-alpine), cut to the column."""
    return (image.rsplit("/", 1)[-1] if image else "-")[:16]


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _why(detail: str | None, state: str, label: str, task_stopped_by: str | None = None) -> str:
    if task_stopped_by and task_stopped_by.startswith(STOP_REASON_PREFIX) and not detail:
        # No FailJob said why (a canceled job): the stack's StopTask reason does.
        return f"job {state} while its task started: the stack stopped the task before it ran"
    if detail:
        text = detail.removeprefix("Buildkite Fargate Stack: ")
        return text if len(text) <= 90 else text[:89] + "…"
    if state == "scheduled" and label.endswith("(not for this stack)"):
        return "agent tags do not match this stack: left for another"
    if state in ("running", "accepted"):
        return "the agent took the job, then its task died (Buildkite marks the agent lost)"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    # moto notes each resource type its CloudFormation skips (local/aws_world.py says which
    # and why), and Powertools notes flushes with only dimensioned metrics: noise here.
    warnings.filterwarnings("ignore", message="Tried to parse AWS", category=UserWarning)
    warnings.filterwarnings("ignore", message="No application metrics", category=UserWarning)
    opts = parse_args(argv)
    console = sys.stdout
    world = World(opts, console)
    try:
        report = world.run()
    except KeyboardInterrupt:
        print("\ninterrupted; everything stopped", file=console)
        return 130
    print_report(report, console)
    print(f"Handler logs and metrics: {_shown(opts.out_dir / 'lambda.log')}", file=console)
    html = write(report, opts.out_dir / "report.html")
    print(f"Report with a timeline of every job: {_shown(html)}", file=console)
    return 0 if report.ok else 1


def _shown(path: Path) -> str:
    """A path as the user can type it from where they ran make: relative when it can be."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
