"""The AWS side of the local world: moto in server mode, provisioned from template.yaml.

The real template is translated (local.template) and created as a CloudFormation stack in
moto, so the local world runs against the same queues, table, cluster and task definition
a deploy creates; there is no second list of resources. Where moto falls short, the gap is
patched here and named (docs/reference/tooling.md §3):

- moto's RunTask needs a container-level ``memory`` (Fargate sets it per task), so the
  translated task definition gets one equal to the task memory;
- moto's event source mappings would run the functions in Docker, so they are left out
  (the local world is the event source mapping);
- moto's CloudFormation skips alarms, queue policies, the scheduler schedule and the
  poller's EventInvokeConfig: the local world drives the poller itself;
- moto's SQS reads one queue attribute (retention on receive, content-based deduplication on
  send) by computing *all* of them, which counts every message: receiving or sending n
  messages costs n², and a 2,000-job burst spent most of its time there. The patch reads
  the one attribute instead (same answers, no behaviour change);
- moto's DescribeTasks compares every task with every id asked for (quadratic in a long
  run's task count): the patch looks ids up exactly, over a snapshot;
- moto's RunTask has no rate limit: the local one has Fargate's (burst 100, 20 a second),
  answering ThrottlingException past it as ECS does;
- moto's RunTask ignores ``clientToken``: the local one keeps tokens as ECS does (the same
  request within 24 h answers the first task, another request is a conflict), and its
  tasks carry ``createdAt``;
- moto's CloudFormation keeps an ``AWS::NoValue`` in a list as ``None`` (CloudFormation
  drops the element), so a role's conditional policy (``Fn::If`` to ``AWS::NoValue`` in
  ``Policies``) failed moto's IAM: the patch drops it from lists as it already does from
  mappings;
- moto's CloudFormation skips the ECR pull-through cache rule and repository creation
  template (``AWS::ECR::PullThroughCacheRule``, ``AWS::ECR::RepositoryCreationTemplate``):
  the simulated Fargate pulls nothing, and the template tests check both resources.

- moto's CloudFormation update (``update_stack``, the local world's mid-run deploy) fails on
  a function's ``Layers``, re-registers a changed task definition with its container
  definitions' keys left in CloudFormation's case (no name, no image) and deregisters the old
  revision whatever its ``UpdateReplacePolicy``, ignores a queue's changed ``RedrivePolicy``,
  accepts ``UsePreviousValue`` only for parameters given at create, and lists updated log
  groups without their logical id: the patches fix the first three, ``update`` below applies
  the redrive and passes every value;
- moto's RunTask starts tasks from an INACTIVE (deregistered) revision, which ECS refuses: the
  local one refuses it with a ``ClientException``;
- moto's RunTask takes any ``overrides.taskRoleArn``: the local one answers ECS's "unable to
  assume the role" ``ClientException`` for a role that does not exist or whose trust policy
  does not let ``ecs-tasks.amazonaws.com`` assume it (docs/reference/aws.md §H.46).

Each function's environment is the template's own ``Environment`` for that function with
every ``Ref``/``GetAtt`` resolved against the created stack.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.credentials import ReadOnlyCredentials as Keys
from moto.server import ThreadedMotoServer

from local.iam import Record
from local.lambda_runtime import PLUMBING, use_plumbing_credentials
from local.template import ARTIFACT_BUCKET, FUNCTION_KEY, LAYER_KEY, load_sam_template, translate

REGION = "us-east-1"
STACK_NAME = "buildkite-fargate-stack"
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
FUNCTIONS = ("PollerFunction", "LauncherFunction", "FailureHandlerFunction")


@dataclass(frozen=True)
class AwsWorld:
    endpoint_url: str
    physical_ids: Mapping[str, str]
    environments: Mapping[str, Mapping[str, str]]
    token_secret_arn: str
    subnet: str
    security_group: str
    # The stack's parameter values (every one given explicitly: see ``update``).
    parameters: Mapping[str, str] = field(default_factory=dict)

    def id_of(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]


def _speed_up_moto_sqs() -> None:
    """Same answers as moto's SQS, without counting the queue once per message."""
    from moto.core.utils import unix_time  # noqa: PLC0415 - only the local world patches it
    from moto.sqs.models import Queue, SQSBackend  # noqa: PLC0415

    def is_valid(self: SQSBackend, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_valid  # type: ignore[method-assign]

    # send_message reads one attribute (ContentBasedDeduplication) through the property that
    # computes them all: while it runs, that property answers with the one it needs.
    full_attributes = Queue.attributes
    sending = threading.local()

    def attributes(self: Queue) -> dict[str, Any]:
        if getattr(sending, "active", False):
            if not self.fifo_queue:
                return {}
            dedupe = getattr(self, "content_based_deduplication", False)
            return {"ContentBasedDeduplication": str(dedupe).lower()}
        return full_attributes.fget(self)  # type: ignore[no-any-return,attr-defined]

    original_send = SQSBackend.send_message

    def send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            sending.active = False

    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]


def _register_from_cloudformation(backend: Any, properties: Mapping[str, Any]) -> Any:
    """A task definition registered from its CloudFormation properties, all of them: moto's
    own create passes only the family, containers, volumes and memory, so its revisions had
    no task or execution role (nothing to pass, no role to read the secrets with), no CPU,
    network mode, compatibilities or platform."""
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys  # noqa: PLC0415

    def camel(value: Any) -> Any:
        return remap_nested_keys(value, pascal_to_camelcase) if value is not None else None

    return backend.register_task_definition(
        family=properties["Family"],
        container_definitions=camel(properties.get("ContainerDefinitions", [])),
        volumes=camel(properties.get("Volumes", [])),
        network_mode=properties.get("NetworkMode"),
        requires_compatibilities=properties.get("RequiresCompatibilities"),
        cpu=properties.get("Cpu"),
        memory=properties.get("Memory"),
        task_role_arn=properties.get("TaskRoleArn"),
        execution_role_arn=properties.get("ExecutionRoleArn"),
        runtime_platform=camel(properties.get("RuntimePlatform")),
        ephemeral_storage=camel(properties.get("EphemeralStorage")),
    )


