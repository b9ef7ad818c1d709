"""Benchmark scenarios, each printing a table and writing bench/results/<scenario>.json.

- ``cold-start``: import time and peak RSS of each handler module in a fresh process
  (median of interleaved rounds), imported from the layer as ``sam build`` builds it (for this
  machine's platform, writing no bytecode, as on Lambda's read-only /opt), with and without
  the bytecode it ships; and the size of the deployed (arm64) layer.
- ``api-calls``: Stacks API and AWS calls per launched job in a local-world run, counted
  from the emulator's call log and a botocore hook on the stack's own session, beside the
  minimum (GetJob + RunTask + the idempotency record, plus amortized batches).

- ``dispatch-latency``: jobs arrive at a steady rate (Poisson, seeded); time from
  ``scheduled_at`` to RunTask, p50/p95/p99, beside the floor measured in the same run: half
  the poll interval plus the median round trips of list, reserve, SQS send and receive,
  GetJob and RunTask.

- ``cost``: stack overhead per 1,000 jobs and per idle month (arm64, us-east-1) from the
  durations, calls, log bytes and metric counts of a local-world run, the template's memory
  and timeouts, and the unit prices of docs/reference/aws.md §E.1 (named constants below).

- ``burst``: 2,000 jobs scheduled at once; time until every one has a RunTask, beside the
  ceiling the rate limits set: the Stacks API's (docs/reference/stacks-api.md §2.1: list and
  reserve 10 calls/s of up to 1,000 jobs, GetJob 1,000 calls/s) and Fargate's task launch
  rate (docs/reference/aws.md §B.4: burst 100, then 20 a second), which the local world's RunTask
  enforces.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.outcome import WorldReport

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LAYER_SRC = ROOT / "layers" / "stack_core"
HANDLERS = ("poller", "launcher", "failure_handler")
# Targets from the benchmark issue, shown beside each figure.
IMPORT_TARGET_MS = 400
LAYER_TARGET_MB = 25
# With job acquisition tokens: one token request per launcher batch on top (issue #13).
STACKS_CALLS_TARGET = 1.45
AWS_CALLS_TARGET = 3.5

_PROBE = """
import json, resource, sys, time
sys.path[:0] = [{layer!r}, {function!r}]
started = time.perf_counter()
import app  # noqa: F401
elapsed = time.perf_counter() - started
print(json.dumps({{"import_ms": elapsed * 1000,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _write(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build_layer(artifacts: Path, platform: str, python: str = sys.executable) -> None:
    """The layer as ``sam build`` builds it (layers/stack_core/Makefile), for ``platform``,
    its bytecode written by ``python`` (a 3.12; the Makefile refuses another)."""
    make = shutil.which("make") or "make"
    subprocess.run(  # noqa: S603 - the layer's own build, as sam build runs it
        [
            make,
            "-s",
            "-C",
            str(LAYER_SRC),
            "build-StackCoreLayer",
            f"ARTIFACTS_DIR={artifacts}",
            f"LAYER_PLATFORM={platform}",
            f"PY312={python}",
        ],
        check=True,
        capture_output=True,
    )


def _import_times(layers: dict[str, Path], runs: int) -> dict[str, dict[str, Any]]:
    """Each handler imported from each built layer in fresh processes, both tracing modes.
    Nothing may write bytecode (Lambda's /opt is read-only): what a layer ships is all
    there is. boto3 comes from this interpreter's site-packages, as on Lambda from the
    runtime's. The runs are interleaved (every configuration once per round), so a slow
    spell of a shared machine weighs on every figure alike instead of on one."""
    # Both tracing modes: the template's default (PassThrough) does not load the X-Ray SDK.
    modes = {"": "true", "_tracing_active": "false"}
    configs = list(itertools.product(layers.items(), HANDLERS, modes.items()))
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(runs):
        for (layer_name, layer), name, (suffix, disabled) in configs:
            probe = _PROBE.format(layer=str(layer), function=str(ROOT / "functions" / name))
            env = {
                **os.environ,
                "POWERTOOLS_TRACE_DISABLED": disabled,
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            out = subprocess.run(  # noqa: S603 - our own interpreter and probe
                [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
            )
            sample = json.loads(out.stdout.strip().splitlines()[-1])
            samples.setdefault((layer_name, name + suffix), []).append(sample)
    result: dict[str, dict[str, Any]] = {}
    for (layer_name, handler), taken in samples.items():
        result.setdefault(layer_name, {})[handler] = {
            "import_ms_median": round(statistics.median(s["import_ms"] for s in taken), 1),
            "max_rss_mb_median": round(statistics.median(s["max_rss_mb"] for s in taken), 1),
            "runs": runs,
        }
    return result


def cold_start(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        # The deployed (arm64) layer for its size; the same layer for this machine to import.
        artifacts = Path(tmp) / "layer"
        build_layer(artifacts, "manylinux2014_aarch64")
        unzipped = _dir_size(artifacts)
        archive = shutil.make_archive(str(Path(tmp) / "layer"), "zip", artifacts)
        zipped = Path(archive).stat().st_size
        local = Path(tmp) / "local"
        build_layer(local, f"manylinux2014_{platform.machine()}")
        # The layer as it shipped before it carried bytecode: every module compiled at import.
        bare = Path(tmp) / "bare"
        shutil.copytree(local / "python", bare, ignore=shutil.ignore_patterns("__pycache__"))
        times = _import_times({"with": local / "python", "without": bare}, runs)
    handlers, without = times["with"], times["without"]
    for name, figures in handlers.items():
        figures["import_ms_median_without_bytecode"] = without[name]["import_ms_median"]
    return {
        "python": sys.version.split()[0],
        "handlers": handlers,
        "layer_unzipped_mb": round(unzipped / 2**20, 1),
        "layer_zipped_mb": round(zipped / 2**20, 1),
        "targets": {"import_ms": IMPORT_TARGET_MS, "layer_unzipped_mb": LAYER_TARGET_MB},
    }


def api_calls(jobs: int) -> dict[str, Any]:
    from local.world import World, WorldOptions  # noqa: PLC0415 - heavy; only this scenario

    report = World(WorldOptions(jobs=jobs, pause_seconds=0, timeout=300), io.StringIO()).run()
    launched = max(report.launched, 1)
    stacks = sum(report.stacks_calls.values())
    aws = sum(report.aws_calls.values())
    return {
        "jobs_in_workload": len(report.jobs),
        "launched": report.launched,
        "invariants_ok": report.ok,
        "stacks_api_calls": report.stacks_calls,
        "aws_calls": report.aws_calls,
        "stacks_api_calls_per_job": round(stacks / launched, 3),
        "aws_calls_per_job": round(aws / launched, 3),
        "minimum_note": "per job at least GetJob (1 Stacks API call) and RunTask + the ledger's "
        "PutItem and UpdateItem (3 AWS calls); listing, reserving, SQS sends and "
        "notifications are batched and amortize towards 0",
        "targets": {"stacks_api": STACKS_CALLS_TARGET, "aws": AWS_CALLS_TARGET},
    }


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def dispatch_latency(arrivals: int, interval: float, poll_interval: int) -> dict[str, Any]:
    from local.world import World, WorldOptions  # noqa: PLC0415 - heavy; only this scenario

    opts = WorldOptions(
        jobs=0,
        poll_interval=poll_interval,
        pause_seconds=0,
        feed_jobs=arrivals,
        feed_interval=interval,
        timeout=arrivals * interval + 120,
    )
    report = World(opts, io.StringIO()).run()
    latencies = [
        j.dispatch_ms for j in report.jobs if j.label.startswith("arrival") and j.dispatch_ms
    ]
    if not latencies:
        raise RuntimeError("no arrival was launched; see local/out/lambda.log")

    def median(values: Sequence[float] | None) -> float:
        return statistics.median(values) if values else 0.0

    parts = {
        "half_poll_interval": poll_interval * 1000 / 2,
        "list": median(report.stacks_latency_ms.get("list-scheduled-jobs")),
        "reserve": median(report.stacks_latency_ms.get("batch-reserve")),
        "sqs_send": median(report.aws_latency_ms.get("sqs.SendMessageBatch")),
        "sqs_receive": median(report.aws_latency_ms.get("sqs.ReceiveMessage")),
        "get_job": median(report.stacks_latency_ms.get("show-job")),
        "run_task": median(report.aws_latency_ms.get("ecs.RunTask")),
    }
    floor = sum(parts.values())
    p50, p95, p99 = (_percentile(latencies, q) for q in (0.5, 0.95, 0.99))
    return {
        "arrivals": arrivals,
        "arrival_interval_s": interval,
        "poll_interval_s": poll_interval,
        "launched": len(latencies),
        "invariants_ok": report.ok,
        "latency_ms": {"p50": round(p50, 1), "p95": round(p95, 1), "p99": round(p99, 1)},
        "floor_ms": round(floor, 1),
        "floor_parts_ms": {k: round(v, 2) for k, v in parts.items()},
        "ratio_to_floor": {"p50": round(p50 / floor, 2), "p99": round(p99 / floor, 2)},
        "floor_note": "Stacks API parts are the emulator's handling times (loopback adds "
        "little); AWS parts are client-side round trips to moto; sqs_receive is the local "
        "event source mapping's receive call",
        "targets": {"p50_ratio": 1.25, "p99_ratio": 2.0},
    }


# Rate limits that bound a burst (docs/reference/stacks-api.md §2.1, docs/reference/aws.md §B.4).
LIST_RESERVE_CALLS_PER_SECOND = 10
JOBS_PER_BATCH_CALL = 1000
GET_JOB_CALLS_PER_SECOND = 1000
FARGATE_LAUNCH_BURST = 100
FARGATE_LAUNCHES_PER_SECOND = 20
BURST_TARGET_RATIO = 1.2
# With step images (issue #14): the jobs spread over this many Docker Hub images, pulled
# through the stack's pull-through cache; targets for that run.
BURST_STEP_IMAGES = 20
BURST_IMAGES_TARGET_RATIO = 1.1
BURST_AWS_CALLS_PER_JOB = 3.6
# The same images without the cache, a burst small enough to run quickly and still past
# Docker Hub's 10 pulls an hour (docs/reference/aws.md §H.7).
BURST_WITHOUT_CACHE_JOBS = 60


def burst_ceiling_seconds(jobs: int) -> dict[str, float]:
    """The fastest any stack could launch ``jobs`` scheduled at once, limit by limit."""
    batches = -(-jobs // JOBS_PER_BATCH_CALL)
    return {
        # One list and one reserve call per batch, each endpoint with its own 10/s window.
        "stacks_list_and_reserve": batches / LIST_RESERVE_CALLS_PER_SECOND,
        "stacks_get_job": jobs / GET_JOB_CALLS_PER_SECOND,
        "fargate_launch_rate": max(0, jobs - FARGATE_LAUNCH_BURST) / FARGATE_LAUNCHES_PER_SECOND,
    }


def burst(jobs: int, images: int = 0) -> dict[str, Any]:
    """``jobs`` scheduled at once; with ``images``, spread over that many Docker Hub step
    images pulled through the stack's cache, and the same images without it beside."""
    from local.world import World, WorldOptions  # noqa: PLC0415 - heavy; only this scenario

    report = World(
        WorldOptions(jobs=jobs, pause_seconds=0, timeout=jobs / 5 + 120, step_images=images),
        io.StringIO(),
    ).run()
    ordinary = [j for j in report.jobs if j.label.startswith("build part")]
    dispatched = [j.dispatch_ms for j in ordinary if j.dispatch_ms is not None]
    if len(dispatched) < len(ordinary):
        raise RuntimeError(
            f"{len(ordinary) - len(dispatched)} of {len(ordinary)} jobs never got a RunTask"
        )
    parts = burst_ceiling_seconds(len(report.jobs))
    ceiling = max(parts.values())
    seconds = max(dispatched) / 1000
    images_part = _burst_images(report, images) if images else {}
    return {
        **images_part,
        "jobs_in_workload": len(report.jobs),
        "ordinary_jobs": len(ordinary),
        "launched": report.launched,
        # Ordinary jobs the stack failed back, by reason: a burst should have none.
        "ordinary_failed_back": dict(
            Counter(j.detail or "" for j in ordinary if j.finished_by == "stack")
        ),
        "invariants_ok": report.ok,
        "all_launched_s": round(seconds, 1),
        "half_launched_s": round(statistics.median(dispatched) / 1000, 1),
        "ceiling_s": round(ceiling, 1),
        "ceiling_parts_s": {k: round(v, 2) for k, v in parts.items()},
        "ratio_to_ceiling": round(seconds / ceiling, 2),
        "launches_per_second": round(len(dispatched) / seconds, 1),
        "run_task_retries": report.aws_retries.get("ecs.RunTask", 0),
        "launcher_containers": report.counts.get("launcher_containers", 0),
        "ceiling_note": "the workload's few special jobs (skipped, canceled) count towards the "
        "ceiling's job total; RunTask throttling is the local world's token bucket at "
        "Fargate's published rate, answered with ThrottlingException",
        "targets": {
            "ratio_to_ceiling": BURST_IMAGES_TARGET_RATIO if images else BURST_TARGET_RATIO,
            **(
                {
                    "pull_failures": 0,
                    "register_task_definition_per_image": 1,
                    "aws_calls_per_job": BURST_AWS_CALLS_PER_JOB,
                }
                if images
                else {}
            ),
        },
    }


def _pull_failures(report: WorldReport) -> int:
    """Ordinary jobs failed back for a pull (the demo's own unpullable image is not one)."""
    return sum(
        1
        for j in report.jobs
        if j.label.startswith("build part")
        and j.finished_by == "stack"
        and ("could not be pulled" in (j.detail or "") or "rate limit" in (j.detail or ""))
    )


def _burst_images(report: WorldReport, images: int) -> dict[str, Any]:
    """The step-image figures of a burst through the cache, and of the same images without
    it (a small burst: the figure is how many pulls Docker Hub refuses)."""
    from local.world import World, WorldOptions  # noqa: PLC0415 - heavy; only this scenario

    launched = max(report.launched, 1)
    # The burst's images and the demo's own step image (the demo jobs run too).
    named = len({j.asked_image for j in report.jobs if j.asked_image and j.image})
    uncached = World(
        WorldOptions(
            jobs=BURST_WITHOUT_CACHE_JOBS,
            pause_seconds=0,
            timeout=180,
            step_images=images,
            docker_hub_cache=False,
        ),
        io.StringIO(),
    ).run()
    return {
        "step_images": images,
        "pull_failures": _pull_failures(report),
        "register_task_definition_calls": report.aws_calls.get("ecs.RegisterTaskDefinition", 0),
        "images_launched": named,
        "register_task_definition_per_image": round(
            report.aws_calls.get("ecs.RegisterTaskDefinition", 0) / max(named, 1), 2
        ),
        "aws_calls_per_job": round(sum(report.aws_calls.values()) / launched, 2),
        "aws_calls": dict(report.aws_calls),
        "without_cache": {
            "jobs": BURST_WITHOUT_CACHE_JOBS,
            "pull_failures": _pull_failures(uncached),
            "docker_hub_pulls_refused": uncached.counts.get("docker_hub_pulls_refused", 0),
            "failed_back_naming_the_rate_limit": round(
                uncached.metrics.get("JobsFailed[registry_rate_limit]", 0)
            ),
        },
    }


# Unit prices, us-east-1 (docs/reference/aws.md §E.1; third-party quotes of the AWS pricing
# pages, so UNCONFIRMED until checked against the pricing pages themselves).
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
SQS_REQUEST = 0.40 / 1e6
LOGS_INGEST_GB = 0.50
CUSTOM_METRIC_MONTH = 0.30
DASHBOARD_MONTH = 3.00  # beyond the first 3 dashboards of an account
ALARM_MONTH = 0.10
# DynamoDB on-demand writes: not in the reference; $0.625 per million WRU is the price after
# AWS's November 2024 reduction (UNCONFIRMED). Powertools idempotency writes twice per job.
DYNAMODB_WRITE = 0.625 / 1e6
SECONDS_PER_MONTH = 30 * 24 * 3600
# Local handler times have no real network; a launch calls GetJob (Buildkite, ~50-100 ms
# away) and RunTask + two DynamoDB writes (~10-30 ms each): assume 200 ms more per job.
ASSUMED_NETWORK_SECONDS_PER_JOB = 0.2


def _template_numbers() -> dict[str, float]:
    from local.template import load_sam_template  # noqa: PLC0415 - only this scenario

    sam = load_sam_template()
    poller = sam["Resources"]["PollerFunction"]["Properties"]
    memory = float(sam["Globals"]["Function"]["MemorySize"])
    margin = float(poller["Environment"]["Variables"]["POLL_SAFETY_MARGIN_SECONDS"])
    alarms = sum(1 for r in sam["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm")
    return {
        "memory_gb": memory / 1024,
        "poller_busy_seconds_per_minute": min(60.0, float(poller["Timeout"]) - margin),
        "alarms": float(alarms),
    }


def _log_figures(log: Path) -> dict[str, float]:
    poll_lines = poll_bytes = other_bytes = 0
    idle_metrics: set[str] = set()
    for line in log.read_text().splitlines():
        size = len(line) + 1
        if '"poll summary"' in line:
            poll_lines += 1
            poll_bytes += size
            continue
        other_bytes += size
        # An idle poll's metrics: a poll that matched nothing (the workload's job for
        # another stack stays listed, as a shared queue's would).
        if line.startswith('{"_aws"') and '"Polls"' in line and '"JobsMatched"' not in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                idle_metrics.update(m["Name"] for m in directive["Metrics"])
    return {
        "bytes_per_poll": poll_bytes / max(poll_lines, 1),
        "other_bytes": float(other_bytes),
        "idle_metrics": float(len(idle_metrics) + 1),  # + the poller's ColdStart metric
    }


def cost(jobs: int, poll_interval: int) -> dict[str, Any]:
    from local.world import World, WorldOptions  # noqa: PLC0415 - heavy; only this scenario

    with tempfile.TemporaryDirectory() as tmp:
        opts = WorldOptions(jobs=jobs, pause_seconds=0, timeout=300, out_dir=Path(tmp))
        report = World(opts, io.StringIO()).run()
        logs = _log_figures(Path(tmp) / "lambda.log")
    t = _template_numbers()
    launched = max(report.launched, 1)
    gb = t["memory_gb"]

    # Idle month: the poller polls continuously, one invocation per minute.
    invocations = SECONDS_PER_MONTH / 60
    poller_compute = invocations * t["poller_busy_seconds_per_minute"] * gb * LAMBDA_ARM_GB_SECOND
    polls = SECONDS_PER_MONTH / poll_interval
    idle = {
        "poller_compute": poller_compute,
        "poller_requests": invocations * LAMBDA_REQUEST,
        "poll_summary_logs": polls * logs["bytes_per_poll"] / 1e9 * LOGS_INGEST_GB,
        "custom_metrics": logs["idle_metrics"] * CUSTOM_METRIC_MONTH,
        "dashboard": DASHBOARD_MONTH,
        "alarms": t["alarms"] * ALARM_MONTH,
    }

    # Per 1,000 jobs, from the run's measured handler time and calls.
    seconds = report.handler_seconds
    per_job_launch = seconds.get("launcher", 0.0) / launched
    per_job_failure = seconds.get("failure_handler", 0.0) / launched
    sends = report.aws_calls.get("sqs.SendMessageBatch", 0) / launched
    batches = report.counts.get("launcher_invocations", 0) / launched
    writes = (
        report.aws_calls.get("dynamodb.PutItem", 0) + report.aws_calls.get("dynamodb.UpdateItem", 0)
    ) / launched

    def per_thousand(launch_seconds: float) -> dict[str, float]:
        return {
            "launcher_compute": 1000 * launch_seconds * gb * LAMBDA_ARM_GB_SECOND,
            "failure_handler_compute": 1000 * per_job_failure * gb * LAMBDA_ARM_GB_SECOND,
            "lambda_requests": 1000 * (batches + 1) * LAMBDA_REQUEST,
            # send batches + the event source mapping's receive and delete per batch
            "sqs": 1000 * (sends + 2 * batches) * SQS_REQUEST,
            "dynamodb_ledger": 1000 * writes * DYNAMODB_WRITE,
            "logs": 1000 * (logs["other_bytes"] / launched) / 1e9 * LOGS_INGEST_GB,
            "ecs_events": 0.0,  # AWS service events on the default bus are free
        }

    measured = per_thousand(per_job_launch)
    with_network = per_thousand(per_job_launch + ASSUMED_NETWORK_SECONDS_PER_JOB)
    return {
        "jobs_launched": report.launched,
        "poll_interval_s": poll_interval,
        "inputs": {
            **{k: round(v, 4) for k, v in t.items()},
            "launcher_seconds_per_job": round(per_job_launch, 4),
            "failure_handler_seconds_per_job": round(per_job_failure, 4),
            "bytes_per_poll_log": round(logs["bytes_per_poll"], 1),
            "metrics_published_when_idle": logs["idle_metrics"],
        },
        "idle_month_usd": {k: round(v, 3) for k, v in idle.items()},
        "idle_month_total_usd": round(sum(idle.values()), 2),
        "per_1000_jobs_usd_measured": {k: round(v, 5) for k, v in measured.items()},
        "per_1000_jobs_total_usd_measured": round(sum(measured.values()), 4),
        "per_1000_jobs_total_usd_with_network": round(sum(with_network.values()), 4),
        "targets": {"idle_month_usd": 5.0, "per_1000_jobs_usd": 0.05},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument(
        "--scenario",
        choices=["all", "cold-start", "api-calls", "dispatch-latency", "burst", "cost"],
        default="all",
    )
    parser.add_argument("--arrivals", type=int, default=60, help="jobs for dispatch-latency")
    parser.add_argument("--arrival-interval", type=float, default=0.5, help="seconds")
    parser.add_argument("--poll-interval", type=int, default=1, help="seconds")
    parser.add_argument(
        "--runs", type=int, default=15, help="interleaved rounds of fresh processes"
    )
    parser.add_argument("--jobs", type=int, default=200, help="ordinary jobs for api-calls")
    parser.add_argument("--burst-jobs", type=int, default=2000, help="jobs for burst")
    parser.add_argument(
        "--burst-images",
        type=int,
        default=BURST_STEP_IMAGES,
        help=f"Docker Hub step images the burst's jobs name ({BURST_STEP_IMAGES}; 0: none)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Tried to parse AWS", category=UserWarning)
    warnings.filterwarnings("ignore", message="No application metrics", category=UserWarning)
    if args.scenario in ("all", "cold-start"):
        result = cold_start(args.runs)
        rounds, python = args.runs, result["python"]
        print(f"cold start (median of {rounds} interleaved fresh processes, Python {python}):")
        for name, figures in result["handlers"].items():
            print(
                f"  {name:<16} import {figures['import_ms_median']:>6.1f} ms "
                f"(target <= {IMPORT_TARGET_MS}; "
                f"{figures['import_ms_median_without_bytecode']:>6.1f} without bytecode)   "
                f"peak RSS {figures['max_rss_mb_median']:>5.1f} MB"
            )
        print(
            f"  layer            {result['layer_unzipped_mb']} MB unzipped "
            f"(target <= {LAYER_TARGET_MB}), {result['layer_zipped_mb']} MB zipped"
        )
        print(f"  -> {_write('cold-start', result).relative_to(ROOT)}")
    if args.scenario in ("all", "api-calls"):
        result = api_calls(args.jobs)
        print(f"API calls per launched job ({result['launched']} launched):")
        print(
            f"  Stacks API {result['stacks_api_calls_per_job']:.2f} (target <= "
            f"{STACKS_CALLS_TARGET})   AWS {result['aws_calls_per_job']:.2f} (target <= "
            f"{AWS_CALLS_TARGET})   invariants ok: {result['invariants_ok']}"
        )
        print(f"  Stacks API: {result['stacks_api_calls']}")
        print(f"  AWS:        {result['aws_calls']}")
        print(f"  -> {_write('api-calls', result).relative_to(ROOT)}")
    if args.scenario in ("all", "dispatch-latency"):
        result = dispatch_latency(args.arrivals, args.arrival_interval, args.poll_interval)
        lat, ratio = result["latency_ms"], result["ratio_to_floor"]
        print(
            f"dispatch latency ({result['launched']} arrivals, one per {args.arrival_interval} s "
            "on average, "
            f"poll every {args.poll_interval} s):"
        )
        print(
            f"  p50 {lat['p50']:.0f} ms  p95 {lat['p95']:.0f} ms  p99 {lat['p99']:.0f} ms   "
            f"floor {result['floor_ms']:.0f} ms   p50/floor {ratio['p50']} (target <= 1.25)  "
            f"p99/floor {ratio['p99']} (target <= 2)"
        )
        print(f"  floor parts (ms): {result['floor_parts_ms']}")
        print(f"  -> {_write('dispatch-latency', result).relative_to(ROOT)}")
    if args.scenario in ("all", "burst"):
        result = burst(args.burst_jobs, args.burst_images)
        print(
            f"burst ({result['ordinary_jobs']} jobs scheduled at once, "
            f"{args.burst_images} step images through the pull-through cache):"
        )
        print(
            f"  all launched after {result['all_launched_s']} s (half after "
            f"{result['half_launched_s']} s, {result['launches_per_second']}/s)   ceiling "
            f"{result['ceiling_s']} s   ratio {result['ratio_to_ceiling']} (target <= "
            f"{result['targets']['ratio_to_ceiling']})   RunTask retries "
            f"{result['run_task_retries']}   invariants ok: {result['invariants_ok']}"
        )
        print(f"  ceiling parts (s): {result['ceiling_parts_s']}")
        if args.burst_images:
            print(
                f"  pull failures {result['pull_failures']} (target 0)   "
                f"RegisterTaskDefinition {result['register_task_definition_calls']} for "
                f"{result['images_launched']} images   AWS calls per job "
                f"{result['aws_calls_per_job']} "
                f"(target <= {BURST_AWS_CALLS_PER_JOB})"
            )
            uncached = result["without_cache"]
            print(
                f"  without the cache, {uncached['jobs']} jobs: {uncached['pull_failures']} "
                f"pull failures ({uncached['failed_back_naming_the_rate_limit']} failed back "
                "naming Docker Hub's rate limit)"
            )
        print(f"  -> {_write('burst', result).relative_to(ROOT)}")
    if args.scenario in ("all", "cost"):
        result = cost(args.jobs, args.poll_interval)
        print(f"cost model (arm64, us-east-1, poll every {args.poll_interval} s):")
        print(
            f"  idle month ${result['idle_month_total_usd']:.2f} (target <= $5): "
            f"{result['idle_month_usd']}"
        )
        print(
            f"  per 1,000 jobs ${result['per_1000_jobs_total_usd_measured']:.4f} as measured, "
            f"${result['per_1000_jobs_total_usd_with_network']:.4f} with "
            f"{ASSUMED_NETWORK_SECONDS_PER_JOB} s of real network per launch (target <= $0.05)"
        )
        print(f"  -> {_write('cost', result).relative_to(ROOT)}")
    return 0
