"""Fargate cpu/memory pairs per botocore's RegisterTaskDefinition documentation."""

from __future__ import annotations

import pytest

from fargate_stack.domain.fargate import InvalidTaskSizeError, validate_task_size


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [
        (256, 512),
        (256, 2048),
        (512, 4096),
        (1024, 2048),
        (4096, 30720),
        (8192, 61440),
        (16384, 122880),
        (16384, 32768),
    ],
)
def test_valid_pairs(cpu: int, memory: int) -> None:
    validate_task_size(cpu, memory)


@pytest.mark.parametrize(
    ("cpu", "memory", "message"),
    [
        (256, 4096, "between 512 and 2048"),
        (512, 1536, "got 1536"),
        (8192, 18432, "between 16384 and 61440"),
        (300, 1024, "not one of 256, 512"),
        (16384, 131072, "got 131072"),
    ],
)
def test_invalid_pairs_say_what_would_work(cpu: int, memory: int, message: str) -> None:
    with pytest.raises(InvalidTaskSizeError, match=message):
        validate_task_size(cpu, memory)