def _fix_moto_container_memory() -> None:
    """moto sums every container's memory for RunTask, Fargate too, and fails (a 500) on a
    container without one; Fargate needs none, only the task's (the step images' setup
    container has none: docs/reference/tooling.md §3). A missing value counts as 0."""
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415 - local world only

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    keys = ("Memory", "MemoryReservation", "memory", "memoryReservation")

    def calculate(task_definition: Any) -> Any:
        counted = copy.copy(task_definition)  # the definition itself stays as registered
        counted.container_definitions = [
            c if any(c.get(k) is not None for k in keys) else {**c, "memory": 0}
            for c in task_definition.container_definitions
        ]
        return original(counted)

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(calculate)  # type: ignore[method-assign]


def _fix_moto_task_definition_update() -> None:
    """A task definition as CloudFormation makes it, at create (every property) and at a
    replacement (the new revision from the template's properties in ECS's case, and the old
    one deregistered unless the resource's ``UpdateReplacePolicy`` is Retain;
    docs/reference/aws.md §H.26)."""
    from moto.ecs.models import TaskDefinition, ecs_backends  # noqa: PLC0415 - local world only

    def create(
        cls: type[TaskDefinition],
        /,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        backend = ecs_backends[account_id][region_name]
        return _register_from_cloudformation(backend, cloudformation_json["Properties"])

    def update(  # noqa: PLR0917 - moto's signature
        cls: type[TaskDefinition],
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = {"Family": original_resource.family, **cloudformation_json["Properties"]}
        backend = ecs_backends[account_id][region_name]
        if cloudformation_json.get("UpdateReplacePolicy") != "Retain":
            backend.deregister_task_definition(original_resource.arn)
        return _register_from_cloudformation(backend, properties)

    TaskDefinition.create_from_cloudformation_json = classmethod(create)  # type: ignore[assignment,method-assign]
    TaskDefinition.update_from_cloudformation_json = classmethod(update)  # type: ignore[assignment,method-assign]


def _refuse_inactive_task_definitions() -> None:
    """ECS runs no new task from an INACTIVE revision (docs/reference/aws.md §H.26); moto's
    RunTask does. The local one answers a ClientException (its wording is UNCONFIRMED)."""
    from moto.ecs.exceptions import (  # noqa: PLC0415 - local world only
        EcsClientException,
        TaskDefinitionNotFoundException,
    )
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415

    original = EC2ContainerServiceBackend.run_task

    def run_task(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("task_definition_str") or (args[1] if len(args) > 1 else "")
        try:
            inactive = bool(name) and self.describe_task_definition(name).status == "INACTIVE"
        except TaskDefinitionNotFoundException:
            inactive = False  # moto's own answer (after its cluster check) stays as it was
        if inactive:
            raise EcsClientException("TaskDefinition is inactive")
        return original(self, *args, **kwargs)

    EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]


def model_ecs_task_lifecycle() -> None:
    """Tasks start PROVISIONING and stay in whatever status the simulated Fargate last
    reported, as ECS's do (docs/reference/aws.md §B.6), instead of moto's own lifecycle
    (RUNNING at once, then a step on each DescribeTasks). The simulated Fargate reports
    with SubmitTaskStateChange, the call ECS's own agent makes for a task's state change
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_SubmitTaskStateChange.html),
    which moto lacks. A task already stopped (StopTask) keeps STOPPED, and the answer's
    ``acknowledgment`` says so, so the simulation never starts a stopped task. Idempotent."""
    from moto.core.responses import ActionResult  # noqa: PLC0415 - moto process only
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415
    from moto.ecs.responses import EC2ContainerServiceResponse  # noqa: PLC0415
    from moto.moto_api import state_manager  # noqa: PLC0415

    # "manual" moves a status on after this many describes: never, here (set on every
    # call: a moto reset may forget it).
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 2**62})
    if getattr(EC2ContainerServiceResponse, "task_lifecycle_modelled", False):
        return
    original = EC2ContainerServiceBackend.run_task

    def run_task(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        answer = original(self, *args, **kwargs)
        for task in answer:
            task.status = "PROVISIONING"
        return answer

    def submit_task_state_change(self: EC2ContainerServiceResponse) -> ActionResult:
        cluster = str(self._get_param("cluster", "default")).rsplit("/", 1)[-1]
        arn = str(self._get_param("task"))
        task = self.ecs_backend.tasks.get(cluster, {}).get(arn)
        if task is None:
            return ActionResult({"acknowledgment": "UNKNOWN"})
        if task.desired_status == "STOPPED":
            return ActionResult({"acknowledgment": "STOPPED"})
        task.status = str(self._get_param("status"))
        return ActionResult({"acknowledgment": "ACK"})

    EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]
    EC2ContainerServiceResponse.submit_task_state_change = submit_task_state_change  # type: ignore[attr-defined]
    EC2ContainerServiceResponse.task_lifecycle_modelled = True  # type: ignore[attr-defined]


# ECS's text for a task role it cannot assume (docs/reference/aws.md §H.46).
ROLE_NOT_ASSUMABLE = (
    "ECS was unable to assume the role '{arn}' that was provided for this task. Please verify "
    "that the role being passed has the proper trust relationship and permissions and that "
    "your IAM user has permissions to pass this role."
)


def _refuse_task_roles_ecs_cannot_assume() -> None:
    """A RunTask's task role override must exist and trust ECS tasks of this account, as
    the trust policy is evaluated for ``ecs-tasks.amazonaws.com`` (local.iam). The error
    code ECS answers with is UNCONFIRMED; ClientException is the likelier."""
    from moto.ecs.exceptions import EcsClientException  # noqa: PLC0415 - local world only
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415
    from moto.iam.models import iam_backends  # noqa: PLC0415

    from local.iam import Call, document_of, evaluate  # noqa: PLC0415

    original = EC2ContainerServiceBackend.run_task

    def assumable(account: str, region: str, arn: str) -> bool:
        backend = iam_backends[account]["aws"]
        found = [r for r in backend.roles.values() if r.arn == arn]
        if not found:
            return False
        trust = {"trust": document_of(found[0].assume_role_policy_document)}
        context = {
            "aws:SourceAccount": (account,),
            "aws:SourceArn": (f"arn:aws:ecs:{region}:{account}:task/new",),
        }
        call = Call("sts:AssumeRole", arn, context)
        return evaluate(trust, call, {"Service": "ecs-tasks.amazonaws.com"}).allowed

    def run_task(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        overrides = kwargs.get("overrides") or (args[3] if len(args) > 3 else None) or {}
        role = overrides.get("taskRoleArn")
        if role and not assumable(self.account_id, self.region_name, str(role)):
            raise EcsClientException(ROLE_NOT_ASSUMABLE.format(arn=role))
        return original(self, *args, **kwargs)

    EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]


