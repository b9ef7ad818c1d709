"""The agent task definition turns ECS's stop into a cancel that fits before the kill.

ECS stops a task with SIGTERM and kills it at the container's StopTimeout, at most 120 s on
Fargate; a Spot interruption is such a stop (docs/reference/aws.md §A.8). buildkite-agent
reads SIGTERM as "finish the job first" and SIGQUIT as "cancel it"
(docs/reference/aws.md §H.6, §H.20), so the container's entrypoint must turn the one into
the other, and the cancel's grace periods must end before the kill, with room for the agent
to upload the log and finish the job.
"""

from __future__ import annotations

from typing import Any

Template = dict[str, Any]

FARGATE_MAX_STOP_TIMEOUT = 120  # docs/reference/aws.md §A.8
# After the job process has ended the agent still uploads the rest of the log, finishes
# the job and disconnects (docs/reference/aws.md §H.20); leave it this much.
AGENT_WRAP_UP_SECONDS = 20


def agent_container(cfn: Template) -> dict[str, Any]:
    task = cfn["Resources"]["AgentTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    result: dict[str, Any] = container
    return result


def env(container: dict[str, Any]) -> dict[str, str]:
    # The plain entries; the conditional ones (Fn::If, the plugin controls) are tested apart.
    return {item["Name"]: item["Value"] for item in container["Environment"] if "Name" in item}


def test_the_entrypoint_is_a_bash_that_turns_term_into_quit_for_the_images_entrypoint(
    cfn_template: Template,
) -> None:
    container = agent_container(cfn_template)
    shell, flag, script, name = container["EntryPoint"]
    assert (shell, flag) == ("/bin/bash", "-c")
    assert name == "buildkite-fargate-entrypoint"  # $0; "$@" is the Command
    assert "trap 'stopping=1; forward' TERM" in script
    assert 'kill -QUIT "$child"' in script
    # The image's own entrypoint still runs (its /docker-entrypoint.d hooks, tini), with
    # QUIT and INT back to their defaults in the child.
    assert '(trap - INT QUIT; exec buildkite-agent-entrypoint "$@") &' in script
    assert container["Command"] == ["start"]


def test_the_cancel_fits_inside_the_stop_timeout_with_room_to_finish_the_job(
    cfn_template: Template,
) -> None:
    container = agent_container(cfn_template)
    values = env(container)
    stop_timeout = container["StopTimeout"]
    cancel_grace = int(values["BUILDKITE_CANCEL_GRACE_PERIOD"])
    signal_grace = int(values["BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS"])
    assert stop_timeout == FARGATE_MAX_STOP_TIMEOUT
    # The agent refuses a signal grace period that is not below the cancel grace period
    # (clicommand/cancel_signal.go signalGracePeriod; docs/reference/aws.md §H.20).
    assert 0 < signal_grace < cancel_grace
    assert cancel_grace + AGENT_WRAP_UP_SECONDS <= stop_timeout
    # And the default 10 s would waste most of the Spot warning: the job gets at least a
    # minute to react to SIGTERM.
    assert signal_grace >= 60


def test_tini_reaps_orphans_although_it_is_not_pid_1(cfn_template: Template) -> None:
    assert env(agent_container(cfn_template))["TINI_SUBREAPER"] == "1"
