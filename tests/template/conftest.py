"""Fixtures that run the real template tools offline.

The translator is the same code `sam validate` and `sam deploy` run; cfn-lint 1.x no longer
translates SAM itself, so linting the translated CloudFormation is the check that catches
bad references, runtimes and property values (see ../shared/reference/tooling.md §2).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _NoIamPolicyLoader:
    """Stands in for the translator's ManagedPolicyLoader so translation never calls IAM."""

    def load(self) -> dict[str, str]:
        return {}


def load_sam_template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return parsed


def translate(sam: dict[str, Any]) -> dict[str, Any]:
    """Translate like `sam validate`: local code paths become S3 URIs first."""
    sam = copy.deepcopy(sam)
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://bucket/function.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://bucket/layer.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = transform(sam, {}, _NoIamPolicyLoader())
    return result


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