def _fix_moto_lambda_update() -> None:
    """moto's CloudFormation update hands a function's ``Layers`` to Lambda as the layer
    version objects a ``Ref`` resolved to, not their ARNs, and the update fails with
    AttributeError: the patch takes each object's ARN (docs/local.md)."""
    from moto.awslambda.models import LambdaFunction  # noqa: PLC0415 - only the local world

    original = LambdaFunction._get_layers_data

    def get_layers_data(self: LambdaFunction, layers: list[Any]) -> Any:
        arns = [layer if isinstance(layer, str) else layer.arn for layer in layers]
        return original(self, arns)

    LambdaFunction._get_layers_data = get_layers_data  # type: ignore[method-assign,assignment]


# Fargate's task launch rate (docs/reference/aws.md §B.4): a token bucket per account and Region,
# burst 100, sustained 20 a second, and RunTask itself at 20 calls a second. The local
# world's RunTask answers ThrottlingException past it, so a burst meets the real ceiling.
RUNTASK_RATE_ENV = "LOCAL_RUNTASK_RATE"  # "<per second>/<burst>"; "0/0" turns it off
RUNTASK_RATE_DEFAULT = "20/100"


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


# RegisterTaskDefinition and DeregisterTaskDefinition share a bucket per account and Region:
# burst 20, refilled at 1 a second (docs/reference/aws.md §B.9).
TASK_DEFINITION_MODIFY_RATE = (1.0, 20.0)


def _throttle_task_definition_changes() -> None:
    """Past the bucket, both answer ThrottlingException, as ECS does. (CloudFormation's
    own registrations, a few per deploy, share it as they do in an account.)"""
    from moto.ecs.exceptions import ECSException  # noqa: PLC0415 - only the local world
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415

    bucket = TokenBucket(*TASK_DEFINITION_MODIFY_RATE)

    def limited(original: Any) -> Any:
        @functools.wraps(original)
        def call(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
            if not bucket.take():
                raise ECSException("ThrottlingException", "Rate exceeded")
            return original(self, *args, **kwargs)

        return call

    for name in ("register_task_definition", "deregister_task_definition"):
        setattr(
            EC2ContainerServiceBackend, name, limited(getattr(EC2ContainerServiceBackend, name))
        )


def _throttle_run_task(spec: str) -> None:
    from moto.ecs.exceptions import ECSException  # noqa: PLC0415 - only the local world
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415

    rate, _, burst = spec.partition("/")
    if float(rate) <= 0:
        return
    bucket = TokenBucket(float(rate), float(burst or rate))
    original = EC2ContainerServiceBackend.run_task

    def run_task(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        if not bucket.take():
            raise ECSException("ThrottlingException", "Rate exceeded")
        return original(self, *args, **kwargs)

    EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]


# Seeded AWS faults for the chaos soak: JSON {"seed": n, "<kind>": probability, ...,
# "report": "<path>"}; the counts of faults injected by kind are written to "report" when
# the server stops.
AWS_FAULTS_ENV = "LOCAL_AWS_FAULTS"
AWS_FAULT_KINDS = (
    "runtask_spot_capacity",  # RunTask answers a capacity `failures` entry (Spot only)
    "runtask_throttle",  # RunTask answers ThrottlingException beyond the rate limit
    "runtask_ec2_throttle",  # RunTask answers EC2's throttling as InvalidParameterException
    "runtask_server_error",  # RunTask answers a 500 ServerException
    "dynamodb_throttle",  # PutItem/UpdateItem answer ThrottlingException
    "sqs_send_error",  # SendMessageBatch answers a 500
    "register_throttle",  # RegisterTaskDefinition answers ThrottlingException
    "register_server_error",  # RegisterTaskDefinition answers a 500 ServerException
)
_SPOT_CAPACITY = (
    "Capacity is unavailable at this time. Please try again later or in a different "
    "availability zone"
)

# How ECS reports EC2 throttling behind the security-group lookup, a code that is usually
# permanent with a message that says retry: docs/reference/aws.md §H.4.
_EC2_THROTTLED = (
    "Error retrieving security group information for [sg-local]: Request limit exceeded."
)


def _inject_aws_faults(spec: dict[str, Any]) -> Counter[str]:
    """Patch moto's request handlers (not its backends: the local plumbing's own sends and
    CloudFormation's writes stay fault-free) to fail the stack's calls at random."""
    from moto.core.exceptions import JsonRESTError  # noqa: PLC0415 - only the local world
    from moto.core.responses import ActionResult  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415
    from moto.ecs.responses import EC2ContainerServiceResponse  # noqa: PLC0415
    from moto.sqs.responses import SQSResponse  # noqa: PLC0415

    unknown = set(spec) - {"seed", "report", *AWS_FAULT_KINDS}
    if unknown:
        msg = f"unknown AWS fault kinds {sorted(unknown)}; known: {AWS_FAULT_KINDS}"
        raise ValueError(msg)
    rng = random.Random(spec.get("seed", 0))  # noqa: S311 - fault dice, not secrets
    injected: Counter[str] = Counter()
    lock = threading.Lock()

    def roll(kind: str) -> bool:
        with lock:
            hit = rng.random() < float(spec.get(kind, 0))
            if hit:
                injected[kind] += 1
            return hit

    def server_error(message: str) -> JsonRESTError:
        error = JsonRESTError("ServerException", message)
        error.code = 500
        return error

    run_task = EC2ContainerServiceResponse.run_task

    def faulty_run_task(self: EC2ContainerServiceResponse) -> Any:
        strategy = self._get_param("capacityProviderStrategy") or []
        spot = any(item.get("capacityProvider") == "FARGATE_SPOT" for item in strategy)
        if spot and roll("runtask_spot_capacity"):
            failure = {"arn": "arn:aws:ecs:us-east-1:123456789012:task", "reason": _SPOT_CAPACITY}
            return ActionResult({"tasks": [], "failures": [failure]})
        if roll("runtask_throttle"):
            raise JsonRESTError("ThrottlingException", "Rate exceeded")
        if roll("runtask_ec2_throttle"):
            raise JsonRESTError("InvalidParameterException", _EC2_THROTTLED)
        if roll("runtask_server_error"):
            raise server_error("Service Unavailable")
        return run_task(self)

    def dynamo(original: Any) -> Any:
        def faulty(self: DynamoHandler) -> Any:
            if roll("dynamodb_throttle"):
                raise JsonRESTError(
                    "com.amazonaws.dynamodb.v20120810#ThrottlingException", "Rate exceeded"
                )
            return original(self)

        return faulty

    def erring(original: Any, *faults: tuple[str, Callable[[], Exception]]) -> Any:
        """``original``, answering the first fault whose dice hit instead."""

        def faulty(self: Any) -> Any:
            for kind, error in faults:
                if roll(kind):
                    raise error()
            return original(self)

        return faulty

    faulty_register = erring(
        EC2ContainerServiceResponse.register_task_definition,
        ("register_throttle", lambda: JsonRESTError("ThrottlingException", "Rate exceeded")),
        ("register_server_error", lambda: server_error("Service Unavailable")),
    )
    faulty_send_batch = erring(
        SQSResponse.send_message_batch, ("sqs_send_error", lambda: server_error("InternalError"))
    )

    EC2ContainerServiceResponse.run_task = faulty_run_task  # type: ignore[method-assign]
    EC2ContainerServiceResponse.register_task_definition = faulty_register  # type: ignore[method-assign]
    DynamoHandler.put_item = dynamo(DynamoHandler.put_item)  # type: ignore[method-assign]
    DynamoHandler.update_item = dynamo(DynamoHandler.update_item)  # type: ignore[method-assign]
    SQSResponse.send_message_batch = faulty_send_batch  # type: ignore[method-assign]
    return injected


def _reset_receive_count_in_dead_letter_queues() -> None:
    """A message SQS moves to a dead-letter queue starts there with no receives, so a DLQ
    with its own redrive (LaunchDeadLetterQueue -> ParkedQueue) gets its own tries; moto
    moves the message with its count, and the DLQ's first receive parks it unseen (found by
    the soak: a launch record parked after 0 tries of the failure handler). Whether AWS
    resets the count is not documented (UNCONFIRMED; localstack treats the immediate move as
    a bug, localstack/localstack#5225). A new message has no receives, so resetting on every
    add changes nothing else."""
    from moto.sqs.models import Queue  # noqa: PLC0415 - only the local world patches it

    original = Queue.add_message

    def add_message(self: Queue, message: Any) -> None:
        message.approximate_receive_count = 0
        message.approximate_first_receive_timestamp = None
        original(self, message)

    Queue.add_message = add_message  # type: ignore[method-assign]


def _speed_up_moto_ecs() -> None:
    """moto's DescribeTasks compares every task (building its ARN each time) with every id
    asked for, by substring: a 5,000-task soak spent its moto process there. Same answer
    for ids and ARNs, by exact id, over a snapshot (also sparing the 500 its iteration
    raised when a RunTask added a task meanwhile)."""
    from moto.ecs.exceptions import InvalidParameterException  # noqa: PLC0415
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415

    def describe_tasks(
        self: EC2ContainerServiceBackend, cluster_str: str, tasks: list[str]
    ) -> list[Any]:
        self._get_cluster(cluster_str)
        if not tasks:
            raise InvalidParameterException("Tasks cannot be empty.")
        wanted = {task.rsplit("/", 1)[-1] for task in tasks}
        found = []
        for cluster_tasks in list(self.tasks.values()):
            for arn, task in list(cluster_tasks.items()):
                if arn.rsplit("/", 1)[-1] in wanted:
                    task.advance()
                    found.append(task)
        return found

    EC2ContainerServiceBackend.describe_tasks = describe_tasks  # type: ignore[method-assign]


# ECS keeps a RunTask client token for 24 hours (docs/reference/aws.md §B.2).
CLIENT_TOKEN_TTL_SECONDS = 24 * 60 * 60


def model_dynamodb_atomic_writes() -> None:
    """moto checks a write's condition and then writes, unlocked: two threads' conditional
    PutItem on one new key both succeed. DynamoDB applies each conditional write atomically
    (docs/reference/tooling.md §3.4), so moto's writes are serialised here."""
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - local world only

    lock = threading.RLock()

    def locked(original: Any) -> Any:
        @functools.wraps(original)
        def write(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(self, *args, **kwargs)

        return write

    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))


