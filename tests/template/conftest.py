"""Fixtures that run the real template tools offline.

The translator is the same code `sam validate` and `sam deploy` run; cfn-lint 1.x no longer
translates SAM itself, so linting the translated CloudFormation is the check that catches
bad references, runtimes and property values (docs/reference/tooling.md §2).
"""

from __future__ import annotations

from typing import Any

import pytest

from local.template import load_sam_template, translate
from tests.support.template import lint


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="session")
def cfn_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    return translate(sam_template)


@pytest.fixture(scope="session")
def cfn_lint_matches(cfn_template: dict[str, Any]) -> list[Any]:
    return lint(cfn_template)
