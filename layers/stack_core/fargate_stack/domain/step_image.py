"""A step's own ``image:``: is it allowed, and the task definition that runs it. Pure.

Buildkite puts a command step's ``image`` in the job's environment as ``BUILDKITE_IMAGE``
(https://buildkite.com/docs/pipelines/configure/step-types/command-step; agent-stack-k8s
reads it there, internal/controller/scheduler/scheduler.go). The value is job data,
written by whoever can push a pipeline: it is validated as an image reference before
anything is registered, and runs only where ``AllowedImages`` allows it.

RunTask cannot override a container's image, so a step image needs a task definition of
its own: the stack's agent definition with the job container's image replaced, under a
deterministic family (``derived_family``), registered once and reused (usecases/step_images.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

IMAGE_ENV = "BUILDKITE_IMAGE"
ALLOWED_IMAGES = "AllowedImages"
REGISTRATIONS_PER_DAY = "StepImageRegistrationsPerDay"

# The image reference grammar of distribution/reference (reference/regexp.go): a name of
# slash-separated lower-case components, the first of which may be a registry host with a
# port, then an optional tag ([\w][\w.-]{0,127}) and an optional digest. Written by hand:
# no well-kept Python package implements that grammar (docker-py only splits the tag off).
# The name is at most 255 characters (reference.NameTotalLengthMax), and ECS takes an
# `image` of at most 255 characters in all (docs/reference/aws.md §B.9).
NAME_MAX = 255
IMAGE_MAX = 255
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9]+(?:-+[a-zA-Z0-9]+)*"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_NAME = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
# What a pattern of AllowedImages may hold: the reference's characters and `*`.
_PATTERN = re.compile(r"[A-Za-z0-9._:/@*-]+")
# A registry host is a first component with a dot or a port, or localhost (reference's
# normalize.go splitDockerDomain); anything else is Docker Hub, official images under library/.
_DOCKER_HUB = "docker.io"
# A Buildkite notification's detail is at most 256 characters
# (https://buildkite.com/docs/apis/agent-api/stacks#create-stack-notifications); the image
# is cut so that the sentence fits.
_NOTE_IMAGE_MAX = 120


class ImageReferenceError(ValueError):
    """A step's image is not a reference any registry would accept; says why."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A validated reference. ``text`` is what the step wrote (what ECS is given)."""

    text: str
    name: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def qualified(self) -> str:
        """Docker Hub's short names spelled out (node:20 -> docker.io/library/node:20)."""
        first, sep, _ = self.name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            name = self.name
        elif sep:
            name = f"{_DOCKER_HUB}/{self.name}"
        else:
            name = f"{_DOCKER_HUB}/library/{self.name}"
        return (
            name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")
        )


def _shown(text: str) -> str:
    """Job data quoted in a reason: cut, so a huge value cannot fill the FailJob detail."""
    return repr(text if len(text) <= _NOTE_IMAGE_MAX else text[:_NOTE_IMAGE_MAX] + "...")


def parse_image_reference(text: str) -> ImageReference:
    """The reference, or ImageReferenceError saying what is wrong with it."""
    if len(text) > IMAGE_MAX:
        raise ImageReferenceError(f"image {_shown(text)} is over {IMAGE_MAX} characters")
    if not text or text != text.strip():
        raise ImageReferenceError(f"image {_shown(text)} is empty or has surrounding spaces")
    if not text.isascii() or not text.isprintable():
        raise ImageReferenceError(f"image {_shown(text)} holds characters no image reference has")
    rest, _, digest = text.partition("@")
    if "@" in text and not _DIGEST.fullmatch(digest):
        raise ImageReferenceError(
            f"image {_shown(text)}: a digest must be sha256: followed by 64 lower-case hex digits"
        )
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = rest.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise ImageReferenceError(
                f"image {_shown(text)}: tag {_shown(tag)} is not 1-128 letters, digits, _ . or -"
            )
    if len(name) > NAME_MAX:
        raise ImageReferenceError(f"image {_shown(text)}: the name is over {NAME_MAX} characters")
    if not _NAME.fullmatch(name):
        raise ImageReferenceError(
            f"image {_shown(text)}: {_shown(name)} is not an image name (lower-case path "
            "components, optionally after a registry host)"
        )
    return ImageReference(text=text, name=name, tag=tag, digest=digest or None)


