"""The handlers' metrics, read back from the Embedded Metric Format lines they print, and
the poller's polls from its log lines.

The local world has no CloudWatch: the EMF blobs in the run's log are what CloudWatch would
turn into metrics (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html),
summed or averaged the way the dashboard shows them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path


def emf_points(log_path: Path) -> Iterator[tuple[str, int, float, int]]:
    """(metric key, timestamp ms, sum, samples) for every EMF metric the handlers printed;
    the key names the bounded dimensions, e.g. ``JobsFailed[image_pull]``, and ends in
    `` (avg ms)`` for durations."""
    for line in _lines(log_path):
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        stamp = int(blob["_aws"]["Timestamp"])
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            dims = [
                d
                for group in directive["Dimensions"]
                for d in group
                if d not in ("service", "stack", "function_name")
            ]
            for metric in directive["Metrics"]:
                name = metric["Name"]
                values = blob.get(name)
                total = sum(values) if isinstance(values, list) else float(values or 0)
                key = name + "".join(f"[{blob[d]}]" for d in dims)
                if metric.get("Unit") == "Milliseconds":
                    key += " (avg ms)"
                yield key, stamp, total, len(values) if isinstance(values, list) else 1


def emf_totals(log_path: Path) -> dict[str, float]:
    """Every EMF metric the handlers printed, as CloudWatch would show it over the run:
    counts summed, milliseconds averaged (key suffixed ``(avg ms)``)."""
    totals: dict[str, float] = defaultdict(float)
    samples: dict[str, int] = defaultdict(int)
    for key, _, total, n in emf_points(log_path):
        totals[key] += total
        samples[key] += n
    return {k: v / samples[k] if k.endswith("(avg ms)") else v for k, v in totals.items()}


def emf_series(log_path: Path) -> dict[str, dict[int, float]]:
    """The counts per second of the run (seconds since the first metric), as the
    dashboard's graphs plot them per period."""
    points = [(k, stamp, total) for k, stamp, total, _ in emf_points(log_path)]
    if not points:
        return {}
    first = min(stamp for _, stamp, _ in points)
    series: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for key, stamp, total in points:
        if not key.endswith("(avg ms)"):
            series[key][(stamp - first) // 1000] += total
    return {k: dict(v) for k, v in series.items()}


def poll_times(log_path: Path) -> list[tuple[str, datetime]]:
    """(invocation id, time) of every poll a poller invocation logged ("poll summary", with
    Powertools' ``function_request_id`` and millisecond ``timestamp``)."""
    polls = []
    for line in _lines(log_path):
        if '"poll summary"' not in line or not line.startswith("{"):
            continue
        record = json.loads(line)
        stamp = datetime.strptime(record["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z")
        polls.append((str(record.get("function_request_id", "?")), stamp))
    return polls


def _lines(path: Path) -> Iterator[str]:
    with path.open() as handle:
        yield from (line.strip() for line in handle)