def model_ecs_client_tokens() -> None:
    """ECS's RunTask idempotency, which moto lacks (it ignores ``clientToken``): within 24 h
    and per cluster, the same token with the same request answers the first call's tasks
    without starting any; the same token with another request is a ``ConflictException``
    naming them (docs/reference/aws.md §B.2). Tasks also get a ``createdAt``, which real RunTask
    answers carry and moto's do not.

    A call that started no task (throttled, refused, capacity ``failures``) does not keep
    its token: whether ECS replays such an answer is UNCONFIRMED
    (docs/reference/aws.md §B.2), and the stack treats it as not kept either way (a fresh
    attempt). Applied outermost, so an injected fault never answers a replay. Idempotent:
    applying it twice patches once.
    """
    from moto.core.exceptions import JsonRESTError  # noqa: PLC0415 - only the local world
    from moto.core.responses import ActionResult  # noqa: PLC0415
    from moto.ecs.responses import EC2ContainerServiceResponse  # noqa: PLC0415

    if getattr(EC2ContainerServiceResponse, "client_tokens_modelled", False):
        return
    original = EC2ContainerServiceResponse.run_task
    lock = threading.Lock()

    class ConflictError(JsonRESTError):
        def __init__(self, arns: list[str]) -> None:
            super().__init__(
                "ConflictException",
                "The specified client token was already used with different parameters.",
            )
            self.description = json.dumps(
                {"__type": "ConflictException", "message": self.message, "resourceIds": arns}
            )

    def run_task(self: EC2ContainerServiceResponse) -> Any:
        token = self._get_param("clientToken")
        if not token:
            return original(self)
        request = json.loads(self.body or "{}")
        request.pop("clientToken", None)
        canonical = json.dumps(request, sort_keys=True)
        cluster = str(self._get_param("cluster", "default")).rsplit("/", 1)[-1]
        key = (cluster, str(token))
        with lock:
            # Kept on the account's and region's backend: a moto reset forgets the tokens
            # with the tasks.
            kept: dict[tuple[str, str], tuple[str, list[Any], float]]
            kept = self.ecs_backend.__dict__.setdefault("local_client_tokens", {})
            found = kept.get(key)
            if found and time.time() - found[2] < CLIENT_TOKEN_TTL_SECONDS:
                first_request, tasks, _ = found
                if first_request != canonical:
                    raise ConflictError([task.task_arn for task in tasks])
                return ActionResult({"tasks": tasks, "failures": []})
            answer = original(self)
            tasks = list(getattr(answer, "result", {}).get("tasks") or [])
            if tasks:
                now = time.time()
                for task in tasks:
                    task.created_at = now
                kept[key] = (canonical, tasks, now)
            return answer

    EC2ContainerServiceResponse.run_task = run_task  # type: ignore[method-assign]
    EC2ContainerServiceResponse.client_tokens_modelled = True  # type: ignore[attr-defined]


