"""Just enough of the Lambda service to run the real handlers in-process, as AWS would.

- ``LocalContext``: a Lambda context with a real deadline, so the poller's loop stops
  before its "timeout" exactly as deployed.
- ``SqsEventSource``: an SQS event source mapping: receive up to a batch, invoke the
  handler with the SQS event shape, delete what succeeded, and let the reported failures
  come back after a visibility timeout; moto's redrive moves them to the DLQ after
  maxReceiveCount receives, as SQS does.
- ``EventBridgeBridge``: events go through a real (moto) EventBridge rule with the
  template's own event pattern to an SQS target, so only what the deployed rule would match
  reaches the failure handler, shaped by the rule's own input transformer. moto's envelope
  lacks ``account`` (docs/reference/tooling.md §3); it is restored here.
"""

from __future__ import annotations

import importlib.util
import json
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials
from botocore.credentials import ReadOnlyCredentials as Keys
from botocore.exceptions import ClientError

from local import input_transformer

ROOT = Path(__file__).resolve().parents[1]
# On sys.path as Lambda puts a layer's python/ folder there (local/__init__.py).
LAYER = ROOT / "layers" / "stack_core"
ACCOUNT = "123456789012"
REGION = "us-east-1"
PUT_EVENTS_MAX = 10  # entries per PutEvents call (the API's limit)
# Lambda's asynchronous retries of a failed invocation (2, about 1 and 2 minutes apart),
# shortened locally to seconds.
ASYNC_RETRIES = 2
ASYNC_RETRY_SECONDS = 2.0
Handler = Callable[[dict[str, Any], Any], Any]
# The local world's own plumbing (event source mappings, the EventBridge bridge, the
# simulated Fargate) uses this session, so that the default session, which the handlers'
# clients use, counts only the stack's own AWS calls.
_PLUMBING_CORE = botocore.session.get_session()
PLUMBING = boto3.session.Session(botocore_session=_PLUMBING_CORE)


def use_plumbing_credentials(keys: Keys) -> None:
    """The plumbing's own identity (all-powerful in the local world's IAM); clients made
    after this call sign with it."""
    _PLUMBING_CORE.set_credentials(str(keys.access_key), str(keys.secret_key), keys.token)


# Which function (by its role's logical id) each thread is running, for the in-process
# functions: they share one process, so one session, as Lambda's execution environments
# never do; each request is signed with the role of the function the thread runs.
_acting = threading.local()


@contextmanager
def acting_as(role: str | None) -> Iterator[None]:
    previous = getattr(_acting, "role", None)
    _acting.role = role
    try:
        yield
    finally:
        _acting.role = previous


def as_role(role: str | None, handler: Handler) -> Handler:
    """The handler, invoked with its function's role (no role: as it was)."""
    if role is None:
        return handler

    def invoke(event: dict[str, Any], context: Any) -> Any:
        with acting_as(role):
            return handler(event, context)

    return invoke


class _RoleOfTheThread(Credentials):
    """botocore freezes credentials for every request it signs: these answer with the
    keys of the role the calling thread acts as, and refuse a call made outside any
    function (it would otherwise go out unsigned or as someone else)."""

    def __init__(self, roles: Mapping[str, Keys]) -> None:
        super().__init__("role-of-the-calling-thread", "-")
        self._roles = dict(roles)

    def get_frozen_credentials(self) -> Keys:
        role = getattr(_acting, "role", None)
        if role is None or role not in self._roles:
            msg = f"an AWS call of the stack outside a function's invocation (role {role!r})"
            raise RuntimeError(msg)
        return self._roles[role]


class _Provider(CredentialProvider):
    METHOD = "local-role-of-the-thread"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def sign_by_thread(session: boto3.session.Session, roles: Mapping[str, Keys]) -> None:
    """Give a session (the in-process functions') the role of the calling thread's
    function; call it before the session makes its first client."""
    # boto3 exposes its botocore session only as this attribute.
    core = session._session
    core.register_component(
        "credential_provider", CredentialResolver([_Provider(_RoleOfTheThread(roles))])
    )


