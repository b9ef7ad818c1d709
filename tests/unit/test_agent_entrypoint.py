"""The agent container's entrypoint script, run for real: the script in template.yaml under
bash, with a dummy ``buildkite-agent-entrypoint`` first on PATH that records the signals it
gets and exits with a status of its own.

ECS stops a task with SIGTERM; buildkite-agent cancels its job only on SIGQUIT
(docs/reference/aws.md §H.6, §H.20). The script must hand the image's entrypoint a QUIT
for each TERM, pass the Command's arguments through, and exit with the child's status
(the failure handler reads the agent's exit code, docs/reference/aws.md §A.2).
"""

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

from local.template import load_sam_template

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")

# A POSIX sh that traps what it gets, as the agent does with signal.Notify. A shell cannot
# trap a signal that was ignored when it started, so this also proves the script hands the
# child QUIT at its default disposition.
DUMMY_AGENT = """#!/bin/sh
quits=0
quit() {
  echo QUIT >> "$RECORD"
  quits=$((quits + 1))
  [ "$quits" -lt "${QUITS_TO_EXIT:-1}" ] || exit 7
}
trap quit QUIT
trap 'echo TERM >> "$RECORD"; exit 8' TERM
echo $$ > "$RECORD.pid"
echo "$*" > "$RECORD.args"
env > "$RECORD.env"
[ -n "${EXIT_AT_ONCE:-}" ] && exit "$EXIT_AT_ONCE"
while :; do sleep 0.05; done
"""


def entrypoint() -> list[str]:
    task = load_sam_template()["Resources"]["AgentTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    words: list[str] = [*container["EntryPoint"], *container["Command"]]
    return words


def start(tmp_path: Path, shell: str | None = None, **extra: str) -> subprocess.Popen[bytes]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dummy = bin_dir / "buildkite-agent-entrypoint"
    dummy.write_text(DUMMY_AGENT)
    dummy.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RECORD": str(tmp_path / "signals"),
        **extra,
    }
    argv = entrypoint()
    if shell is not None:
        argv[0] = shell
    return subprocess.Popen(argv, env=env)  # our own template's script


def wait_for(path: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_dummy_left_running(tmp_path: Path) -> Iterator[None]:
    yield
    pid_file = tmp_path / "signals.pid"
    if pid_file.exists() and pid_file.read_text().strip():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_sigterm_reaches_the_agent_as_sigquit_and_the_exit_status_passes_through(
    tmp_path: Path,
) -> None:
    wrapper = start(tmp_path)
    wait_for(tmp_path / "signals.args")
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=5) == 7  # the dummy's exit status on QUIT
    assert (tmp_path / "signals").read_text().split() == ["QUIT"]
    assert (tmp_path / "signals.args").read_text().strip() == "start"


def test_without_a_stop_the_agents_own_exit_status_is_the_containers(tmp_path: Path) -> None:
    wrapper = start(tmp_path, EXIT_AT_ONCE="27")  # job not acquirable
    assert wrapper.wait(timeout=5) == 27
    assert not (tmp_path / "signals").exists()


def test_a_second_sigterm_is_a_second_quit_never_a_term(tmp_path: Path) -> None:
    wrapper = start(tmp_path, QUITS_TO_EXIT="2")  # the agent still canceling its job
    wait_for(tmp_path / "signals.args")
    wrapper.send_signal(signal.SIGTERM)
    wait_for(tmp_path / "signals")
    assert wrapper.poll() is None  # the script waits on for the agent
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=5) == 7
    assert (tmp_path / "signals").read_text().split() == ["QUIT", "QUIT"]


@pytest.mark.skipif(
    not Path("/bin/sh").resolve().name.startswith("dash"), reason="/bin/sh is not dash"
)
def test_under_dash_the_background_agent_would_start_with_quit_ignored(tmp_path: Path) -> None:
    """Why the entrypoint names bash: dash starts an asynchronous command with SIGINT and
    SIGQUIT ignored and its `trap -` cannot undo that (docs/reference/aws.md §H.21), so the
    dummy cannot even trap QUIT and TERM never becomes a cancel."""
    wrapper = start(tmp_path, shell="/bin/sh")
    wait_for(tmp_path / "signals.args")
    wrapper.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert wrapper.poll() is None  # the QUIT was ignored: the "agent" runs on
    assert not (tmp_path / "signals").exists()
    wrapper.kill()
    wrapper.wait(timeout=5)  # the fixture ends the dummy


GIT = shutil.which("git")
CREDENTIALS = "https://x-access-token:not-a-token@github.com"


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_git_credentials_are_stored_for_git_and_never_reach_the_agent(tmp_path: Path) -> None:
    """GitCredentialsSecretArn: ECS puts the secret in the container's environment; the
    script writes it where git's credential store reads it (mode 600), configures the
    store, and the agent (and so the job) does not inherit the variable
    (docs/reference/aws.md §A.11)."""
    home = tmp_path / "home"
    home.mkdir()
    wrapper = start(
        tmp_path, HOME=str(home), EXIT_AT_ONCE="0", BUILDKITE_FARGATE_GIT_CREDENTIALS=CREDENTIALS
    )
    assert wrapper.wait(timeout=10) == 0
    stored = home / ".git-credentials"
    assert stored.read_text() == CREDENTIALS + "\n"
    assert stored.stat().st_mode & 0o777 == 0o600
    helper = subprocess.run(
        [str(GIT), "config", "--global", "--get", "credential.helper"],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert helper.stdout.strip() == "store"
    assert "BUILDKITE_FARGATE_GIT_CREDENTIALS" not in (tmp_path / "signals.env").read_text()


def test_without_git_credentials_nothing_is_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    wrapper = start(tmp_path, HOME=str(home), EXIT_AT_ONCE="0")
    assert wrapper.wait(timeout=10) == 0
    assert list(home.iterdir()) == []


def test_credentials_that_cannot_be_stored_stop_the_task_before_the_agent_starts(
    tmp_path: Path,
) -> None:
    """No git in the image (PATH without it): exit 78 with a line naming the parameter, and
    no agent, rather than a checkout failing later with an authentication error."""
    home = tmp_path / "home"
    home.mkdir()
    bash_only = tmp_path / "bash-only"
    bash_only.mkdir()
    (bash_only / "bash").symlink_to(str(BASH))
    (bash_only / "chmod").symlink_to(str(shutil.which("chmod")))
    wrapper = start(
        tmp_path,
        shell=str(bash_only / "bash"),
        HOME=str(home),
        EXIT_AT_ONCE="0",
        BUILDKITE_FARGATE_GIT_CREDENTIALS=CREDENTIALS,
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{bash_only}",
    )
    assert wrapper.wait(timeout=10) == 78
    assert not (tmp_path / "signals.args").exists()  # the agent never started
    # the file was written (chmod ran); git was what failed
    assert (home / ".git-credentials").stat().st_mode & 0o777 == 0o600
