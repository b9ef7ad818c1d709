"""The local world's HTML report: a timeline of every job and the dashboard's numbers.

One self-contained file (inline SVG, no scripts or external assets) so it opens anywhere.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from local.outcome import JobOutcome, WorldReport

_ROW = 22
_LEFT = 260
_WIDTH = 900
# Colours per job state in a timeline bar.
_COLOURS = {
    "scheduled": "#c9d6e8",
    "reserved": "#f2c14e",
    "accepted": "#7fb069",
    "running": "#4c956c",
    "finished": "#2c6e49",
    "canceled": "#999999",
}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _segments(job: JobOutcome) -> list[tuple[str, datetime, datetime | None]]:
    points = [(h["state"], _time(h["at"])) for h in job.history if h.get("at")]
    segments: list[tuple[str, datetime, datetime | None]] = []
    for index, (state, start) in enumerate(points):
        if start is None:
            continue
        end = points[index + 1][1] if index + 1 < len(points) else None
        segments.append((state, start, end))
    return segments


# The dashboard's count widgets (template.yaml's dashboard), as charts of the run.
_CHARTS = (
    "JobsReserved",
    "TasksLaunched",
    "JobsFailed",
    "LaunchRetried",
    "LaunchFailed",
    "StopsIgnored",
    "PollErrors",
)


def _charts(series: dict[str, dict[int, float]]) -> str:
    """One small bar chart per dashboard metric, per second: its undimensioned total where
    the handler publishes one (for an alarm), else all its dimensions summed."""
    charts = []
    last = max((t for points in series.values() for t in points), default=0)
    for name in _CHARTS:
        per_second: dict[int, float] = {}
        for key, points in series.items():
            if key == name if name in series else key.startswith(name + "["):
                for t, v in points.items():
                    per_second[t] = per_second.get(t, 0) + v
        if not per_second:
            continue
        top = max(per_second.values())
        width, height = 360, 80
        step = width / (last + 1)
        bars = "".join(
            f'<rect x="{t * step:.1f}" y="{height - v / top * height:.1f}" '
            f'width="{max(step - 0.5, 0.5):.1f}" height="{v / top * height:.1f}" '
            f'fill="#2e86c1"><title>{v:.0f} at {t} s</title></rect>'
            for t, v in sorted(per_second.items())
        )
        total = sum(per_second.values())
        charts.append(
            f'<figure style="display:inline-block;margin:0 1em 1em 0">'
            f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
            f'style="border-bottom:1px solid #999">{bars}</svg>'
            f"<figcaption>{html.escape(name)}: {total:.0f} in {last + 1} s "
            f"(peak {top:.0f}/s)</figcaption></figure>"
        )
    return "".join(charts) or "<p>No dashboard metrics were published.</p>"


def render(report: WorldReport, title: str = "Buildkite Fargate Stack: local run") -> str:
    starts = [s for j in report.jobs for _, s, _ in _segments(j)]
    ends = [e for j in report.jobs for _, _, e in _segments(j) if e] + starts
    if not starts:
        return f"<!doctype html><title>{html.escape(title)}</title><p>No jobs.</p>"
    t0, t1 = min(starts), max(ends)
    span = max((t1 - t0).total_seconds(), 0.001)

    def x(moment: datetime) -> float:
        return _LEFT + (moment - t0).total_seconds() / span * (_WIDTH - _LEFT - 10)

    rows = []
    ordered = sorted(report.jobs, key=lambda j: (j.scheduled_at or "", j.label))
    for i, job in enumerate(ordered):
        y = 30 + i * _ROW
        rows.append(f'<text x="4" y="{y + 14}" font-size="12">{html.escape(job.label[:36])}</text>')
        for state, start, end in _segments(job):
            stop = end or t1
            width = max(x(stop) - x(start), 1.5)
            colour = _COLOURS.get(state, "#bbbbbb")
            rows.append(
                f'<rect x="{x(start):.1f}" y="{y}" width="{width:.1f}" height="16" '
                f'fill="{colour}"><title>{html.escape(state)} at {start.isoformat()}</title></rect>'
            )
        if job.run_task_at and (moment := _time(job.run_task_at)):
            rows.append(
                f'<line x1="{x(moment):.1f}" x2="{x(moment):.1f}" y1="{y - 2}" y2="{y + 18}" '
                f'stroke="#c0392b" stroke-width="2"><title>RunTask at {moment.isoformat()}'
                "</title></line>"
            )
    height = 40 + len(ordered) * _ROW
    legend = " ".join(
        f'<span style="background:{c};padding:0 6px">{s}</span>' for s, c in _COLOURS.items()
    )
    table = "".join(
        f"<tr><td>{html.escape(j.label)}</td><td>{html.escape(j.state)}</td>"
        f"<td>{'' if j.dispatch_ms is None else f'{j.dispatch_ms / 1000:.2f} s'}</td>"
        f"<td>{html.escape(j.detail or '')}</td></tr>"
        for j in ordered
    )
    metrics = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.0f}</td></tr>"
        for k, v in sorted(report.metrics.items())
        if v
    )
    verdict = (
        "Invariants held: no job lost, no double launch, FailJob only for jobs never taken."
        if report.ok
        else "INVARIANTS BROKEN: " + "; ".join(html.escape(v) for v in report.violations)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}td,th{{padding:2px 8px;text-align:left}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style></head>
<body><h1>{html.escape(title)}</h1><p><strong>{verdict}</strong></p>
<h2>Timeline</h2><p>Each bar is a job's Buildkite state over time; the red mark is RunTask.
{legend}</p>
<svg width="{_WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>
<h2>Jobs</h2><table><tr><th>job</th><th>final state</th><th>dispatch</th><th>why</th></tr>
{table}</table>
<h2>Dashboard</h2><p>The dashboard's count widgets over the run, per second.</p>
{_charts(report.metric_series)}
<h2>Dashboard metrics</h2><table><tr><th>metric</th><th>value</th></tr>{metrics}</table>
</body></html>
"""


def write(report: WorldReport, path: Path) -> Path:
    path.write_text(render(report))
    return path
