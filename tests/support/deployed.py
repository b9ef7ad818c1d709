"""The stack deployed into moto, with the real handlers loaded: what the handler tests drive.

``DeployedStack`` holds the provisioned template (moto), the emulator and the three
handler modules, and says in one call what a test needs: create or reserve a job in the
emulator, invoke a handler, read a queue or the cluster's tasks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import requests

from local.aws_world import AwsWorld
from local.emulator import Emulator
from local.lambda_runtime import LocalContext
from tests.support.emulator import EMULATOR_TOKEN

EVENTS = Path(__file__).resolve().parents[2] / "events"

STACK_KEY = "fargate"  # the stack key the samples in events/ carry
QUEUE = "fargate"


@dataclass
class DeployedStack:
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

    def enqueue_listed(self, poller_tick: dict[str, Any], *job_ids: str) -> dict[str, Any]:
        """The real poller lists and reserves the jobs; their launch messages as the
        launcher's SQS event."""
        self.invoke("poller", poller_tick, timeout=2.5)
        messages = self.receive("LaunchQueue")
        assert len(messages) == len(job_ids)
        arn = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url("LaunchQueue"), AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        return sqs_event(messages, arn)

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


Loader = Callable[[str], dict[str, Any]]


def load_sample(name: str) -> dict[str, Any]:
    """One of the sample events in events/ (the same files `sam local invoke` takes)."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data
