"""The real handlers against moto (the template's own resources) and the emulator (HTTP).

Each test gets a fresh in-process moto with the translated template created as a
CloudFormation stack, the function's environment resolved from that stack, and a clean
emulator; the composition root's caches are cleared so every test builds its own clients.
The helpers the tests call live in tests/support/deployed.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from fargate_stack import bootstrap
from local.aws_world import provision
from local.emulator import Emulator
from local.lambda_runtime import load_handler
from tests.support.deployed import QUEUE, STACK_KEY, DeployedStack, Loader, load_sample
from tests.support.emulator import EMULATOR_TOKEN


@pytest.fixture
def deployed(
    emulator: Emulator, fake_aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DeployedStack]:
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
        yield DeployedStack(aws=aws, emulator=emulator, handlers=handlers)
        bootstrap.reset()


@pytest.fixture
def sample() -> Loader:
    """Loads a sample event from events/ by file name."""
    return load_sample
