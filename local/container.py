"""A Lambda container: one handler in its own process, one invocation at a time.

The launcher's event source mapping runs up to ``LauncherMaxConcurrency`` invocations at
once, each in its own container with its own module state (clients, caches, Powertools'
metric set). Threads in one process would share that state, which Lambda never does, so
each local container is a child process: it imports the handler once (its cold start),
then answers invocations sent as JSON lines on stdin with JSON lines on stdout. Its logs
and metrics go to the world's log file, as a Lambda's go to CloudWatch.

It counts its own AWS calls (the world's API-calls-per-job figure needs them) and hands
them over when the world closes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from local.lambda_runtime import ROOT, CallTimer, LocalContext, load_handler


class InvocationError(Exception):
    """The handler raised: Lambda reports the invocation as failed."""


class LambdaContainer:
    def __init__(self, function_dir: str, log_path: Path) -> None:
        self._lock = threading.Lock()
        self._child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local.container", function_dir, str(log_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=dict(os.environ),
        )

    def wait_ready(self) -> None:
        """Block until the handler is imported (the cold start is over)."""
        self._ask({"op": "ready"})

    def invoke(self, event: dict[str, Any], context: LocalContext) -> Any:
        answer = self._ask(
            {
                "op": "invoke",
                "event": event,
                "function_name": context.function_name,
                "timeout_seconds": context.get_remaining_time_in_millis() / 1000,
            }
        )
        if "error" in answer:
            raise InvocationError(answer["error"])
        return answer.get("result")

    def close(self) -> tuple[dict[str, list[float]], dict[str, int]]:
        """Stop the container; returns its AWS call durations and botocore retries, by
        operation."""
        answer: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            answer = self._ask({"op": "close"})
        with contextlib.suppress(OSError, ValueError):
            if self._child.stdin:
                self._child.stdin.close()
        try:
            self._child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        return answer.get("calls", {}), answer.get("retries", {})

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._child.stdin, self._child.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("container pipes are closed")
        with self._lock:
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
            line = stdout.readline()
        if not line:
            raise RuntimeError(f"container exited (code {self._child.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer


def _serve(function_dir: str, log: TextIO, replies: TextIO) -> None:
    from fargate_stack.bootstrap import aws_session  # noqa: PLC0415 - layer path set by load

    module = load_handler(function_dir)
    calls = CallTimer(aws_session())
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        reply: dict[str, Any] = {}
        if op == "invoke":
            context = LocalContext(request["function_name"], request["timeout_seconds"])
            try:
                reply["result"] = module.lambda_handler(request["event"], context)
            except Exception as exc:  # noqa: BLE001 - the invoker decides what a failure means
                reply["error"] = repr(exc)
        elif op == "close":
            reply["calls"], reply["retries"] = calls.durations, calls.retries
        log.flush()
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
        if op == "close":
            return


def main() -> None:
    function_dir, log_path = sys.argv[1], sys.argv[2]
    replies = sys.stdout
    # Everything the handler prints (logs, EMF metrics) goes to the world's log, not into
    # the reply channel.
    with Path(log_path).open("a", buffering=1) as log, contextlib.redirect_stdout(log):
        _serve(function_dir, log, replies)


if __name__ == "__main__":
    main()
