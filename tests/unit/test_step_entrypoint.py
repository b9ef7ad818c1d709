"""The two scripts of a step image's task, run for real: the setup container's (under sh,
as in the agent image) leaves the agent, the CA bundle, the hooks and the entrypoint in the
shared volume; the job container's entrypoint (under /bin/sh, dash here) installs the
checkout secrets, drops them, and starts the agent, under bash's TERM-to-QUIT forwarder
when the image has bash and directly when it has not.

The scripts name /buildkite-fargate and /buildkite/hooks; the tests point them at a
temporary folder instead, the only change."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fargate_stack.domain.step_image import SHARED_PATH, setup_script

SH = "/bin/sh"
BASH = shutil.which("bash")
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(not Path(SH).exists(), reason="no /bin/sh")

# The agent's stand-in: records its arguments, environment and signals.
DUMMY_AGENT = """#!/bin/sh
trap 'echo QUIT >> "$RECORD"; exit 7' QUIT
trap 'echo TERM >> "$RECORD"; exit 8' TERM
echo $$ > "$RECORD.pid"
echo "$*" > "$RECORD.args"
env > "$RECORD.env"
[ -n "${EXIT_AT_ONCE:-}" ] && exit "$EXIT_AT_ONCE"
while :; do sleep 0.05; done
"""


def run_setup(tmp_path: Path) -> Path:
    """The setup container, with a dummy agent on PATH and a hooks folder of the image."""
    shared = tmp_path / "shared"
    shared.mkdir()
    image_bin = tmp_path / "image-bin"
    image_bin.mkdir()
    agent = image_bin / "buildkite-agent"
    agent.write_text(DUMMY_AGENT)
    agent.chmod(0o755)
    hooks = tmp_path / "image-hooks"
    hooks.mkdir()
    (hooks / "environment").write_text("export FROM_HOOK=1\n")
    script = (
        setup_script().replace(SHARED_PATH, str(shared)).replace("/buildkite/hooks", str(hooks))
    )
    env = {**os.environ, "PATH": f"{image_bin}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([SH, "-c", script], env=env, check=True, timeout=10)
    return shared


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    folder = run_setup(tmp_path)
    yield folder
    pid_file = tmp_path / "signals.pid"
    if pid_file.exists() and pid_file.read_text().strip():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_the_setup_container_leaves_what_the_step_image_lacks(shared: Path) -> None:
    for name in ("buildkite-agent", "entrypoint", "forward"):
        assert os.access(shared / "bin" / name, os.X_OK), name
    assert (shared / "hooks" / "environment").read_text() == "export FROM_HOOK=1\n"
    for folder in ("builds", "plugins"):
        assert (shared / folder).stat().st_mode & 0o777 == 0o777
    if any(Path(p).is_file() for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem")):
        assert (shared / "ca-certificates.crt").stat().st_size > 0


def test_a_failing_copy_fails_the_setup_container(tmp_path: Path) -> None:
    """No agent in the image: the setup container exits non-zero, so (dependsOn SUCCESS)
    the job container never starts and the task stops with a reason."""
    shared = tmp_path / "shared"
    shared.mkdir()
    script = setup_script().replace(SHARED_PATH, str(shared))
    done = subprocess.run(
        [SH, "-c", script],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert done.returncode != 0


def start(
    tmp_path: Path, shared: Path, path: str | None = None, **extra: str
) -> subprocess.Popen[bytes]:
    # The entrypoint was written with the real shared path; point it at the test's folder.
    entrypoint = shared / "bin" / "entrypoint"
    entrypoint.write_text(entrypoint.read_text().replace(SHARED_PATH, str(shared)))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": path or os.environ["PATH"],
        "HOME": str(home),
        "RECORD": str(tmp_path / "signals"),
        **extra,
    }
    return subprocess.Popen([SH, str(entrypoint), "start"], env=env)  # our own script


def wait_for(path: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_with_bash_a_sigterm_reaches_the_agent_as_sigquit(tmp_path: Path, shared: Path) -> None:
    wrapper = start(tmp_path, shared)
    wait_for(tmp_path / "signals.args")
    assert (tmp_path / "signals.args").read_text().strip() == "start"
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=5) == 7
    assert (tmp_path / "signals").read_text().split() == ["QUIT"]


def test_without_bash_the_agent_is_started_directly(tmp_path: Path, shared: Path) -> None:
    """An image with only a POSIX sh: the agent gets ECS's TERM itself."""
    no_bash = tmp_path / "no-bash"
    no_bash.mkdir()
    for tool in ("sleep", "env"):
        found = shutil.which(tool)
        assert found is not None
        (no_bash / tool).symlink_to(found)
    wrapper = start(tmp_path, shared, path=str(no_bash))
    wait_for(tmp_path / "signals.args")
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=5) == 8
    assert (tmp_path / "signals").read_text().split() == ["TERM"]


