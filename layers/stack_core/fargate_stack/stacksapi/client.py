"""``StacksClient``: every endpoint of the Buildkite Stacks API on one object.

Each endpoint lives in its own module (as in the Go package: ``register.py``,
``scheduled_jobs.py``, ...) as a mixin over the shared transport; this class only puts
them together, so adding an endpoint never touches the others.
"""

from __future__ import annotations

from fargate_stack.stacksapi.finish import FinishMixin
from fargate_stack.stacksapi.get_job import GetJobMixin
from fargate_stack.stacksapi.get_job_states import GetJobStatesMixin
from fargate_stack.stacksapi.job_acquisition_tokens import JobAcquisitionTokensMixin
from fargate_stack.stacksapi.register import RegisterMixin
from fargate_stack.stacksapi.scheduled_jobs import ScheduledJobsMixin
from fargate_stack.stacksapi.stack_notification import StackNotificationMixin


class StacksClient(
    RegisterMixin,
    ScheduledJobsMixin,
    GetJobMixin,
    GetJobStatesMixin,
    FinishMixin,
    StackNotificationMixin,
    JobAcquisitionTokensMixin,
):
    """A Stacks API client authenticated by a *cluster agent token* (``bkct_...``).

    ``StacksClient(token, base_url=..., user_agent_prefix=None, session=None,
    retry=RetryPolicy(), log_payloads=False, timeout=30.0, logger=None)``

    Every method takes keyword arguments only, and ``retry=`` to override the policy for
    that call (``False``: one attempt). Answers are pydantic models; errors are
    ``StacksAPIError`` subclasses. ``last_rate_limit`` / ``last_response`` show what the
    server said about its limits on this thread's last call. The token never appears in
    ``repr``, logs or exceptions. A client may be used as a context manager.
    """

    def __enter__(self) -> StacksClient:
        return self
