"""The real handlers against moto (the template's own resources) and the emulator (HTTP).

Each test gets a fresh in-process moto with the translated template created as a
CloudFormation stack, the function's environment resolved from that stack, and a clean
emulator; the composition root's caches are cleared so every test builds its own clients.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from fargate_stack import bootstrap
from local.aws_world import AwsWorld, provision
from local.emulator import Emulator
from local.lambda_runtime import LocalContext, load_handler
from tests.conftest import EMULATOR_TOKEN

STACK_KEY = "fargate"  # the stack key the samples in events/ carry
QUEUE = "fargate"


@dataclass
class Stack:
    aws: AwsWorld
    emulator: Emulator
    handlers: dict[str, ModuleType]

    def control(self, method: str, path: str, body: object = None) -> Any:
        answer = requests.request(method, self.emulator.control_url + path, json=body, timeout=5)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def create_job(self, **spec: Any) -> str:
        body = {"queue_key": QUEUE, "agent_query_rules": [f"queue={QUEUE}", "os=linux"], **spec}
        job_id: str = self.control("POST", "jobs", body)["jobs"][0]["id"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.control("GET", f"jobs/{job_id}")
        return view

    def register(self) -> None:
        answer = requests.post(
            self.emulator.base_url + "stacks/register",
            json={"key": STACK_KEY, "type": "custom", "queue_key": QUEUE, "metadata": {}},
            headers={"Authorization": f"Token {EMULATOR_TOKEN}"},
            timeout=5,
        )
        answer.raise_for_status()

    def reserve(self, *job_ids: str) -> None:
        answer = requests.put(
            self.emulator.base_url + f"stacks/{STACK_KEY}/scheduled-jobs/batch-reserve",
            json={"job_uuids": list(job_ids)},
            headers={"Authorization": f"Token {EMULATOR_TOKEN}"},
            timeout=5,
        )
        answer.raise_for_status()

    def invoke(self, function: str, event: dict[str, Any], timeout: float = 30) -> Any:
        return self.handlers[function].lambda_handler(event, LocalContext(function, timeout))

    def queue_url(self, logical_id: str) -> str:
        name = self.aws.id_of(logical_id).rstrip("/").rsplit("/", 1)[-1]
        return str(boto3.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    def receive(self, logical_id: str) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        got = sqs.receive_message(
            QueueUrl=self.queue_url(logical_id), MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        return [dict(m) for m in got.get("Messages", [])]

    def tasks(self) -> list[dict[str, Any]]:
        ecs = boto3.client("ecs")
        cluster = self.aws.environments["LauncherFunction"]["ECS_CLUSTER"]
        arns = []
        for status in ("RUNNING", "STOPPED"):
            arns += ecs.list_tasks(cluster=cluster, desiredStatus=status)["taskArns"]
        if not arns:
            return []
        described = ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"]
        return [dict(task) for task in described]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {"ApproximateReceiveCount": "1"}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


@pytest.fixture
def stack(
    emulator: Emulator, fake_aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    with mock_aws():
        aws = provision(
            "in-process",
            {
                "StackKey": STACK_KEY,
                "QueueKey": QUEUE,
                "BuildkiteApiUrl": emulator.base_url,
                "PollIntervalSeconds": "1",
            },
            EMULATOR_TOKEN,
        )
        for variables in aws.environments.values():
            for name, value in variables.items():
                monkeypatch.setenv(name, value)
        # The poller loops until this margin before its timeout; tests give it ~1 s.
        monkeypatch.setenv("POLL_SAFETY_MARGIN_SECONDS", "1")
        bootstrap.reset()
        handlers = {
            "poller": load_handler("poller"),
            "launcher": load_handler("launcher"),
            "failure_handler": load_handler("failure_handler"),
        }
        yield Stack(aws=aws, emulator=emulator, handlers=handlers)
        bootstrap.reset()


Loader = Callable[[str], dict[str, Any]]


@pytest.fixture
def sample() -> Loader:
    from pathlib import Path  # noqa: PLC0415

    events = Path(__file__).resolve().parents[3] / "events"

    def load(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((events / name).read_text())
        return data

    return load
