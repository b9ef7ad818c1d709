"""Fixtures that run the real template tools offline.

The translator is the same code `sam validate` and `sam deploy` run; cfn-lint 1.x no longer
translates SAM itself, so linting the translated CloudFormation is the check that catches
bad references, runtimes and property values (see ../shared/reference/tooling.md §2).
"""

from __future__ import annotations

import json
from typing import Any

import cfnlint.api
import pytest

from local.template import ROOT, load_sam_template, translate

__all__ = ["ROOT", "lint", "translate"]


def lint(cfn: dict[str, Any]) -> list[Any]:
    config = cfnlint.api.ManualArgs(regions=["us-east-1"])
    return list(cfnlint.api.lint(json.dumps(cfn), config=config))


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="session")
def cfn_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    return translate(sam_template)


@pytest.fixture(scope="session")
def cfn_lint_matches(cfn_template: dict[str, Any]) -> list[Any]:
    return lint(cfn_template)
