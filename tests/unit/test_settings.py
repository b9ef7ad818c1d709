"""Configuration fails at cold start with the variable named, and parses what the
template sets."""

from __future__ import annotations

import pytest

from fargate_stack.domain.launch import CapacityStrategy
from fargate_stack.errors import ConfigurationError
from fargate_stack.settings import (
    LauncherSettings,
    PollerSettings,
    load,
)

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bk-token-AbCdEf"
COMMON = {
    "STACK_KEY": "fargate-prod",
    "QUEUE_KEY": "fargate",
    "CLUSTER_TOKEN_SECRET_ARN": SECRET,
}
POLLER = {
    **COMMON,
    "AGENT_TAGS": "os=linux,size=large",
    "POLL_INTERVAL_SECONDS": "2",
    "MAX_PAGES": "2",
    "PAGE_SIZE": "500",
    "RESERVATION_EXPIRY_SECONDS": "900",
    "MAX_IN_FLIGHT": "50",
    "LAUNCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/launch",
    "LEASE_TABLE": "ledger",
    "ECS_CLUSTER": "bk",
}
LAUNCHER = {
    **COMMON,
    "ECS_CLUSTER": "bk",
    "TASK_DEFINITION": "bk-agent",
    "AGENT_CONTAINER_NAME": "agent",
    "SUBNETS": "subnet-0123456789abcdef0, subnet-0123456789abcdef1",
    "SECURITY_GROUPS": "sg-0123456789abcdef0",
    "ASSIGN_PUBLIC_IP": "false",
    "CAPACITY_STRATEGY": "spot-with-fallback",
    "DEFAULT_CPU": "1024",
    "DEFAULT_MEMORY": "2048",
    "IDEMPOTENCY_TABLE": "bk-launches",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    def apply(values: dict[str, str]) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return apply


def test_poller_settings_parse(env) -> None:
    env(POLLER)
    settings = load(PollerSettings)
    assert settings.extra_tags == {"os": "linux", "size": "large"}
    assert settings.poll_interval_seconds == 2
    assert str(settings.buildkite_api_url) == "https://agent.buildkite.com/v3/"


def test_variables_are_read_whatever_their_case_and_booleans_as_the_template_writes_them(
    env,
) -> None:
    env({**{k.lower(): v for k, v in POLLER.items()}, "Default_Queue": "true"})
    settings = load(PollerSettings)
    assert settings.stack_key == "fargate-prod"
    assert settings.default_queue is True


def test_a_comma_list_of_one_item_is_a_list_not_json(env) -> None:
    # pydantic-settings decoded complex fields as JSON unless told not to; the plain
    # model must read the template's comma-separated text as it is.
    env({**LAUNCHER, "SECURITY_GROUPS": "sg-0123456789abcdef0"})
    assert load(LauncherSettings).security_groups == ["sg-0123456789abcdef0"]


def test_launcher_settings_parse_comma_lists(env) -> None:
    env(LAUNCHER)
    settings = load(LauncherSettings)
    assert settings.subnets == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    assert settings.capacity_strategy is CapacityStrategy.SPOT_WITH_FALLBACK
    assert settings.assign_public_ip is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STACK_KEY", "", "STACK_KEY"),
        ("STACK_KEY", "has space", "STACK_KEY"),
        ("STACK_KEY", "fargate\n", "STACK_KEY"),
        ("CLUSTER_TOKEN_SECRET_ARN", "bkct_not_an_arn", "CLUSTER_TOKEN_SECRET_ARN"),
        ("POLL_INTERVAL_SECONDS", "0.5", "POLL_INTERVAL_SECONDS"),
        ("RESERVATION_EXPIRY_SECONDS", "7200", "RESERVATION_EXPIRY_SECONDS"),
        ("PAGE_SIZE", "1001", "PAGE_SIZE"),
        ("AGENT_TAGS", "queue=other", "AGENT_TAGS"),
        ("AGENT_TAGS", "novalue", "AGENT_TAGS"),
        # launch options the matcher ignores: as tags they would match every job
        ("AGENT_TAGS", "os=linux,disk=ssd", "AGENT_TAGS: .*must not set disk"),
        ("AGENT_TAGS", "cpu=4096", "AGENT_TAGS: .*must not set cpu"),
    ],
)
def test_bad_poller_values_name_the_variable(env, variable: str, value: str, message: str) -> None:
    env({**POLLER, variable: value})
    with pytest.raises(ConfigurationError, match=message):
        load(PollerSettings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SUBNETS", "", "SUBNETS"),
        ("SUBNETS", "subnet-xyz", "SUBNETS: .*subnet-xyz"),
        ("SECURITY_GROUPS", "sg-1,sg-2", "SECURITY_GROUPS"),
        ("DEFAULT_MEMORY", "512", "DEFAULT_MEMORY: .*cpu 1024 needs memory between 2048"),
        ("CAPACITY_STRATEGY", "cheap", "CAPACITY_STRATEGY"),
    ],
)
def test_bad_launcher_values_name_the_variable(
    env, variable: str, value: str, message: str
) -> None:
    env({**LAUNCHER, variable: value})
    with pytest.raises(ConfigurationError, match=message):
        load(LauncherSettings)


