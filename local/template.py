"""Translate template.yaml offline, exactly as `sam validate` would.

Shared by the template tests and the local world (which deploys the translated template
to moto), so there is one list of resources: the template itself.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


class _NoIamPolicyLoader:
    """Stands in for the translator's ManagedPolicyLoader so translation never calls IAM."""

    def load(self) -> dict[str, str]:
        return {}


def load_sam_template(path: Path = TEMPLATE) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(path.read_text())
    return parsed


ARTIFACT_BUCKET = "bucket"
FUNCTION_KEY = "function.zip"
LAYER_KEY = "layer.zip"


def translate(sam: dict[str, Any]) -> dict[str, Any]:
    """Local code paths become S3 URIs first, as `sam validate` does; the local world
    uploads code to ``s3://bucket/function.zip`` and ``layer.zip`` in moto."""
    sam = copy.deepcopy(sam)
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{FUNCTION_KEY}"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://{ARTIFACT_BUCKET}/{LAYER_KEY}"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = transform(sam, {}, _NoIamPolicyLoader())
    return result