class AllowedImagesError(ValueError):
    """AllowedImages does not parse; names the parameter and the pattern."""


def parse_allowed_images(text: str) -> tuple[str, ...]:
    """Comma-separated patterns, `*` matching any run of characters (slashes too). Empty
    text: step images are off. A pattern is matched against the image as the step wrote it
    and in its qualified form, so ``node:*`` and ``docker.io/library/node:*`` both work."""
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    for pattern in patterns:
        if not _PATTERN.fullmatch(pattern):
            raise AllowedImagesError(
                f"{ALLOWED_IMAGES}: {pattern!r} may hold only an image reference's characters and *"
            )
    return patterns


def image_allowed(image: ImageReference, patterns: Sequence[str]) -> bool:
    candidates = (image.text, image.qualified)
    # fnmatchcase: no case folding; `[` and `?` cannot occur (checked above), so `*` is the
    # only special character left.
    return any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates)


class ImageVerdict(StrEnum):
    DEFAULT = "default"  # no image asked for: the stack's agent task definition
    IGNORED = "ignored"  # asked for, step images off: the agent image, with a notification
    USE = "use"  # an allowed image: its own task definition
    REFUSED = "refused"  # not allowed, or not a reference: failed back


@dataclass(frozen=True, slots=True)
class ImageDecision:
    verdict: ImageVerdict
    image: ImageReference | None = None
    # For IGNORED (the notification) and REFUSED (the FailJob detail).
    detail: str = ""


def decide_image(job_env: Mapping[str, str], patterns: Sequence[str]) -> ImageDecision:
    asked = job_env.get(IMAGE_ENV, "")
    if not asked.strip():
        return ImageDecision(ImageVerdict.DEFAULT)
    if not patterns:
        return ImageDecision(
            ImageVerdict.IGNORED,
            detail=f"image {_shown(asked)} ignored: this stack runs steps in its agent image "
            f"({ALLOWED_IMAGES} is empty)",
        )
    try:
        image = parse_image_reference(asked)
    except ImageReferenceError as exc:
        return ImageDecision(ImageVerdict.REFUSED, detail=str(exc))
    if not image_allowed(image, patterns):
        return ImageDecision(
            ImageVerdict.REFUSED,
            image=image,
            detail=f"image {image.text!r} is not allowed on this stack: it matches none of "
            f"{ALLOWED_IMAGES} ({', '.join(patterns)})",
        )
    return ImageDecision(ImageVerdict.USE, image=image)


# ---- pull-through caches -----------------------------------------------------------------