def test_a_missing_variable_is_named(env, monkeypatch: pytest.MonkeyPatch) -> None:
    env(LAUNCHER)
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    with pytest.raises(ConfigurationError, match="IDEMPOTENCY_TABLE: Field required"):
        load(LauncherSettings)


PIPELINE = "0c8f1ab4-4a53-4a9f-bb6c-5d0e0d4a1c11"
ROLE = "arn:aws:iam::123456789012:role/buildkite-pipeline/web"


def test_pipeline_task_roles_default_to_none(env) -> None:
    env(LAUNCHER)
    assert load(LauncherSettings).pipeline_task_roles == {}


def test_pipeline_task_roles_parse_at_cold_start(env) -> None:
    env({**LAUNCHER, "PIPELINE_TASK_ROLES": f"{PIPELINE.upper()}={ROLE}"})
    assert load(LauncherSettings).pipeline_task_roles == {PIPELINE: ROLE}


@pytest.mark.parametrize(
    "value",
    [f"my-pipeline={ROLE}", f"{PIPELINE}=arn:aws:iam::123456789012:role/*", f"{PIPELINE}={ROLE},"],
)
def test_a_bad_pipeline_task_role_mapping_names_the_variable_and_parameter(env, value: str) -> None:
    env({**LAUNCHER, "PIPELINE_TASK_ROLES": value})
    with pytest.raises(ConfigurationError, match=r"PIPELINE_TASK_ROLES: .*PipelineTaskRoles"):
        load(LauncherSettings)


def test_step_images_are_off_by_default(env) -> None:
    env(LAUNCHER)
    settings = load(LauncherSettings)
    assert settings.allowed_images == ()
    assert settings.step_image_registrations_per_day == 50


def test_allowed_images_parse_at_cold_start(env) -> None:
    env(
        {
            **LAUNCHER,
            "ALLOWED_IMAGES": "node:*, ghcr.io/org/*",
            "STEP_IMAGE_FAMILY_PREFIX": "bk-step-",
        }
    )
    settings = load(LauncherSettings)
    assert settings.allowed_images == ("node:*", "ghcr.io/org/*")
    assert settings.step_image_family_prefix == "bk-step-"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"ALLOWED_IMAGES": "node:[0-9]*", "STEP_IMAGE_FAMILY_PREFIX": "bk-step-"},
            "AllowedImages",
        ),
        ({"ALLOWED_IMAGES": "node:*"}, "family prefix"),
        ({"STEP_IMAGE_REGISTRATIONS_PER_DAY": "0"}, "STEP_IMAGE_REGISTRATIONS_PER_DAY"),
    ],
)
def test_bad_step_image_settings_name_the_variable(
    env, values: dict[str, str], message: str
) -> None:
    env({**LAUNCHER, **values})
    with pytest.raises(ConfigurationError, match=message):
        load(LauncherSettings)
