"""A small demo workload for `--seed-demo`, so a bare emulator has something to list."""

from __future__ import annotations

from typing import Any

DEMO_QUEUE = "default"


def demo_jobs(queue: str = DEMO_QUEUE) -> list[dict[str, Any]]:
    """Jobs of several priorities, one targeted elsewhere, one locked (acquire -> 423)."""
    jobs: list[dict[str, Any]] = [
        {
            "queue_key": queue,
            "priority": priority,
            "agent_query_rules": [f"queue={queue}", "os=linux"],
            "command": f"echo demo step {number}",
            "pipeline": {"slug": "demo-app"},
            "build": {"number": 40 + number, "branch": "main"},
            "step": {"key": f"demo-{number}"},
        }
        for number, priority in enumerate((0, 5, 1), start=1)
    ]
    jobs.append(
        {
            "queue_key": queue,
            "agent_query_rules": [f"queue={queue}", "os=windows"],
            "command": "dir",
            "pipeline": {"slug": "desktop-app"},
            "step": {"key": "windows"},
        }
    )
    jobs.append(
        {
            "queue_key": queue,
            "command": "echo waiting on a dependency",
            "pipeline": {"slug": "demo-app"},
            "step": {"key": "deploy"},
            "locked": True,
        }
    )
    return jobs
