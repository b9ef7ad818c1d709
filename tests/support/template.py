"""cfn-lint on a translated template, the check that catches bad references, runtimes and
property values once SAM's transform has run (docs/reference/tooling.md §2)."""

from __future__ import annotations

import json
from typing import Any

import cfnlint.api


def lint(cfn: dict[str, Any]) -> list[Any]:
    config = cfnlint.api.ManualArgs(regions=["us-east-1"])
    return list(cfnlint.api.lint(json.dumps(cfn), config=config))