def model_cloudformation_no_value_in_lists() -> None:
    """CloudFormation removes ``AWS::NoValue`` from a list (an ``Fn::If`` that chooses it
    drops the element); moto's ``clean_json`` drops it from mappings only and leaves
    ``None`` in lists. Same answers otherwise. Idempotent."""
    from moto.cloudformation import parsing  # noqa: PLC0415 - only the local world patches it

    if getattr(parsing, "no_value_in_lists_modelled", False):
        return
    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, list):
            cleaned = [clean_json(value, resources_map) for value in resource_json]
            return [value for value in cleaned if value is not None]
        return original(resource_json, resources_map)

    parsing.clean_json = clean_json
    parsing.no_value_in_lists_modelled = True  # type: ignore[attr-defined]


# The moto process's record of IAM decisions: JSON, written to this path when it stops.
IAM_RECORD_ENV = "LOCAL_IAM_RECORD"


class _MotoLookup:
    """What a request names only in part, from moto's backends (local.iam.Lookup)."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def table_hash_key(self, table: str) -> str | None:
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415 - moto process only

        try:
            return str(dynamodb_backends[self.account][self.region].get_table(table).hash_key_attr)
        except Exception:  # noqa: BLE001 - no such table: the request fails on its own
            return None

    def secret_arn(self, secret_id: str) -> str:
        from moto.secretsmanager.models import secretsmanager_backends  # noqa: PLC0415

        try:
            backend = secretsmanager_backends[self.account][self.region]
            return str(backend.describe_secret(secret_id).arn)
        except Exception:  # noqa: BLE001 - no such secret: named as asked
            if secret_id.startswith("arn:"):
                return secret_id
            return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{secret_id}"

    def task_definition(self, name: str) -> tuple[str, list[str]]:
        from moto.ecs.models import ecs_backends  # noqa: PLC0415

        try:
            definition = ecs_backends[self.account][self.region].describe_task_definition(name)
        except Exception:  # noqa: BLE001 - unknown: RunTask answers that itself
            family = name.rsplit("/", 1)[-1]
            return f"arn:aws:ecs:{self.region}:{self.account}:task-definition/{family}", []
        roles = [
            getattr(definition, "task_role_arn", None),
            getattr(definition, "execution_role_arn", None),
        ]
        return str(definition.arn), [r for r in roles if r]


@functools.cache
def _aws_managed_policies() -> dict[str, Any]:
    """moto's copy of AWS's managed policies, by name (parsed once: it is megabytes)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data  # noqa: PLC0415

    return dict(json.loads(aws_managed_policies_data))


def _policies_of(access_key: Any) -> dict[str, dict[str, Any]]:
    """The caller's identity policies, by name, as documents (local.iam.document_of): a
    role's inline ones (dicts when CloudFormation made them), the managed ones attached
    through the API, and the ``ManagedPolicyArns`` moto's CloudFormation left unattached."""
    from moto.iam.models import iam_backends  # noqa: PLC0415

    from local.iam import document_of  # noqa: PLC0415

    backend = iam_backends[access_key.account_id][access_key.partition]
    policies: dict[str, dict[str, Any]] = {}
    holder: Any
    if hasattr(access_key, "_owner_role_name"):
        holder = backend.get_role(access_key._owner_role_name)
    else:
        holder = backend.get_user(access_key._owner_user_name)
    for name, document in holder.policies.items():
        policies[name] = document_of(document)
    for arn, managed in holder.managed_policies.items():
        version = next(v for v in managed.versions if v.is_default)
        policies[arn] = document_of(version.document)
    for arn in getattr(holder, "local_managed_policy_arns", ()):
        policies[arn] = dict(_aws_managed_policies()[arn.rsplit("/", 1)[-1]]["Document"])
    return policies


def _enforce_iam(record: Any) -> None:
    """Replace moto's permission check (docs/local.md, "IAM"): the caller's policies read
    as AWS keeps them, each request's resource and condition keys derived from it, the
    actions RunTask implies checked too, and a denial answered as the JSON services answer
    it. moto's signature check stays. Each decision goes to ``record``."""
    from moto.core.exceptions import (  # noqa: PLC0415 - moto process only
        AccessDeniedError,
        JsonRESTError,
    )
    from moto.iam.access_control import IAMRequestBase  # noqa: PLC0415
    from moto.iam.models import Role  # noqa: PLC0415

    from local.iam import Call, calls_of, evaluate  # noqa: PLC0415

    create_role = Role.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_from_cloudformation_json(cls: type[Role], *args: Any, **kwargs: Any) -> Role:
        # moto's CloudFormation keeps inline policies as dicts, which its GetRolePolicy
        # answers as Python text, not JSON: store them as the API does. It also ignores
        # ManagedPolicyArns: keep them on the role.
        role: Role = create_role(cls, *args, **kwargs)
        inline: dict[str, Any] = role.policies
        for name, document in list(inline.items()):
            if not isinstance(document, str):
                inline[name] = json.dumps(document)
        cfn = args[1] if len(args) > 1 else kwargs["cloudformation_json"]
        role.local_managed_policy_arns = list(  # type: ignore[attr-defined,unused-ignore]
            cfn["Properties"].get("ManagedPolicyArns") or []
        )
        return role

    Role.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[assignment,method-assign]

    def check_action_permitted(self: IAMRequestBase, resource: str) -> None:
        service, _, operation = self._action.partition(":")
        if self._action == "sts:GetCallerIdentity":
            return
        json_protocol = bool(self._headers.get("X-Amz-Target"))
        body = self._body or b""
        params: dict[str, Any]
        if json_protocol and body:
            params = json.loads(body)
        else:
            query: dict[str, Any] = dict(self._data)
            params = {
                k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in query.items()
            }
        key: Any = self._access_key
        caller = str(getattr(key, "_owner_role_name", None) or key._owner_user_name)
        lookup = _MotoLookup(self.account_id, self._region)
        policies = _policies_of(key)
        role = hasattr(key, "_owner_role_name")
        for call in calls_of(service, operation, params, lookup):
            decision = evaluate(policies, call)
            # The plumbing's calls are kept by action only (its resources are every task).
            record.add(caller, call if role else Call(call.action, "*"), decision)
            if decision.allowed:
                continue
            message = (
                f"User: {key.arn} is not authorized to perform: {call.action} on resource: "
                f"{call.resource} because {decision.reason}"
            )
            if json_protocol:
                # The JSON services' AccessDeniedException, not moto's XML 403
                # (docs/reference/aws.md §H.43).
                raise JsonRESTError("AccessDeniedException", message)
            raise AccessDeniedError(user_arn=key.arn, action=call.action)

    IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]


