"""The transport stays readable: one job per step, no function over 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fargate_stack.stacksapi as package

MAX_LINES = 60
MODULES = ("transport.py", "wire.py")


@pytest.mark.parametrize("module", MODULES)
def test_no_function_is_longer_than_the_limit(module: str) -> None:
    # Given the module's source
    path = Path(package.__file__).parent / module
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # When every function is measured, decorators and docstring included
    lengths = {
        node.name: (node.end_lineno or node.lineno) - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    # Then none is over the limit
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert lengths, f"{module} defines no function: the check would prove nothing"
    assert not too_long, f"{module}: functions over {MAX_LINES} lines: {too_long}"
