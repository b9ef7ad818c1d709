"""The operator docs match the template: the generated configuration table is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "tools/config_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_parameter_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    template = (ROOT / "template.yaml").read_text()
    params = template.split("\nParameters:\n", 1)[1].split("\nConditions:\n", 1)[0]
    names = [
        line.strip().rstrip(":")
        for line in params.splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert names
    for name in names:
        assert f"| `{name}` |" in text, name
