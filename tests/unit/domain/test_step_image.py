"""A step's image: reference validation, AllowedImages, the family and the derived
task definition's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fargate_stack.domain.step_image import (
    IMAGE_ENV,
    SETUP_CONTAINER,
    SHARED_PATH,
    SHARED_VOLUME,
    AllowedImagesError,
    ImageReferenceError,
    ImageVerdict,
    StepImageCachesError,
    decide_image,
    derive_task_definition,
    derived_family,
    family_base_revision,
    parse_allowed_images,
    parse_caches,
    parse_image_reference,
    stale_family,
    through_cache,
)
from local.template import load_sam_template

DIGEST = "sha256:" + "a" * 64
BASE_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/ci-agent:7"


@pytest.mark.parametrize(
    ("text", "qualified"),
    [
        ("node:20", "docker.io/library/node:20"),
        ("node", "docker.io/library/node"),
        ("bitnami/git:2", "docker.io/bitnami/git:2"),
        ("public.ecr.aws/docker/library/node:20-alpine", None),
        (f"123456789012.dkr.ecr.us-east-1.amazonaws.com/ci/tool@{DIGEST}", None),
        (f"ghcr.io/org/tool:1.2.3@{DIGEST}", None),
        ("localhost:5000/tools/x:y", None),
        ("localhost/tools:y", None),
    ],
)
def test_valid_references_parse(text: str, qualified: str | None) -> None:
    image = parse_image_reference(text)
    assert image.text == text
    assert image.qualified == (qualified or text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " node:20",
        "Node:20",  # names are lower case
        "node:",  # empty tag
        "node:tag with space",
        "node:" + "t" * 129,  # tags are at most 128 characters
        "node@sha256:abc",  # short digest
        f"node@md5:{'a' * 32}",
        "node:20\n",
        "$(id)",
        "node;rm -rf /",
        "a/" * 130 + "b",  # name over 255 characters
        "node:20\u00e9",
    ],
)
def test_garbage_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ImageReferenceError, match="image"):
        parse_image_reference(text)


def test_the_digest_is_kept_and_means_pinned() -> None:
    image = parse_image_reference(f"node:20@{DIGEST}")
    assert (image.name, image.tag, image.digest, image.pinned) == ("node", "20", DIGEST, True)
    assert not parse_image_reference("node:20").pinned


def test_allowed_images_parse_and_refuse_other_characters() -> None:
    assert parse_allowed_images("") == ()
    assert parse_allowed_images(" node:* , public.ecr.aws/docker/library/*,") == (
        "node:*",
        "public.ecr.aws/docker/library/*",
    )
    with pytest.raises(AllowedImagesError, match="AllowedImages"):
        parse_allowed_images("node:[0-9]*")
    with pytest.raises(AllowedImagesError, match="AllowedImages"):
        parse_allowed_images("node?")


def test_no_image_asked_is_the_stacks_definition() -> None:
    assert decide_image({}, ("*",)).verdict is ImageVerdict.DEFAULT
    assert decide_image({IMAGE_ENV: "  "}, ("*",)).verdict is ImageVerdict.DEFAULT


def test_with_allowed_images_empty_an_image_is_ignored_and_the_note_says_why() -> None:
    decision = decide_image({IMAGE_ENV: "node:20"}, ())
    assert decision.verdict is ImageVerdict.IGNORED
    assert "AllowedImages is empty" in decision.detail
    assert "node:20" in decision.detail


def test_the_ignored_note_fits_a_notification_even_for_a_huge_image() -> None:
    decision = decide_image({IMAGE_ENV: "x" * 5000}, ())
    assert len(decision.detail) <= 256  # the notification detail's limit


def test_an_allowed_image_is_used_in_either_spelling() -> None:
    for pattern in ("node:*", "docker.io/library/node:*"):
        decision = decide_image({IMAGE_ENV: "node:20"}, (pattern,))
        assert decision.verdict is ImageVerdict.USE
        assert decision.image is not None and decision.image.text == "node:20"


def test_an_image_not_allowed_is_refused_naming_allowed_images() -> None:
    decision = decide_image({IMAGE_ENV: "evil.example/node:20"}, ("node:*",))
    assert decision.verdict is ImageVerdict.REFUSED
    assert decision.image is not None
    assert "AllowedImages" in decision.detail and "node:*" in decision.detail


def test_a_pattern_does_not_match_a_longer_repository_by_accident() -> None:
    patterns = ("public.ecr.aws/docker/library/node:*",)
    refused = decide_image({IMAGE_ENV: "public.ecr.aws/docker/library/node-evil:1"}, patterns)
    assert refused.verdict is ImageVerdict.REFUSED


def test_garbage_is_refused_before_matching() -> None:
    decision = decide_image({IMAGE_ENV: "Node:20"}, ("*",))
    assert decision.verdict is ImageVerdict.REFUSED
    assert decision.image is None


def test_the_family_is_deterministic_and_new_for_every_base_and_image() -> None:
    family = derived_family("ci-step-", BASE_ARN, "node:20")
    assert family == derived_family("ci-step-", BASE_ARN, "node:20")
    assert family.startswith("ci-step-7-")
    assert family != derived_family("ci-step-", BASE_ARN, "node:22")
    assert family != derived_family("ci-step-", BASE_ARN.replace(":7", ":8"), "node:20")
    assert family_base_revision("ci-step-", family) == 7
    assert len(derived_family("s" * 128 + "-step-", BASE_ARN, "x" * 255)) <= 255


def test_stale_families_are_those_older_than_the_previous_base() -> None:
    current = 9
    assert stale_family("ci-step-", derived_family("ci-step-", BASE_ARN, "a"), current)  # 7
    base_8 = BASE_ARN.replace(":7", ":8")
    assert not stale_family("ci-step-", derived_family("ci-step-", base_8, "a"), current)
    base_9 = BASE_ARN.replace(":7", ":9")
    assert not stale_family("ci-step-", derived_family("ci-step-", base_9, "a"), current)
    # Not one of ours: never touched.
    assert not stale_family("ci-step-", "ci-step-x", current)
    assert not stale_family("ci-step-", "ci-step-1-short", current)
    assert not stale_family("ci-step-", "other-agent", current)


def base_definition() -> dict[str, Any]:
    """The template's agent task definition as DescribeTaskDefinition would answer it
    (the keys ECS adds on registration included)."""
    props = load_sam_template()["Resources"]["AgentTaskDefinition"]["Properties"]
    (container,) = props["ContainerDefinitions"]
    return {
        "taskDefinitionArn": BASE_ARN,
        "family": "ci-agent",
        "revision": 7,
        "status": "ACTIVE",
        "registeredAt": "2026-12-01T00:00:00Z",
        "requiresAttributes": [{"name": "ecs.capability.execution-role-awslogs"}],
        "compatibilities": ["EC2", "FARGATE"],
        "taskRoleArn": "arn:aws:iam::123456789012:role/ci-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ci-exec",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "1024",
        "memory": "2048",
        "ephemeralStorage": {"sizeInGiB": 50},
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "containerDefinitions": [
            {
                "name": "agent",
                "image": "public.ecr.aws/buildkite/agent:3",
                "essential": True,
                "entryPoint": ["/bin/bash", "-c", "..."],
                "command": ["start"],
                "secrets": [
                    {"name": "SSH_PRIVATE_RSA_KEY", "valueFrom": "arn:aws:secretsmanager:x"}
                ],
                "environment": [
                    {"name": "BUILDKITE_AGENT_ENDPOINT", "value": "https://agent.buildkite.com/v3"},
                    {"name": "TINI_SUBREAPER", "value": "1"},
                    {"name": "BUILDKITE_CANCEL_GRACE_PERIOD", "value": "90"},
                ],
                "stopTimeout": int(container.get("StopTimeout", 120)),
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "g", "awslogs-stream-prefix": "agent"},
                },
            }
        ],
    }


def derived() -> dict[str, Any]:
    image = parse_image_reference("node:20")
    family = derived_family("ci-step-", BASE_ARN, image.text)
    result = derive_task_definition(
        base_definition(),
        container_name="agent",
        image=image,
        family=family,
        tags=(("buildkite:stack", "ci"),),
    )
    return dict(result.request)


def test_the_derived_definition_runs_the_image_after_the_setup_container() -> None:
    request = derived()
    setup, job = request["containerDefinitions"]
    assert setup["name"] == SETUP_CONTAINER
    assert setup["image"] == "public.ecr.aws/buildkite/agent:3"  # the agent image
    assert setup["essential"] is False
    assert job["name"] == "agent" and job["image"] == "node:20" and job["essential"] is True
    assert job["dependsOn"] == [{"containerName": SETUP_CONTAINER, "condition": "SUCCESS"}]
    assert job["entryPoint"] == ["/bin/sh", f"{SHARED_PATH}/bin/entrypoint"]
    assert job["command"] == ["start"]
    assert request["volumes"] == [{"name": SHARED_VOLUME}]
    for container in (setup, job):
        assert {"sourceVolume": SHARED_VOLUME, "containerPath": SHARED_PATH, "readOnly": False} in (
            container["mountPoints"]
        )


def test_only_the_job_container_gets_the_secrets() -> None:
    setup, job = derived()["containerDefinitions"]
    assert "secrets" not in setup and "environment" not in setup
    assert job["secrets"] == base_definition()["containerDefinitions"][0]["secrets"]


def test_the_job_container_keeps_the_agents_settings_and_gets_its_paths() -> None:
    _, job = derived()["containerDefinitions"]
    env = {e["name"]: e["value"] for e in job["environment"]}
    assert env["BUILDKITE_CANCEL_GRACE_PERIOD"] == "90"
    assert env["BUILDKITE_BUILD_PATH"] == f"{SHARED_PATH}/builds"
    assert env["BUILDKITE_HOOKS_PATH"] == f"{SHARED_PATH}/hooks"
    assert "TINI_SUBREAPER" not in env
    assert job["stopTimeout"] == base_definition()["containerDefinitions"][0]["stopTimeout"]
    assert (
        job["logConfiguration"] == base_definition()["containerDefinitions"][0]["logConfiguration"]
    )


def test_the_task_level_settings_are_the_bases_and_read_only_keys_are_dropped() -> None:
    request = derived()
    base = base_definition()
    for key in ("taskRoleArn", "executionRoleArn", "cpu", "memory", "ephemeralStorage"):
        assert request[key] == base[key]
    for key in ("taskDefinitionArn", "revision", "status", "registeredAt", "compatibilities"):
        assert key not in request
    assert request["family"].startswith("ci-step-7-")
    assert request["tags"] == [{"key": "buildkite:stack", "value": "ci"}]


def test_the_derived_definition_is_well_within_ecs_size_limit() -> None:
    # A task definition is at most 64 KiB (docs/reference/aws.md §B.9).
    assert len(json.dumps(derived())) < 16 * 1024


def test_a_base_without_the_agent_container_is_an_error() -> None:
    with pytest.raises(ValueError, match="no container"):
        derive_task_definition(
            base_definition(),
            container_name="nope",
            image=parse_image_reference("node:20"),
            family="ci-step-7-x",
        )


HUB_CACHE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bkf-hub-51af3dc0"
PUBLIC_CACHE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/buildkite-fargate-51af3dc0"


def test_the_templates_caches_parse_and_empty_parts_are_skipped() -> None:
    text = f"docker.io={HUB_CACHE},public.ecr.aws={PUBLIC_CACHE}"
    assert parse_caches(text) == {"docker.io": HUB_CACHE, "public.ecr.aws": PUBLIC_CACHE}
    assert parse_caches(f",public.ecr.aws={PUBLIC_CACHE}") == {"public.ecr.aws": PUBLIC_CACHE}
    assert parse_caches("") == {}
    for bad in ("quay.io=" + HUB_CACHE, "docker.io=evil.example/x", "docker.io"):
        with pytest.raises(StepImageCachesError, match="STEP_IMAGE_CACHES"):
            parse_caches(bad)


@pytest.mark.parametrize(
    ("image", "pulled"),
    [
        # Docker Hub's official images are under library/ in the cache (docs/reference/aws.md §H.8)
        ("node:22", f"{HUB_CACHE}/library/node:22"),
        ("docker.io/library/node:22", f"{HUB_CACHE}/library/node:22"),
        ("bitnami/git:2", f"{HUB_CACHE}/bitnami/git:2"),
        (f"node@{DIGEST}", f"{HUB_CACHE}/library/node@{DIGEST}"),
        ("public.ecr.aws/docker/library/node:22", f"{PUBLIC_CACHE}/docker/library/node:22"),
        # no cache for these registries: as written
        ("ghcr.io/org/tool:1", "ghcr.io/org/tool:1"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/ci/tool:1", None),
    ],
)
def test_images_of_a_cached_upstream_are_pulled_through_the_cache(
    image: str, pulled: str | None
) -> None:
    caches = {"docker.io": HUB_CACHE, "public.ecr.aws": PUBLIC_CACHE}
    assert through_cache(parse_image_reference(image), caches) == (pulled or image)


def test_without_caches_every_image_is_pulled_as_written() -> None:
    assert through_cache(parse_image_reference("node:22"), {}) == "node:22"


def test_the_derived_definition_pulls_through_the_cache() -> None:
    request = derive_task_definition(
        base_definition(),
        container_name="agent",
        image=parse_image_reference("node:22"),
        family="ci-step-7-x",
        caches={"docker.io": HUB_CACHE},
    ).request
    assert request["containerDefinitions"][1]["image"] == f"{HUB_CACHE}/library/node:22"