class CallTimer:
    """Round trips of every AWS call made through one boto3 session, by operation."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.retries: dict[str, int] = defaultdict(int)
        self._attached: list[Any] = []
        if session is not None:
            self.attach(session.events)

    def attach(self, events: Any) -> None:
        """Count the calls of (another) session too: a client copies its session's hooks
        when it is created, so attach before the clients are made."""
        events.register("before-call", self._before)
        events.register("after-call", self._after)
        self._attached.append(events)

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        context["local_started"] = time.perf_counter()

    def _after(
        self, event_name: str, context: dict[str, Any], parsed: Any = None, **_: Any
    ) -> None:
        started = context.get("local_started")
        if started is not None:
            # after-call.<service>.<Operation>
            operation = event_name.split(".", 1)[1]
            self.durations[operation].append((time.perf_counter() - started) * 1000)
            # botocore's own retries (throttling, 5xx) within the call, as it reports them.
            metadata = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
            if metadata.get("RetryAttempts"):
                self.retries[operation] += int(metadata["RetryAttempts"])

    def close(self) -> None:
        for events in self._attached:
            events.unregister("before-call", self._before)
            events.unregister("after-call", self._after)


@dataclass
class LocalContext:
    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def load_handler(function_dir: str) -> ModuleType:
    """Import functions/<dir>/app.py under a unique name (all three are called ``app``)."""
    path = ROOT / "functions" / function_dir / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions_{function_dir}_app", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class BatchStats:
    invocations: int = 0
    records: int = 0
    failures: int = 0
    duplicates: int = 0
    receive_errors: int = 0  # receives or deletes the function's role was refused
    seconds: float = 0.0  # handler wall time, the billed duration's stand-in


class SqsEventSource:
    def __init__(
        self,
        *,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        function_name: str,
        batch_size: int = 10,
        timeout_seconds: float = 60,
        retry_after_seconds: int = 1,
        duplicates: tuple[float, random.Random] | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        # An event source mapping receives and deletes with the function's execution role
        # (``session``), not as the plumbing. Shortening a failed record's visibility is the
        # local world's own speed-up (Lambda leaves it to the queue's timeout), so the
        # plumbing does that.
        self._sqs = (session or PLUMBING).client("sqs", region_name=REGION)
        self._speed_up = PLUMBING.client("sqs", region_name=REGION)
        self._url = queue_url
        self._arn = queue_arn
        self._handler = handler
        self._function = function_name
        self._batch = batch_size
        self._timeout = timeout_seconds
        self._retry_after = retry_after_seconds
        # SQS is at-least-once: with this chance a handled record is delivered again.
        self._duplicates = duplicates
        self.stats = BatchStats()
        # Every body delivered, for the tests that look for secrets in what the stack sent.
        self.bodies: list[str] = []

    def poll(self) -> int:
        """One receive + invoke; returns how many records were handled."""
        try:
            answer = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=self._batch,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
        except ClientError:
            # Lambda keeps polling a queue it may not read (an execution role without
            # sqs:ReceiveMessage): nothing is invoked, and the record of moto's IAM says why.
            self.stats.receive_errors += 1
            time.sleep(self._retry_after)
            return 0
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        self.bodies.extend(m["Body"] for m in messages)
        event = {"Records": [self._record(m) for m in messages]}
        context = LocalContext(self._function, self._timeout)
        self.stats.invocations += 1
        self.stats.records += len(messages)
        started = time.perf_counter()
        try:
            response = self._handler(event, context) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # noqa: BLE001 - Lambda treats any raised error as "whole batch failed"
            failed = {m["MessageId"] for m in messages}
        self.stats.seconds += time.perf_counter() - started
        self.stats.failures += len(failed)
        for message in messages:
            if message["MessageId"] in failed:
                # Lambda leaves a failed record for its visibility timeout; the local world
                # shortens that wait so retries happen in seconds.
                self._speed_up.change_message_visibility(
                    QueueUrl=self._url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self._retry_after,
                )
            elif self._duplicate():
                self.stats.duplicates += 1
                self._speed_up.change_message_visibility(
                    QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                try:
                    self._sqs.delete_message(
                        QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"]
                    )
                except ClientError:
                    # Not deleted: SQS delivers it again after its visibility timeout.
                    self.stats.receive_errors += 1
        return len(messages)

    def _duplicate(self) -> bool:
        if self._duplicates is None:
            return False
        chance, rng = self._duplicates
        return rng.random() < chance

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": REGION,
        }


class EventBridgeBridge:
    """Reuses the template's own rule (its event pattern, created by moto's CloudFormation)
    and swaps its Lambda target for an SQS queue: moto answers put_events with a 500 when a
    matching rule targets a Lambda (docs/reference/tooling.md §3)."""

    def __init__(
        self,
        *,
        rule_name: str,
        handler: Handler,
        function_name: str,
        disorder: tuple[float, float, random.Random] | None = None,
        on_failure_url: str | None = None,
        function_session: boto3.session.Session | None = None,
    ) -> None:
        self._events = PLUMBING.client("events", region_name=REGION)
        # Lambda sends to a function's on-failure destination with its execution role.
        self._destination = (function_session or PLUMBING).client("sqs", region_name=REGION)
        # The function's on-failure destination (EventsDeadLetterQueue): an event that
        # failed every try goes there as Lambda's invocation record.
        self._on_failure_url = on_failure_url
        # (duplicate chance, late chance, dice): EventBridge delivers at least once and in
        # no promised order; a late event is held back for a few flushes.
        self._disorder = disorder
        self._held: list[tuple[int, dict[str, Any]]] = []
        self.sent: list[str] = []  # every event detail sent, for the secret-leak tests
        self._retries: list[tuple[float, int, dict[str, Any]]] = []
        self.retried = 0
        self.duplicated = 0
        self.delayed = 0
        self._sqs = PLUMBING.client("sqs", region_name=REGION)
        self._handler = handler
        self._function = function_name
        queue = self._sqs.create_queue(QueueName=f"local-eventbridge-{uuid.uuid4().hex[:8]}")
        self._url = queue["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])
        targets = self._events.list_targets_by_rule(Rule=rule_name)["Targets"]
        # The template's input transformer, as CloudFormation gave it to the rule's target;
        # applied here at delivery, as moto's own gets JSON values wrong
        # (local/input_transformer.py).
        self._transformer: dict[str, Any] | None = next(
            (t["InputTransformer"] for t in targets if "InputTransformer" in t), None
        )
        # Every payload the function received, for the secret-leak tests.
        self.received: list[str] = []
        if targets:
            self._events.remove_targets(Rule=rule_name, Ids=[t["Id"] for t in targets])
        self._events.put_targets(
            Rule=rule_name,
            Targets=[{"Id": "failure-handler", "Arn": arn["Attributes"]["QueueArn"]}],
        )
        self.delivered = 0
        self.published = 0
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.seconds = 0.0  # handler wall time
        # Events whose handler failed every try (also sent to the on-failure destination,
        # when there is one), with the error, for the report.
        self.dead_letters: list[tuple[dict[str, Any], str]] = []

    def publish(self, event: Mapping[str, Any]) -> None:
        """Queue an event; ``flush`` sends them, ten to a PutEvents call as ECS's own
        emitter may (one call per event was a third of a 2,000-job world's round trips)."""
        with self._lock:
            self._pending.append(
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": list(event.get("resources", [])),
                }
            )
            self.published += 1

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            pending = self._disorder_of(pending)
            self.sent.extend(entry["Detail"] for entry in pending)
        for start in range(0, len(pending), PUT_EVENTS_MAX):
            self._events.put_events(Entries=pending[start : start + PUT_EVENTS_MAX])

    def _disorder_of(self, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._disorder is None:
            return pending
        duplicate, late, rng = self._disorder
        ready = [entry for wait, entry in self._held if wait <= 0]
        self._held = [(wait - 1, entry) for wait, entry in self._held if wait > 0]
        for entry in pending:
            if rng.random() < late:
                self.delayed += 1
                self._held.append((rng.randint(2, 20), entry))
                continue
            ready.append(entry)
            if rng.random() < duplicate:
                self.duplicated += 1
                ready.append(entry)
        return ready

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def deliver(self) -> list[Any]:
        """Invoke the handler once per matched event, as EventBridge's Lambda target does
        (an asynchronous invocation: a failed one is retried twice, then goes to the
        function's on-failure destination, the events dead-letter queue)."""
        results: list[Any] = []
        now = time.monotonic()
        due = [r for r in self._retries if r[0] <= now]
        self._retries = [r for r in self._retries if r[0] > now]
        for _, attempt, envelope in due:
            self._invoke(envelope, attempt, results)
        while True:
            got = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return results
            for message in messages:
                envelope = json.loads(message["Body"])
                envelope.setdefault("account", ACCOUNT)
                if self._transformer is not None:
                    envelope = input_transformer.apply(self._transformer, envelope)
                self.received.append(json.dumps(envelope))
                self.delivered += 1
                self._invoke(envelope, 1, results)
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def _invoke(self, envelope: dict[str, Any], attempt: int, results: list[Any]) -> None:
        started = time.perf_counter()
        try:
            results.append(self._handler(envelope, LocalContext(self._function, 60)))
        except Exception as exc:  # noqa: BLE001 - Lambda retries it, then dead-letters it
            if attempt <= ASYNC_RETRIES:
                self.retried += 1
                due = time.monotonic() + ASYNC_RETRY_SECONDS * attempt
                self._retries.append((due, attempt + 1, envelope))
            else:
                self.dead_letters.append((envelope, repr(exc)))
                self._send_to_destination(envelope, exc, attempt)
        self.seconds += time.perf_counter() - started

    def _send_to_destination(self, envelope: dict[str, Any], exc: Exception, attempt: int) -> None:
        if self._on_failure_url is None:
            return
        # Lambda's invocation record for an asynchronous invocation that failed (the shape
        # documented for destinations; events/events-retry-batch.json has one).
        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self._function}",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempt,
            },
            "requestPayload": envelope,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(exc), "errorType": type(exc).__name__},
        }
        self._destination.send_message(
            QueueUrl=self._on_failure_url, MessageBody=json.dumps(record)
        )

    def pending_retries(self) -> int:
        return len(self._retries)