# Upstream registry -> the ECR pull-through cache's path (<account>.dkr.ecr.<region>.<suffix>
# /<prefix>) that serves it (docs/reference/aws.md §H.8). Every task pulls its image afresh, and
# tasks behind one NAT address share Docker Hub's 10 unauthenticated pulls an hour
# (docs/reference/aws.md §H.7), so a cached upstream's images are pulled from the cache.
_CACHE_PATH = re.compile(r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.[a-z0-9.]+/[a-z0-9._/-]{2,30}")


class StepImageCachesError(ValueError):
    """The launcher's STEP_IMAGE_CACHES does not parse."""


def parse_caches(text: str) -> dict[str, str]:
    """``<upstream>=<cache path>,...`` (the template writes it) -> {upstream: path}."""
    caches: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        upstream, sep, path = pair.partition("=")
        if (
            not sep
            or upstream not in (_DOCKER_HUB, "public.ecr.aws")
            or not _CACHE_PATH.fullmatch(path)
        ):
            raise StepImageCachesError(
                f"STEP_IMAGE_CACHES: {pair!r} is not <upstream>=<cache path>"
            )
        caches[upstream] = path
    return caches


def through_cache(image: ImageReference, caches: Mapping[str, str]) -> str:
    """The reference ECS pulls: the cache's path for an image of a cached upstream (Docker
    Hub's official images under library/: ImageReference.qualified), else the image as the
    step wrote it."""
    registry, _, path = image.qualified.partition("/")
    cache = caches.get(registry)
    return f"{cache}/{path}" if cache else image.text


# ---- the derived task definition -------------------------------------------------------

# The family: RegisterTaskDefinition allows up to 255 letters, digits, hyphens and
# underscores. `<prefix><base revision>-<hash>`: the prefix is the template's
# (`<stack>-step-`), the revision tells the cleanup which stack version a family belongs
# to, the hash (of the base definition's ARN and the image) makes the family the same for
# every launcher and new after every stack update.
FAMILY_MAX = 255
_HASH_CHARS = 20


def base_revision(task_definition_arn: str) -> int:
    """arn:...:task-definition/<family>:<revision> -> revision."""
    _, _, revision = task_definition_arn.rpartition(":")
    if not revision.isdigit():
        raise ValueError(f"{task_definition_arn!r} names no task definition revision")
    return int(revision)


def derived_family(prefix: str, base_arn: str, image: str) -> str:
    digest = hashlib.sha256(f"{base_arn}\n{image}".encode()).hexdigest()[:_HASH_CHARS]
    family = f"{prefix}{base_revision(base_arn)}-{digest}"
    if len(family) > FAMILY_MAX:
        raise ValueError(f"family {family!r} is over {FAMILY_MAX} characters")
    return family


def family_base_revision(prefix: str, family: str) -> int | None:
    """The base revision a derived family was made from, or None if not one of ours."""
    if not family.startswith(prefix):
        return None
    revision, sep, digest = family[len(prefix) :].partition("-")
    if not sep or not revision.isdigit() or len(digest) != _HASH_CHARS:
        return None
    return int(revision)


def stale_family(prefix: str, family: str, current_revision: int) -> bool:
    """Made from a base older than the current one and the one before it. The one before
    stays: a launcher of the previous stack version may still be launching from it while
    CloudFormation updates the functions (the base itself is retained for the same reason,
    template.yaml AgentTaskDefinition)."""
    revision = family_base_revision(prefix, family)
    return revision is not None and revision < current_revision - 1


# The task volume both containers mount: a Fargate bind mount on the task's ephemeral
# storage (a volume with only a name; https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html).
SHARED_VOLUME = "buildkite-fargate"
SHARED_PATH = "/buildkite-fargate"
SETUP_CONTAINER = "agent-setup"
# Where Go looks for the system's CA bundle on Linux (the agent has none of its own;
# docs/reference/aws.md §B.9), the first ones of crypto/x509/root_linux.go.
_CA_BUNDLES = " ".join(
    (
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/tls/cacert.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/cert.pem",
    )
)

# The setup container runs in the agent image (which has the agent, a shell and a CA
# bundle) and leaves in the volume what the step's image lacks: the agent binary (a static
# Go build, so it runs on any Linux userland), the CA bundle, the image's agent hooks (an
# operator ships hooks in an AgentImageOverride built on the agent image: docs/pipelines.md)
# and the job container's entrypoint. /buildkite/hooks is the agent image's hooks path.
SETUP_SCRIPT = f"""set -eu
mkdir -p {SHARED_PATH}/bin {SHARED_PATH}/hooks {SHARED_PATH}/builds {SHARED_PATH}/plugins
cp "$(command -v buildkite-agent)" {SHARED_PATH}/bin/buildkite-agent
for bundle in {_CA_BUNDLES}; do
  if [ -f "$bundle" ]; then cp "$bundle" {SHARED_PATH}/ca-certificates.crt; break; fi
done
if [ -d /buildkite/hooks ]; then cp -R /buildkite/hooks/. {SHARED_PATH}/hooks/; fi
cat > {SHARED_PATH}/bin/entrypoint <<'BUILDKITE_FARGATE_EOF'
@ENTRYPOINT@
BUILDKITE_FARGATE_EOF
cat > {SHARED_PATH}/bin/forward <<'BUILDKITE_FARGATE_EOF'
@FORWARD@
BUILDKITE_FARGATE_EOF
chmod 0755 {SHARED_PATH}/bin/buildkite-agent {SHARED_PATH}/bin/entrypoint {SHARED_PATH}/bin/forward
chmod 0777 {SHARED_PATH}/builds {SHARED_PATH}/plugins
"""

# The job container's entrypoint, in any POSIX sh: the agent on PATH, the CA bundle where
# the image has none, the checkout secrets installed for git and then dropped from the
# environment (as the agent image's entrypoint does: ssh-env-config.sh reads
# SSH_PRIVATE_RSA_KEY, docs/reference/aws.md §A.9; git credentials, §A.11), then the agent.
# With bash in the image, bash runs the agent under the TERM-to-QUIT forwarder that the
# agent task definition's entrypoint uses (template.yaml; docs/reference/aws.md §H.21:
# dash cannot); without bash, ECS's SIGTERM reaches the agent itself, which then lets the
# job finish until StopTimeout (docs/pipelines.md says so).
ENTRYPOINT_SCRIPT = f"""set -u
PATH="{SHARED_PATH}/bin:$PATH"
export PATH
bundle={SHARED_PATH}/ca-certificates.crt
own=
for path in {_CA_BUNDLES}; do [ -e "$path" ] && own=1; done
if [ -z "${{SSL_CERT_FILE:-}}" ] && [ -z "$own" ] && [ -f "$bundle" ]; then
  SSL_CERT_FILE="$bundle"
  export SSL_CERT_FILE
fi
home="${{HOME:-/root}}"
me=buildkite-fargate-stack
if [ -n "${{SSH_PRIVATE_RSA_KEY:-}}" ]; then
  key="$home/.ssh/id_rsa"
  if ! (umask 077; mkdir -p "$home/.ssh" \\
    && printf '%s\\n' "$SSH_PRIVATE_RSA_KEY" > "$key" && chmod 600 "$key"); then
    echo "$me: GitSshKeySecretArn: could not store the key for ssh" >&2
    exit 78
  fi
fi
if [ -n "${{BUILDKITE_FARGATE_GIT_CREDENTIALS:-}}" ]; then
  store="$home/.git-credentials"
  if ! (umask 077; printf '%s\\n' "$BUILDKITE_FARGATE_GIT_CREDENTIALS" > "$store" \\
    && chmod 600 "$store" && HOME="$home" git config --global credential.helper store); then
    echo "$me: GitCredentialsSecretArn: could not store the credentials for git" \\
      "(is git in the image?)" >&2
    exit 78
  fi
fi
unset SSH_PRIVATE_RSA_KEY BUILDKITE_FARGATE_GIT_CREDENTIALS
if command -v bash >/dev/null 2>&1; then
  exec bash {SHARED_PATH}/bin/forward "$@"
fi
exec buildkite-agent "$@"
"""

FORWARD_SCRIPT = """child=
stopping=
forward() { if [ -n "$child" ]; then kill -QUIT "$child" 2>/dev/null; fi; }
trap 'stopping=1; forward' TERM
(trap - INT QUIT; exec buildkite-agent "$@") &
child=$!
if [ -n "$stopping" ]; then forward; fi
while kill -0 "$child" 2>/dev/null; do wait "$child"; done
wait "$child"
"""

# Where the agent keeps builds, plugins and hooks in a step image (the agent image's own
# paths are under /buildkite, which a step image does not have).
STEP_AGENT_ENV = (
    ("BUILDKITE_BUILD_PATH", f"{SHARED_PATH}/builds"),
    ("BUILDKITE_PLUGINS_PATH", f"{SHARED_PATH}/plugins"),
    ("BUILDKITE_HOOKS_PATH", f"{SHARED_PATH}/hooks"),
)
# Variables of the agent image's own entrypoint that mean nothing in a step image.
_DROPPED_ENV = frozenset({"TINI_SUBREAPER"})

# What RegisterTaskDefinition takes, of what DescribeTaskDefinition answers (the rest,
# such as the ARN, revision, status and registration times, are read-only).
_REGISTER_FIELDS = (
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)


def setup_script() -> str:
    return SETUP_SCRIPT.replace("@ENTRYPOINT@", ENTRYPOINT_SCRIPT.rstrip("\n")).replace(
        "@FORWARD@", FORWARD_SCRIPT.rstrip("\n")
    )


@dataclass(frozen=True, slots=True)
class DerivedDefinition:
    family: str
    image: str
    # RegisterTaskDefinition's keyword arguments.
    request: Mapping[str, Any]


def derive_task_definition(
    base: Mapping[str, Any],
    *,
    container_name: str,
    image: ImageReference,
    family: str,
    tags: Sequence[tuple[str, str]] = (),
    caches: Mapping[str, str] | None = None,
) -> DerivedDefinition:
    """The stack's agent task definition (DescribeTaskDefinition's ``taskDefinition``) with
    the job container running ``image``: the agent container becomes the setup container
    (its image, no secrets, not essential), and the job container keeps everything of the
    agent container (secrets, environment, logs, stop timeout) but its image and
    entrypoint, and starts once the setup container has exited 0 (dependsOn SUCCESS,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDependency.html)."""
    containers = list(base.get("containerDefinitions", []))
    agent = next((c for c in containers if c.get("name") == container_name), None)
    if agent is None:
        raise ValueError(f"the base task definition has no container {container_name!r}")
    mount = {"sourceVolume": SHARED_VOLUME, "containerPath": SHARED_PATH, "readOnly": False}
    setup: dict[str, Any] = {
        "name": SETUP_CONTAINER,
        "image": agent["image"],
        "essential": False,
        "entryPoint": ["/bin/sh", "-c"],
        "command": [setup_script()],
        "mountPoints": [mount],
    }
    if "logConfiguration" in agent:
        setup["logConfiguration"] = agent["logConfiguration"]
    environment = [e for e in agent.get("environment", []) if e.get("name") not in _DROPPED_ENV]
    own = {name for name, _ in STEP_AGENT_ENV}
    environment = [e for e in environment if e.get("name") not in own]
    environment += [{"name": k, "value": v} for k, v in STEP_AGENT_ENV]
    job = {
        **{k: v for k, v in agent.items() if k not in ("entryPoint", "command", "dependsOn")},
        "image": through_cache(image, caches or {}),
        "essential": True,
        "entryPoint": ["/bin/sh", f"{SHARED_PATH}/bin/entrypoint"],
        "command": ["start"],
        "environment": environment,
        "mountPoints": [*agent.get("mountPoints", []), mount],
        "dependsOn": [{"containerName": SETUP_CONTAINER, "condition": "SUCCESS"}],
    }
    others = [c for c in containers if c.get("name") != container_name]
    request: dict[str, Any] = {k: base[k] for k in _REGISTER_FIELDS if base.get(k) is not None}
    request["family"] = family
    request["containerDefinitions"] = [setup, job, *others]
    request["volumes"] = [*base.get("volumes", []), {"name": SHARED_VOLUME}]
    if tags:
        request["tags"] = [{"key": k, "value": v} for k, v in tags]
    return DerivedDefinition(family=family, image=job["image"], request=request)
