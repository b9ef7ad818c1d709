"""`python -m local.emulator` starts, prints its base URL first and serves."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[3]


def test_cli_prints_the_base_url_first_and_stops_cleanly_on_ctrl_c():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.emulator",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--seed-demo",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v3/")
        root = base_url.removesuffix("v3/")
        jobs = requests.get(root + "_emulator/jobs", timeout=5).json()["jobs"]
        assert len(jobs) == 5
        registered = requests.post(
            base_url + "stacks/register",
            json={"key": "cli", "type": "custom", "queue_key": "_default", "metadata": {}},
            headers={"Authorization": "Token cli-token"},
            timeout=5,
        )
        assert registered.status_code == 201
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "emulator stopped" in out