def test_the_agent_runs_from_the_shared_folder_with_its_exit_status(
    tmp_path: Path, shared: Path
) -> None:
    wrapper = start(tmp_path, shared, EXIT_AT_ONCE="27")
    assert wrapper.wait(timeout=5) == 27
    env = (tmp_path / "signals.env").read_text()
    assert f"PATH={shared}/bin:" in env


def test_the_ssh_key_is_written_for_ssh_and_never_reaches_the_agent(
    tmp_path: Path, shared: Path
) -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nnot-a-key\n-----END RSA PRIVATE KEY-----"
    wrapper = start(tmp_path, shared, EXIT_AT_ONCE="0", SSH_PRIVATE_RSA_KEY=key)
    assert wrapper.wait(timeout=5) == 0
    written = tmp_path / "home" / ".ssh" / "id_rsa"
    assert written.read_text() == key + "\n"
    assert written.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "home" / ".ssh").stat().st_mode & 0o077 == 0
    assert "SSH_PRIVATE_RSA_KEY" not in (tmp_path / "signals.env").read_text()


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_git_credentials_are_stored_and_never_reach_the_agent(tmp_path: Path, shared: Path) -> None:
    creds = "https://x-access-token:not-a-token@github.com"
    wrapper = start(tmp_path, shared, EXIT_AT_ONCE="0", BUILDKITE_FARGATE_GIT_CREDENTIALS=creds)
    assert wrapper.wait(timeout=10) == 0
    stored = tmp_path / "home" / ".git-credentials"
    assert stored.read_text() == creds + "\n"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert "BUILDKITE_FARGATE_GIT_CREDENTIALS" not in (tmp_path / "signals.env").read_text()


def test_credentials_an_image_without_git_cannot_store_stop_the_task_with_78(
    tmp_path: Path, shared: Path
) -> None:
    no_git = tmp_path / "no-git"
    no_git.mkdir()
    (no_git / "chmod").symlink_to(str(shutil.which("chmod")))
    wrapper = start(
        tmp_path,
        shared,
        path=str(no_git),
        EXIT_AT_ONCE="0",
        BUILDKITE_FARGATE_GIT_CREDENTIALS="https://u:p@example.com",
    )
    assert wrapper.wait(timeout=10) == 78
    assert not (tmp_path / "signals.args").exists()


@pytest.mark.parametrize("image_has_bundle", [True, False])
def test_the_agents_ca_bundle_is_used_only_when_the_image_has_none(
    tmp_path: Path, shared: Path, image_has_bundle: bool
) -> None:
    # The image's /etc is a folder of the test's, with or without Alpine's bundle.
    etc = tmp_path / "image-etc"
    if image_has_bundle:
        (etc / "ssl").mkdir(parents=True)
        (etc / "ssl" / "cert.pem").write_text("the image's")
    entrypoint = shared / "bin" / "entrypoint"
    entrypoint.write_text(entrypoint.read_text().replace("/etc/", f"{etc}/"))
    (shared / "ca-certificates.crt").write_text("the agent image's")
    wrapper = start(tmp_path, shared, EXIT_AT_ONCE="0")
    assert wrapper.wait(timeout=5) == 0
    env = (tmp_path / "signals.env").read_text().splitlines()
    expected = [] if image_has_bundle else [f"SSL_CERT_FILE={shared}/ca-certificates.crt"]
    assert [line for line in env if line.startswith("SSL_CERT_FILE=")] == expected
