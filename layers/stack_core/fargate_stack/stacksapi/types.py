"""Enumerations from the Go ``type.go`` and the base of every response model.

Responses tolerate unknown fields (Buildkite adds fields without notice) and, where the
Go client would decode a JSON ``null`` into a zero value, so do we: a null list is empty,
a null map is empty. A *missing required* field is still an error that names it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict


class StackType(StrEnum):
    """``custom`` is for every third-party stack; the others are reserved for Buildkite's
    own (agent-stack-k8s, Elastic CI Stack), per the Go ``type.go``."""

    CUSTOM = "custom"
    KUBERNETES = "kubernetes"
    ELASTIC = "elastic"


class StackState(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    LOST = "lost"


class APIModel(BaseModel):
    """A Buildkite answer: extra fields ignored, read-only once parsed."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _list_if_null(value: object) -> object:
    return [] if value is None else value


def _dict_if_null(value: object) -> object:
    return {} if value is None else value


def _str_if_null(value: object) -> object:
    return "" if value is None else value


def _zero_if_null(value: object) -> object:
    return 0 if value is None else value


StrList = Annotated[list[str], BeforeValidator(_list_if_null)]
StrDict = Annotated[dict[str, str], BeforeValidator(_dict_if_null)]
NullableStr = Annotated[str, BeforeValidator(_str_if_null)]
NullableInt = Annotated[int, BeforeValidator(_zero_if_null)]
ListIfNull = BeforeValidator(_list_if_null)
