"""Cropping of finish and notification details to the server's limits."""

from __future__ import annotations

import pytest

from fargate_stack.stacksapi import (
    FINISH_CROP_SUFFIX,
    FINISH_DETAIL_MAX_BYTES,
    NOTIFICATION_CROP_SUFFIX,
    NOTIFICATION_DETAIL_MAX_CHARS,
    crop_detail,
    crop_notification_detail,
)

SUFFIX_BYTES = len(FINISH_CROP_SUFFIX.encode())


def test_the_suffix_is_the_go_clients() -> None:
    assert FINISH_CROP_SUFFIX == "… (Message was cropped because it exceeded the max size)"
    assert FINISH_DETAIL_MAX_BYTES == 4096


def test_short_detail_is_unchanged() -> None:
    assert crop_detail("image pull failed") == "image pull failed"


def test_detail_exactly_at_the_limit_is_unchanged() -> None:
    detail = "x" * 4096
    assert crop_detail(detail) == detail


def test_ascii_one_byte_over_is_cropped_to_exactly_the_limit() -> None:
    cropped = crop_detail("x" * 4097)
    assert cropped.endswith(FINISH_CROP_SUFFIX)
    assert len(cropped.encode()) == 4096
    assert cropped == "x" * (4096 - SUFFIX_BYTES) + FINISH_CROP_SUFFIX


@pytest.mark.parametrize("char", ["é", "€", "🚀"])  # 2, 3 and 4 bytes in UTF-8
@pytest.mark.parametrize("lead", [0, 1, 2, 3])  # shift the cut across the character
def test_multibyte_detail_is_cut_on_a_character_boundary(char: str, lead: int) -> None:
    detail = "a" * lead + char * 3000
    cropped = crop_detail(detail)
    raw = cropped.encode()  # would raise if a character had been split
    assert len(raw) <= 4096
    assert len(raw) > 4096 - len(char.encode())  # no more than one character given up
    assert cropped.endswith(FINISH_CROP_SUFFIX)
    body = cropped.removesuffix(FINISH_CROP_SUFFIX)
    assert detail.startswith(body)
    assert "\ufffd" not in cropped


def test_lone_surrogate_is_measured_as_sent() -> None:
    detail = "\udc80" * 5000  # not encodable: goes on the wire as "?"
    cropped = crop_detail(detail)
    assert len(cropped.encode("utf-8", errors="replace")) <= 4096


def test_notification_detail_limits_characters_not_bytes() -> None:
    assert NOTIFICATION_DETAIL_MAX_CHARS == 256
    fits = "é" * 256  # 512 bytes, but 256 characters: the server counts characters
    assert crop_notification_detail(fits) == fits


def test_notification_detail_over_the_limit_is_cropped_to_exactly_256_characters() -> None:
    cropped = crop_notification_detail("🚀" * 300)
    assert len(cropped) == 256
    assert cropped.endswith(NOTIFICATION_CROP_SUFFIX)
    assert cropped.startswith("🚀" * (256 - len(NOTIFICATION_CROP_SUFFIX)))
