"""Generate docs/configuration.md from template.yaml's Parameters (`make docs`).

The template is the single source of defaults; the operator table is derived from it so the
two cannot disagree. `--check` exits 1 when the committed file is stale (a test runs it).
Sections after the table (from its first `## ` heading on) are written by hand and kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
OUTPUT = ROOT / "docs" / "configuration.md"

HEADER = """# Configuration

Every setting is a parameter of `template.yaml`; pass them with
`sam deploy --guided` or `--parameter-overrides Name=value ...`. This page is generated from
the template by `make docs` (a test fails when it is stale), so it always matches the code.

| Parameter | Default | Allowed | Description |
| --- | --- | --- | --- |
"""


def _allowed(spec: dict[str, Any]) -> str:
    parts = []
    if "AllowedValues" in spec:
        parts.append(", ".join(f"`{v}`" for v in spec["AllowedValues"]))
    if "MinValue" in spec or "MaxValue" in spec:
        parts.append(f"{spec.get('MinValue', '')}..{spec.get('MaxValue', '')}")
    if "AllowedPattern" in spec:
        parts.append(f"pattern `{spec['AllowedPattern']}`")
    if spec.get("Type", "String") != "String" and "AllowedValues" not in spec:
        parts.append(str(spec["Type"]))
    return "; ".join(parts)


def render() -> str:
    template = yaml_parse(TEMPLATE.read_text())
    rows = []
    for name, spec in template["Parameters"].items():
        default = spec.get("Default")
        shown = "(required)" if default is None else f"`{default}`" if default != "" else '`""`'
        description = " ".join(str(spec.get("Description", "")).split()).replace("|", "\\|")
        allowed = _allowed(spec).replace("|", "\\|")
        rows.append(f"| `{name}` | {shown} | {allowed} | {description} |")
    return HEADER + "\n".join(rows) + "\n" + _guides()


def _guides() -> str:
    """The hand-written sections of the current file, from its first `## ` heading on."""
    text = OUTPUT.read_text() if OUTPUT.exists() else ""
    start = text.find("\n## ")
    return "" if start < 0 else text[start:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