def serve_moto() -> None:
    """Child-process entry: a moto server on a free loopback port, printed on stdout, until
    stdin closes (the parent exited or is done)."""
    # Its request log and its notes on skipped resource types are noise in `make local`.
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _speed_up_moto_sqs()
    _reset_receive_count_in_dead_letter_queues()
    _speed_up_moto_ecs()
    _fix_moto_lambda_update()
    _fix_moto_task_definition_update()
    _fix_moto_container_memory()
    _refuse_inactive_task_definitions()
    model_ecs_task_lifecycle()
    _refuse_task_roles_ecs_cannot_assume()
    model_cloudformation_no_value_in_lists()
    _throttle_run_task(os.environ.get(RUNTASK_RATE_ENV, RUNTASK_RATE_DEFAULT))
    _throttle_task_definition_changes()
    faults = json.loads(os.environ.get(AWS_FAULTS_ENV) or "{}")
    injected = _inject_aws_faults(faults) if faults else Counter[str]()
    model_dynamodb_atomic_writes()
    model_ecs_client_tokens()  # after the faults: a replay is answered before any fault
    iam_record = Record()
    _enforce_iam(iam_record)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)
    sys.stdin.read()
    server.stop()
    if faults.get("report"):
        Path(faults["report"]).write_text(json.dumps(dict(injected)))
    if os.environ.get(IAM_RECORD_ENV):
        Path(os.environ[IAM_RECORD_ENV]).write_text(json.dumps(iam_record.as_list()))


@contextmanager
def moto_server(
    runtask_rate: str = RUNTASK_RATE_DEFAULT,
    faults: Mapping[str, Any] | None = None,
    log: Path | None = None,
    iam_record: Path | None = None,
) -> Iterator[str]:
    """A moto server on a free loopback port; boto3 everywhere in this process uses it.

    It runs in a child process: the handlers, the emulator and the simulated agents share
    this process's interpreter lock, and moto in it too halved the world's throughput on a
    2-core machine (a 2,000-job burst launched ~10 jobs/s in one process).
    """
    # moto's own request errors (e.g. its ECS is not thread-safe: a 500 the client retries)
    # go to a file, not the console.
    errors = log.open("w") if log else None
    child = subprocess.Popen(
        [sys.executable, "-c", "from local.aws_world import serve_moto; serve_moto()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={
            **os.environ,
            RUNTASK_RATE_ENV: runtask_rate,
            AWS_FAULTS_ENV: json.dumps(dict(faults or {})),
            IAM_RECORD_ENV: str(iam_record or ""),
        },
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if not line.isdigit():
        child.kill()
        msg = f"moto server did not start (exit {child.wait()})"
        raise RuntimeError(msg)
    # "localhost", not 127.0.0.1: moto's CloudFormation only resolves S3 URLs on localhost.
    url = f"http://localhost:{line}"
    saved = {k: os.environ.get(k) for k in [*_FAKE_CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(_FAKE_CREDENTIALS, AWS_ENDPOINT_URL=url)
    # Until enable_iam gives it its own identity, any keys do: moto checks none yet.
    use_plumbing_credentials(Keys("local", "local", "local"))
    try:
        yield url
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if errors:
            errors.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "code runs in-process in the local world\n")
    return buffer.getvalue()


def _patch_for_moto(cfn: dict[str, Any]) -> dict[str, Any]:
    task = cfn["Resources"]["AgentTaskDefinition"]["Properties"]
    for container in task["ContainerDefinitions"]:
        container.setdefault("Memory", task["Memory"])
    # moto's own event source mappings would take messages off the queues and try to run
    # the functions in Docker; the local world plays the event source mappings itself.
    cfn["Resources"] = {
        name: resource
        for name, resource in cfn["Resources"].items()
        if resource["Type"] != "AWS::Lambda::EventSourceMapping"
    }
    return cfn


# The local world's git checkout key and HTTPS credentials (not real ones): the leak tests
# look for them.
GIT_CREDENTIALS = "https://x-access-token:local-world-not-a-token@github.com"
GIT_SSH_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nlocal-world-not-a-key\n-----END RSA PRIVATE KEY-----"
)


def provision(endpoint_url: str, parameters: Mapping[str, str], token: str) -> AwsWorld:
    """Create the secret, the network lookups and the stack; return what the handlers need."""
    ec2 = PLUMBING.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    security_group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    secret_arn = PLUMBING.client("secretsmanager", region_name=REGION).create_secret(
        Name="buildkite/fargate/cluster-token", SecretString=token
    )["ARN"]
    # Checkout secrets (GitSshKeySecretArn, GitCredentialsSecretArn), so every task's secrets
    # are read with the task execution role, under IAM, as Fargate would.
    secrets = PLUMBING.client("secretsmanager", region_name=REGION)
    git_key_arn = secrets.create_secret(
        Name="buildkite/fargate/git-deploy-key", SecretString=GIT_SSH_KEY
    )["ARN"]
    git_credentials_arn = secrets.create_secret(
        Name="buildkite/fargate/git-credentials", SecretString=GIT_CREDENTIALS
    )["ARN"]
    # Docker Hub credentials for the step images' pull-through cache (DockerHubCacheSecretArn;
    # ECR's rule: the name starts with ecr-pullthroughcache/). A run without the cache passes
    # the parameter empty.
    docker_hub_arn = secrets.create_secret(
        Name="ecr-pullthroughcache/docker-hub",
        SecretString=json.dumps({"username": "local", "accessToken": "local-world-not-a-token"}),
    )["ARN"]
    s3 = PLUMBING.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    for key in (FUNCTION_KEY, LAYER_KEY):
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=_empty_zip())

    values = {
        "ClusterTokenSecretArn": secret_arn,
        "AgentTokenSecretArn": secret_arn,
        "GitSshKeySecretArn": git_key_arn,
        "GitCredentialsSecretArn": git_credentials_arn,
        "DockerHubCacheSecretArn": docker_hub_arn,
        "Subnets": subnet,
        "SecurityGroups": security_group,
        **parameters,
    }
    sam = load_sam_template()
    cfn = _patch_for_moto(translate(sam))
    model_cloudformation_no_value_in_lists()  # for an in-process moto (the integration suites)
    client = PLUMBING.client("cloudformation", region_name=REGION)
    with warnings.catch_warnings():
        # moto warns for each resource type it skips (alarms, queue policy, schedule,
        # EventInvokeConfig, the ECR cache rule and creation template); the module docstring
        # lists them and why that is fine here.
        warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
        _create_stack(client, cfn, values)
        status = client.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
    if status != "CREATE_COMPLETE":
        raise RuntimeError(f"moto could not create the stack: {status}")
    defaults = {k: str(v.get("Default", "")) for k, v in cfn["Parameters"].items()}
    resolved_params = {**defaults, **values}
    physical = _physical_ids(client)
    return AwsWorld(
        endpoint_url=endpoint_url,
        physical_ids=physical,
        environments={fn: _environment(cfn, fn, resolved_params, physical) for fn in FUNCTIONS},
        token_secret_arn=secret_arn,
        subnet=subnet,
        security_group=security_group,
        parameters=resolved_params,
    )


