"""`python -m local.emulator`: run the emulator in the foreground until Ctrl-C.

The base URL is the first line printed, so a script can start it with `--port 0` and read
where it landed.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from local.emulator.seed import demo_jobs
from local.emulator.server import Emulator


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.emulator",
        description="Buildkite Stacks API emulator (plus the Agent API slice an agent needs).",
    )
    parser.add_argument("--port", type=int, default=8080, help="port (0 = a free one; 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--token",
        default=None,
        help="the cluster token clients must send (default: a random bkct_local_... token)",
    )
    parser.add_argument(
        "--seed-demo", action="store_true", help="start with a few demo jobs on queue 'default'"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    token = args.token or "bkct_local_" + secrets.token_hex(8)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    with Emulator(token=token, port=args.port, host=args.host) as emu:
        if args.seed_demo:
            emu.state.create_jobs(demo_jobs())
        print(emu.base_url, flush=True)
        print(f"token:   {token}", flush=True)
        print(f"control: {emu.control_url}", flush=True)
        if args.seed_demo:
            print(f"seeded:  {len(emu.state.jobs)} demo jobs on queue 'default'", flush=True)
        print("Ctrl-C to stop", flush=True)
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    print("emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
