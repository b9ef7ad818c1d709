"""Where a task's agent log is, in words and links a developer on the job page can follow.

The agent container logs with the awslogs driver under the prefix ``job``, so its stream is
``job/<container name>/<task id>`` ("Using the awslogs log driver", Amazon ECS Developer
Guide: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html).
"""

from __future__ import annotations

from urllib.parse import quote

# template.yaml's awslogs-stream-prefix for the agent container (a template test pins it).
AGENT_LOG_STREAM_PREFIX = "job"
# A stack notification's detail is at most 256 characters
# (https://buildkite.com/docs/apis/agent-api/stacks#create-stack-notifications).
NOTIFICATION_MAX = 256
_ELLIPSIS = "..."
# What a FailJob detail says before the link (the local world finds links by it).
LOG_LINK_LEAD = "The agent's log:"


def log_stream(container: str, task_id: str) -> str:
    return f"{AGENT_LOG_STREAM_PREFIX}/{container}/{task_id}"


def console_link(region: str, log_group: str, stream: str) -> str:
    """The CloudWatch console's page of one log stream. AWS documents no format for console
    links (UNCONFIRMED): this is the one the console itself shows, each path part
    URL-encoded twice with ``%`` written ``$`` (as described in the Stack Overflow question
    "Is there a way to generate the AWS Console URLs for CloudWatch Log Group filters?").
    A wrong guess costs a link that opens the log group list, never a job."""

    def part(text: str) -> str:
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{part(log_group)}/log-events/{part(stream)}"
    )


def launch_note(task_id: str, stream: str, resources: str, image: str | None) -> str:
    """The notification while the task starts: the task, its size, its image, its log
    stream; the image is cut so that the whole fits a notification."""
    head = f"Fargate task {task_id} starting, {resources}"
    tail = f"; log stream {stream}"
    if not image:
        return (head + tail)[:NOTIFICATION_MAX]
    room = NOTIFICATION_MAX - len(head) - len(tail) - len(", image ")
    shown = image if len(image) <= room else image[: max(room - len(_ELLIPSIS), 0)] + _ELLIPSIS
    return f"{head}, image {shown}{tail}"[:NOTIFICATION_MAX]
