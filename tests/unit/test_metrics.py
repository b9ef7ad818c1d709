"""Counts by a bounded dimension, and the totals an alarm can watch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fargate_stack.domain.launch import LaunchRejection
from fargate_stack.observability import Metric, count_by, metrics


@pytest.fixture
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def blobs(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_a_count_by_reason_is_its_own_blob_and_not_in_the_totals(
    clean_metrics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a count by reason without a total
    count_by(Metric.LAUNCH_FAILED, "reason", LaunchRejection.ECS_REJECTED)
    # Then one blob carries it with its reason, and the function's own flush has nothing
    (blob,) = blobs(capsys.readouterr().out)
    assert blob["reason"] == "ecs_rejected"
    assert "reason" in blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    assert Metric.LAUNCH_FAILED not in metrics.metric_set


def test_with_total_the_same_count_is_also_published_without_the_reason(
    clean_metrics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two failures by two reasons, counted with a total
    count_by(Metric.LAUNCH_FAILED, "reason", LaunchRejection.ECS_REJECTED, with_total=True)
    count_by(Metric.LAUNCH_FAILED, "reason", LaunchRejection.OTHER, with_total=True)
    # When the function flushes its metrics
    flushed: dict[str, Any] = dict(metrics.serialize_metric_set())
    # Then the reasons went out on their own, and the flush holds their sum without a reason:
    # the one series LaunchFailureRateAlarm can watch (an alarm cannot SEARCH).
    assert [b["reason"] for b in blobs(capsys.readouterr().out)] == ["ecs_rejected", "other"]
    assert flushed[Metric.LAUNCH_FAILED] == [1.0, 1.0]
    dimensions = flushed["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    assert "reason" not in dimensions
