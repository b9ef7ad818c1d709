"""Fargate task sizes: which cpu/memory pairs ECS accepts.

A bad pair is rejected by RunTask only at launch time; checking it here turns a job's
``cpu=``/``memory=`` tag (or an operator's default) into a clear, permanent error instead.
Source: botocore ecs/2014-11-13 RegisterTaskDefinitionRequest.memory (reference
docs/reference/aws.md §B.5). The 8 and 16 vCPU sizes need Linux platform version 1.4.0 or later.
"""

from __future__ import annotations

_GIB = 1024


def _steps(first: int, last: int, step: int) -> frozenset[int]:
    return frozenset(range(first, last + 1, step))


VALID_MEMORY_BY_CPU: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: _steps(1 * _GIB, 4 * _GIB, _GIB),
    1024: _steps(2 * _GIB, 8 * _GIB, _GIB),
    2048: _steps(4 * _GIB, 16 * _GIB, _GIB),
    4096: _steps(8 * _GIB, 30 * _GIB, _GIB),
    8192: _steps(16 * _GIB, 60 * _GIB, 4 * _GIB),
    16384: _steps(32 * _GIB, 120 * _GIB, 8 * _GIB),
}


class InvalidTaskSizeError(ValueError):
    """A cpu/memory pair Fargate would refuse; the message lists what would work."""


def validate_task_size(cpu: int, memory: int) -> None:
    allowed = VALID_MEMORY_BY_CPU.get(cpu)
    if allowed is None:
        cpus = ", ".join(str(c) for c in VALID_MEMORY_BY_CPU)
        raise InvalidTaskSizeError(f"Fargate cpu {cpu} is not one of {cpus} (CPU units)")
    if memory not in allowed:
        low, high = min(allowed), max(allowed)
        raise InvalidTaskSizeError(
            f"Fargate cpu {cpu} needs memory between {low} and {high} MiB in valid steps "
            f"(one of {', '.join(str(m) for m in sorted(allowed))}); got {memory}"
        )