# The roles the local world acts as (docs/local.md, "IAM"): each function's execution role,
# and the task execution role where the simulated Fargate reads a task's secrets.
ROLES = (
    "PollerFunctionRole",
    "LauncherFunctionRole",
    "FailureHandlerFunctionRole",
    "AgentExecutionRole",
)
PLUMBING_USER = "local-plumbing"


@dataclass(frozen=True)
class Identities:
    """Who calls AWS in the local world: the plumbing, all-powerful, and each role."""

    plumbing: Keys
    roles: Mapping[str, Keys]
    # Physical role name -> logical id, to read the moto process's record.
    logical: Mapping[str, str]

    def env_of(self, role: str) -> dict[str, str]:
        """A container's AWS credentials for one role."""
        keys = self.roles[role]
        return {
            "AWS_ACCESS_KEY_ID": str(keys.access_key),
            "AWS_SECRET_ACCESS_KEY": str(keys.secret_key),
            "AWS_SESSION_TOKEN": str(keys.token),
        }

    def session_of(self, role: str) -> boto3.session.Session:
        keys = self.roles[role]
        return boto3.session.Session(
            aws_access_key_id=keys.access_key,
            aws_secret_access_key=keys.secret_key,
            aws_session_token=keys.token,
            region_name=REGION,
        )


def enable_iam(aws: AwsWorld, without: Sequence[tuple[str, str]] = ()) -> Identities:
    """Switch moto's IAM enforcement on (``POST /moto-api/reset-auth``,
    docs/reference/aws.md §H.11) once the stack exists: the plumbing becomes an IAM user
    allowed everything, and each role in ROLES is assumed through STS for the code that
    runs as it.

    ``without``: (role, action) pairs taken out of that role's inline policies first, to
    show the world then fails where AWS would."""
    iam, sts = PLUMBING.client("iam"), PLUMBING.client("sts")
    iam.create_user(UserName=PLUMBING_USER)
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_user_policy(
        UserName=PLUMBING_USER, PolicyName="everything", PolicyDocument=json.dumps(everything)
    )
    key = iam.create_access_key(UserName=PLUMBING_USER)["AccessKey"]
    for role, action in without:
        remove_action(aws.id_of(role), action)
    roles: dict[str, Keys] = {}
    for role in ROLES:
        arn = iam.get_role(RoleName=aws.id_of(role))["Role"]["Arn"]
        creds = sts.assume_role(RoleArn=arn, RoleSessionName=f"local-{role}")["Credentials"]
        roles[role] = Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    answer = requests.post(f"{aws.endpoint_url}/moto-api/reset-auth", data=b"0", timeout=10)
    answer.raise_for_status()
    plumbing = Keys(key["AccessKeyId"], key["SecretAccessKey"], None)
    use_plumbing_credentials(plumbing)
    os.environ.update(
        AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"]
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    return Identities(plumbing=plumbing, roles=roles, logical={aws.id_of(r): r for r in ROLES})


def remove_action(role_name: str, action: str) -> None:
    """Take one action out of every inline policy of a role (a statement left with no
    action goes; a policy left with no statement is deleted)."""
    iam = PLUMBING.client("iam")
    removed = 0
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        statements = []
        for statement in document["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            kept = [a for a in actions if a.lower() != action.lower()]
            removed += len(actions) - len(kept)
            if kept:
                statements.append({**statement, "Action": kept})
        if statements:
            # SAM writes its policies without a Version, which IAM reads as 2008-10-17 and
            # moto's PutRolePolicy refuses; the statements here use nothing that differs.
            document = {"Version": "2012-10-17", **document, "Statement": statements}
            iam.put_role_policy(
                RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document)
            )
        else:
            iam.delete_role_policy(RoleName=role_name, PolicyName=name)
    if not removed:
        raise ValueError(f"role {role_name} grants no {action} to remove")


def _physical_ids(client: Any) -> dict[str, str]:
    # list_stack_resources, not describe_stack_resources: after an update moto describes
    # the updated log groups without their logical id.
    pages = client.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
    found = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in pages
        for r in page["StackResourceSummaries"]
        if r.get("PhysicalResourceId")
    }
    # The stack id, which names the image caches' prefixes (template.yaml).
    found["AWS::StackId"] = client.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackId"]
    return found


