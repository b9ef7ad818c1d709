"""The local world's moto server: its own process, Fargate's RunTask rate limit, and the
SQS speed patch giving moto's answers."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.aws_world import TokenBucket, moto_server

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_run_task_past_the_rate_is_throttled_as_ecs_throttles() -> None:
    with moto_server(runtask_rate="0.001/2") as url:
        ecs = boto3.client("ecs", endpoint_url=url, config=NO_RETRIES)
        codes = []
        for _ in range(3):
            with pytest.raises(ClientError) as caught:
                ecs.run_task(cluster="nowhere", taskDefinition="none:1")
            codes.append(caught.value.response["Error"]["Code"])
    # Within the burst moto answers (no such cluster); past it, ECS's throttling error.
    assert codes[:2] == ["ClusterNotFoundException"] * 2
    assert codes[2] == "ThrottlingException"


def test_sqs_counts_and_receives_are_unchanged_by_the_speed_patch() -> None:
    with moto_server() as url:
        sqs = boto3.client("sqs", endpoint_url=url)
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        for i in range(25):
            sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "25"
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        assert len(got) == 10
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessagesNotVisible"] == "10"


def test_a_dead_letter_queue_gives_a_moved_message_its_own_tries() -> None:
    # Given source -> dlq -> parked, each redriving after one receive
    with moto_server() as url:
        sqs = boto3.client("sqs", endpoint_url=url)
        arn: dict[str, str] = {}
        urls: dict[str, str] = {}
        for name in ("parked", "dlq", "source"):
            attributes: dict[Any, str] = {}
            if name != "parked":
                target = "parked" if name == "dlq" else "dlq"
                policy = f'{{"deadLetterTargetArn": "{arn[target]}", "maxReceiveCount": "1"}}'
                attributes["RedrivePolicy"] = policy
            urls[name] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn[name] = sqs.get_queue_attributes(QueueUrl=urls[name], AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        sqs.send_message(QueueUrl=urls["source"], MessageBody="job")
        # When the source's consumer fails it once (received, not deleted)
        sqs.receive_message(QueueUrl=urls["source"], VisibilityTimeout=0)
        assert sqs.receive_message(QueueUrl=urls["source"]).get("Messages") is None
        # Then the dead-letter queue's consumer gets it once before it is parked
        got = sqs.receive_message(QueueUrl=urls["dlq"], AttributeNames=["All"])["Messages"]
        assert [m["Body"] for m in got] == ["job"]
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == "1"
