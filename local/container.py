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
import random
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from local.lambda_runtime import ROOT, CallTimer, LocalContext, load_handler


class InvocationError(Exception):
    """The handler raised: Lambda reports the invocation as failed."""


# Seeded crashes for the chaos soak: JSON {"seed": n, "<point>": probability}. A crash is a
# BaseException, so neither Powertools' batch processor nor the handler can catch it: the
# invocation dies as a killed runtime's would, and the container starts again cold.
CRASHES_ENV = "LOCAL_CRASHES"
CRASH_POINTS = {
    "launcher.before_run_task": "before-call.ecs.RunTask",
    "launcher.after_run_task": "after-call.ecs.RunTask",
    # A step image's task definition registered, its claim not yet completed: another
    # launcher takes the family over once the claim lapses (usecases/step_images.py).
    "launcher.after_register": "after-call.ecs.RegisterTaskDefinition",
}


class LocalCrash(BaseException):
    """The runtime died at a named point."""


class Crashes:
    """The crash points of a spec, with their dice and counts, attachable to a session."""

    def __init__(self, spec: dict[str, Any], seed: int) -> None:
        unknown = set(spec) - {"seed", *CRASH_POINTS}
        if unknown:
            msg = f"unknown crash points {sorted(unknown)}; known: {sorted(CRASH_POINTS)}"
            raise ValueError(msg)
        self._chances = {p: float(spec.get(p, 0)) for p in CRASH_POINTS if spec.get(p)}
        self._rng = random.Random(seed)  # noqa: S311 - fault dice, not secrets
        self.counts: Counter[str] = Counter()

    def attach(self, events: Any) -> None:
        for point, chance in self._chances.items():

            def crash(point: str = point, chance: float = chance, **_: Any) -> None:
                if self._rng.random() < chance:
                    self.counts[point] += 1
                    raise LocalCrash(point)

            events.register(CRASH_POINTS[point], crash, unique_id=f"local-crash-{point}")


class LambdaContainer:
    def __init__(
        self,
        function_dir: str,
        log_path: Path,
        index: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local.container", function_dir, str(log_path), str(index)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
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

    def close(self) -> tuple[dict[str, list[float]], dict[str, int], dict[str, int]]:
        """Stop the container; returns its AWS call durations and botocore retries by
        operation, and its crashes by point."""
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
        return answer.get("calls", {}), answer.get("retries", {}), answer.get("crashes", {})

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


def _serve(function_dir: str, log: TextIO, replies: TextIO, index: int) -> None:
    from fargate_stack import bootstrap  # noqa: PLC0415 - layer path set by load_handler

    spec = json.loads(os.environ.get(CRASHES_ENV) or "{}")
    crashes = Crashes(spec, seed=int(spec.get("seed", 0)) * 1000 + index)
    calls = CallTimer()

    def start_runtime() -> ModuleType:
        bootstrap.reset()
        events = bootstrap.aws_session().events
        calls.attach(events)
        crashes.attach(events)
        return load_handler(function_dir)

    module = start_runtime()
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        reply: dict[str, Any] = {}
        if op == "invoke":
            context = LocalContext(request["function_name"], request["timeout_seconds"])
            try:
                reply["result"] = module.lambda_handler(request["event"], context)
            except LocalCrash as crash:
                reply["error"] = f"runtime crashed at {crash}"
                # A new runtime: nothing cached survives.
                module = start_runtime()
            except Exception as exc:  # noqa: BLE001 - the invoker decides what a failure means
                reply["error"] = repr(exc)
        elif op == "close":
            reply["calls"], reply["retries"] = calls.durations, calls.retries
            reply["crashes"] = crashes.counts
        log.flush()
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
        if op == "close":
            return


def main() -> None:
    function_dir, log_path, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
    replies = sys.stdout
    # Everything the handler prints (logs, EMF metrics, stderr) goes to the world's log, as
    # a Lambda's both streams go to CloudWatch, not into the reply channel.
    with (
        Path(log_path).open("a", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        _serve(function_dir, log, replies, index)


if __name__ == "__main__":
    main()