def update(aws: AwsWorld, changes: Mapping[str, str]) -> AwsWorld:
    """`sam deploy` of a new version with changed parameters: update the stack in moto with
    the template as it is now, then apply what moto's update leaves out (the module
    docstring); returns the world with each function's new environment."""
    values = {**aws.parameters, **changes}
    cfn = _patch_for_moto(translate(load_sam_template()))
    client = PLUMBING.client("cloudformation", region_name=REGION)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
        client.update_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(cfn),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            # Every value explicitly: moto's UsePreviousValue fails on a parameter that
            # took its default at create.
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        )
    status = client.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
    if status != "UPDATE_COMPLETE":
        raise RuntimeError(f"moto could not update the stack: {status}")
    # moto lists an updated log group without its logical id (_physical_ids), so keep the
    # ids from before the update for what the listing leaves out: a log group's name, its
    # physical id, does not change in an update that keeps its Name property.
    physical = {**aws.physical_ids, **_physical_ids(client)}
    _apply_redrive_policies(cfn, values, physical)
    return replace(
        aws,
        physical_ids=physical,
        environments={fn: _environment(cfn, fn, values, physical) for fn in FUNCTIONS},
        parameters=values,
    )


def _apply_redrive_policies(
    cfn: dict[str, Any], params: Mapping[str, str], physical: Mapping[str, str]
) -> None:
    """moto's queue update ignores RedrivePolicy; SQS's SetQueueAttributes changes it in
    place (no replacement), as CloudFormation does."""
    sqs = PLUMBING.client("sqs", region_name=REGION)
    for name, resource in cfn["Resources"].items():
        redrive = resource.get("Properties", {}).get("RedrivePolicy")
        if resource["Type"] != "AWS::SQS::Queue" or not redrive:
            continue
        url = _queue_url(physical[name])
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        policy = json.loads(current["Attributes"]["RedrivePolicy"])
        policy["maxReceiveCount"] = int(
            resolve_intrinsic(redrive["maxReceiveCount"], cfn, params, physical)
        )
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})


def _create_stack(client: Any, cfn: dict[str, Any], values: Mapping[str, str]) -> None:
    client.create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps(cfn),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )


def _environment(
    cfn: dict[str, Any],
    function: str,
    params: Mapping[str, str],
    physical: Mapping[str, str],
) -> dict[str, str]:
    variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
    env = {
        name: resolve_intrinsic(value, cfn, params, physical) for name, value in variables.items()
    }
    if "LAUNCH_QUEUE_URL" in env:
        env["LAUNCH_QUEUE_URL"] = _queue_url(env["LAUNCH_QUEUE_URL"])
    return env


def _queue_url(url: str) -> str:
    """moto names queues with the real SQS host; boto3 with AWS_ENDPOINT_URL still works
    with it, but the local world shows the moto URL so a reader can follow it."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return PLUMBING.client("sqs", region_name=REGION).get_queue_url(QueueName=name)["QueueUrl"]


_PSEUDO = {
    "AWS::StackName": STACK_NAME,
    "AWS::Region": REGION,
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
# The stack id when the physical ids do not hold moto's (a template test's fake ids).
_FAKE_STACK_ID = (
    f"arn:aws:cloudformation:{REGION}:123456789012:stack/{STACK_NAME}/"
    "51af3dc0-da77-11e4-872e-1234567db123"
)


def resolve_intrinsic(
    value: Any, cfn: dict[str, Any], params: Mapping[str, str], physical: Mapping[str, str]
) -> str:
    """The handful of intrinsics the template's environments use, resolved like CFN."""
    resolved = _resolve(value, _Scope(cfn, params, physical))
    if isinstance(resolved, list):
        raise TypeError(f"{value!r} is a list, not a value")
    return resolved


@dataclass(frozen=True)
class _Scope:
    cfn: dict[str, Any]
    params: Mapping[str, str]
    physical: Mapping[str, str]

    def one(self, value: Any) -> str:
        return resolve_intrinsic(value, self.cfn, self.params, self.physical)


def _ref(name: str, scope: _Scope) -> str:
    if name == "AWS::StackId":
        return scope.physical.get(name, _FAKE_STACK_ID)
    if name in _PSEUDO:
        return _PSEUDO[name]
    return scope.params[name] if name in scope.params else scope.physical[name]


def _if(args: list[Any], scope: _Scope) -> str | list[str]:
    condition, if_true, if_false = args
    chosen = if_true if _condition(scope.cfn["Conditions"][condition], scope.params) else if_false
    return _resolve(chosen, scope)


def _join(args: list[Any], scope: _Scope) -> str:
    separator, items = args
    return str(separator).join(
        scope.one(p) for p in (items if isinstance(items, list) else [items])
    )


def _select(args: list[Any], scope: _Scope) -> str:
    index, items = args
    listed = _resolve(items, scope)
    return (listed if isinstance(listed, list) else [listed])[int(index)]


def _sub(args: Any, scope: _Scope) -> str:
    text, variables = (args, {}) if isinstance(args, str) else args
    local = {k: scope.one(v) for k, v in variables.items()}
    return re.sub(
        r"\$\{([^}]+)\}", lambda m: local[m[1]] if m[1] in local else _ref(m[1], scope), text
    )


_INTRINSICS: dict[str, Callable[[Any, _Scope], str | list[str]]] = {
    "Ref": _ref,
    "Fn::If": _if,
    "Fn::Join": _join,
    "Fn::Split": lambda args, scope: scope.one(args[1]).split(args[0]),
    "Fn::Select": _select,
    "Fn::Sub": _sub,
}


def _resolve(value: Any, scope: _Scope) -> str | list[str]:
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    ((function, args),) = value.items()
    if function not in _INTRINSICS:
        raise ValueError(f"the local world cannot resolve {value!r}")
    return _INTRINSICS[function](args, scope)


def _condition(spec: dict[str, Any], params: Mapping[str, str]) -> bool:
    if "Fn::Not" in spec:
        (inner,) = spec["Fn::Not"]
        return not _condition(inner, params)
    (left, right) = spec["Fn::Equals"]

    def value(v: Any) -> str:
        return params[v["Ref"]] if isinstance(v, dict) else str(v)

    return value(left) == value(right)
