"""Tracing off means the X-Ray SDK is never imported, and handlers still run traced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from fargate_stack.observability import tracer

@tracer.capture_lambda_handler
def handler(event, context):
    return {"ok": event["n"] + 1}

print(handler({"n": 1}, None), "aws_xray_sdk.core" in sys.modules)
"""


def run_probe(trace_disabled: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "stack_core"),
        "POWERTOOLS_TRACE_DISABLED": trace_disabled,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_given_tracing_off_when_a_handler_runs_then_the_xray_sdk_is_never_loaded() -> None:
    assert run_probe("true") == "{'ok': 2} False"


def test_given_tracing_on_then_powertools_uses_the_xray_sdk() -> None:
    assert run_probe("false") == "{'ok': 2} True"
