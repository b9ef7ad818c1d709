"""Backoff math and Retry-After parsing, checked against the Go retrier's numbers."""

from __future__ import annotations

import logging

import pytest

from fargate_stack.stacksapi import RetryPolicy, parse_retry_after


def test_go_default_waits_without_jitter() -> None:
    policy = RetryPolicy(random=lambda: 0.0)
    # roko ExponentialSubsecond(1s): floor(1000 ** (n/16 + 1)) ms, n = failures - 1,
    # plus the jitter floor of 0.5 s.
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == pytest.approx([1.5, 2.039, 2.871, 4.151])


def test_jitter_is_drawn_from_the_half_open_range() -> None:
    draws = iter([0.0, 0.5, 0.999])
    policy = RetryPolicy(random=lambda: next(draws))
    assert policy.backoff(1) == pytest.approx(1.0 + 0.5)
    assert policy.backoff(1) == pytest.approx(1.0 + 0.75)
    assert policy.backoff(1) == pytest.approx(1.0 + 0.9995)


def test_defaults_are_the_go_clients() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_delay, policy.exponent_divisor) == (5, 1.0, 16.0)
    assert (policy.jitter_min, policy.jitter_max, policy.max_delay) == (0.5, 1.0, None)


def test_max_delay_caps_a_computed_wait() -> None:
    policy = RetryPolicy(random=lambda: 0.0, max_delay=2.0)
    assert [policy.backoff(n) for n in (1, 2, 3)] == [1.5, 2.0, 2.0]


def test_tiny_delays_for_tests() -> None:
    policy = RetryPolicy(initial_delay=0.001, jitter_min=0, jitter_max=0)
    assert policy.backoff(1) == 0.001
    assert policy.backoff(5) == 0.001  # 1 ms ** anything is 1 ms


def test_single_attempt_keeps_the_injected_functions() -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError(seconds)

    policy = RetryPolicy(sleep=sleep).single_attempt()
    assert policy.max_attempts == 1
    assert policy.sleep is sleep


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_delay": 0.0001},
        {"exponent_divisor": 0},
        {"jitter_min": 2, "jitter_max": 1},
        {"max_delay": -1},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_repr_hides_the_injected_callables() -> None:
    assert "sleep" not in repr(RetryPolicy())


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("8", 8.0), ("1.5", 1.5), (" 2 ", 2.0), (".5", 0.5), ("+3", 3.0), ("-1", 0.0), ("0", 0.0)],
)
def test_retry_after_in_seconds(header: str, seconds: float) -> None:
    assert parse_retry_after(header) == seconds


@pytest.mark.parametrize("header", [None, "", "   "])
def test_absent_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header) is None


@pytest.mark.parametrize("header", ["Wed, 21 Oct 2015 07:28:00 GMT", "1h", "soon", "1e3", "nan"])
def test_unusable_retry_after_is_ignored_with_a_warning(
    header: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test.retry_after")
    with caplog.at_level(logging.WARNING, logger="test.retry_after"):
        assert parse_retry_after(header, logger) is None
    assert "Retry-After" in caplog.text
