"""The agent log's stream, its console link and the launch notification's length."""

from __future__ import annotations

from fargate_stack.domain.task_logs import (
    NOTIFICATION_MAX,
    console_link,
    launch_note,
    log_stream,
)

TASK = "0123456789abcdef0123456789abcdef"


def test_the_stream_is_the_awslogs_prefix_the_container_and_the_task_id() -> None:
    assert log_stream("agent", TASK) == f"job/agent/{TASK}"


def test_the_console_link_encodes_each_part_twice_with_dollars() -> None:
    link = console_link("eu-west-1", "/bk/s/agent", f"job/agent/{TASK}")
    assert link == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#logsV2:log-groups/log-group/$252Fbk$252Fs$252Fagent"
        f"/log-events/job$252Fagent$252F{TASK}"
    )
    # A real group name and stream give a link longer than a notification may be.
    real = console_link(
        "ap-southeast-2", "/buildkite-fargate/my-ci-stack/agent", log_stream("agent", TASK)
    )
    assert len(real) > NOTIFICATION_MAX - 60


def test_the_launch_note_names_the_task_and_its_stream() -> None:
    note = launch_note(TASK, log_stream("agent", TASK), "1024 CPU units / 2048 MiB, spot", None)
    assert note == (
        f"Fargate task {TASK} starting, 1024 CPU units / 2048 MiB, spot; "
        f"log stream job/agent/{TASK}"
    )


def test_a_long_image_is_cut_so_that_the_note_fits_and_keeps_its_stream() -> None:
    image = "registry.example.com:5000/" + "a" * 200 + ":v1"
    resources = "16384 CPU units / 122880 MiB, 200 GiB disk, on-demand"
    note = launch_note(TASK, log_stream("agent", TASK), resources, image)
    assert len(note) == NOTIFICATION_MAX
    assert note.endswith(f"...; log stream job/agent/{TASK}")
    assert ", image registry.example.com:5000/aaa" in note


def test_a_short_image_is_shown_whole() -> None:
    note = launch_note(TASK, log_stream("agent", TASK), "512 CPU units / 1024 MiB, spot", "node:22")
    assert ", image node:22; log stream" in note
