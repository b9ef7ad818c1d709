"""Given the layer as its Makefile builds it (for this machine's platform), when a handler is
imported from it where nothing can write bytecode (Lambda's /opt is read-only,
docs/reference/tooling.md §7), then no module of the layer is compiled from source: the
layer ships valid bytecode for python3.12, whatever mtimes its sources get on the way."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.run import build_layer
from local.template import ROOT

# A layer build installs its pinned wheels (about 15 s with a warm pip cache).
pytestmark = pytest.mark.slow

# Counts every module the import system compiles from source instead of loading its .pyc.
_PROBE = """
import json, sys
import importlib._bootstrap_external as external
compiled = []
original = external.SourceLoader.source_to_code
def source_to_code(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return original(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = source_to_code
sys.path[:0] = [{layer!r}, {function!r}]
import app  # noqa: F401
import pydantic
print(json.dumps({{"compiled": [p for p in compiled if p.startswith({layer!r})],
                   "pydantic": pydantic.__file__}}))
"""


def _python312() -> str:
    if sys.version_info[:2] == (3, 12):
        return sys.executable
    found = shutil.which("python3.12")
    if found is None:
        pytest.skip("no python3.12 to build the layer's bytecode with (make build needs one)")
    return found


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifacts = tmp_path_factory.mktemp("layer")
    build_layer(artifacts, f"manylinux2014_{platform.machine()}", _python312())
    # The zip round trip may give the sources any mtime: hash-based pycs must not care.
    later = time.time() + 3600
    for source in (artifacts / "python").rglob("*.py"):
        os.utime(source, (later, later))
    return artifacts / "python"


def _compiled_on_import(layer: Path, handler: str, tracing_disabled: str) -> dict[str, object]:
    probe = _PROBE.format(layer=str(layer), function=str(ROOT / "functions" / handler))
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "POWERTOOLS_TRACE_DISABLED": tracing_disabled,
    }
    out = subprocess.run(
        [_python312(), "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("handler", ["poller", "launcher", "failure_handler"])
@pytest.mark.parametrize("tracing_disabled", ["true", "false"])
def test_no_module_of_the_layer_is_compiled_at_a_cold_start(
    layer: Path, handler: str, tracing_disabled: str
) -> None:
    result = _compiled_on_import(layer, handler, tracing_disabled)
    # The layer's own copies were imported (not the test environment's)...
    assert str(result["pydantic"]).startswith(str(layer)), result
    # ...and each from its bytecode.
    assert result["compiled"] == [], result


def test_the_probe_sees_a_layer_without_bytecode_compiled(layer: Path, tmp_path: Path) -> None:
    """Proves the check can fail: the same layer without its __pycache__ (as it shipped
    before) compiles what it imports."""
    bare = tmp_path / "python"
    shutil.copytree(layer, bare, ignore=shutil.ignore_patterns("__pycache__"))
    result = _compiled_on_import(bare, "poller", "true")
    compiled = result["compiled"]
    assert isinstance(compiled, list)
    assert any("/fargate_stack/" in p for p in compiled), result
    assert any("/pydantic/" in p for p in compiled), result
