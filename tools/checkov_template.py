"""checkov on the template as CloudFormation sees it (`make security`).

checkov reads CloudFormation, not SAM: the functions' roles, event source mappings and
invoke configs only exist after translation. So translate template.yaml exactly as the
tests do (local.template), write it to a temporary file and scan that. Every skip is in
template.yaml, on the resource, with its reason (SAM carries ``Metadata`` through).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.template import load_sam_template, translate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkov", default="checkov", help="the checkov executable")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        translated = Path(tmp) / "template.json"
        translated.write_text(json.dumps(translate(load_sam_template()), indent=1))
        done = subprocess.run(  # noqa: S603 - the scanner the Makefile names
            [
                args.checkov,
                *("-f", str(translated), "--framework", "cloudformation", "--compact"),
                # No call to the vendor's platform: offline, and the checks ship with checkov.
                "--skip-download",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
    summary = [line for line in done.stdout.splitlines() if "checks:" in line]
    print("checkov (translated template):", *summary)
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
