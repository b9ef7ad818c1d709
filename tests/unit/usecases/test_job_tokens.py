"""Job acquisition tokens for a launcher batch (usecases/job_tokens.py) and the launch that
uses them: one extend and one issue request per batch, a token per task and never a
second, nothing for jobs the stack no longer holds, and the secret kept out of every repr."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from pydantic import SecretStr

from fargate_stack.domain.launch import CapacityStrategy
from fargate_stack.errors import CapacityUnavailableError, PermanentError, TransientError
from fargate_stack.models.messages import LaunchMessage
from fargate_stack.usecases.job_tokens import BatchTokens, JatUnavailableError, NotReservedError
from fargate_stack.usecases.launch import LaunchJob, LaunchOptions
from tests.support.fakes import T0, FakeClock, FakeFallbacks, FakeStacksApi, FakeTasks, JobData
from tests.support.launch_config import launch_config


@dataclass
class TokenServer:
    """Buildkite's side of the two calls, as the emulator answers them (a port double)."""

    held: set[str] = field(default_factory=set)
    refuse_issue: set[str] = field(default_factory=set)
    endpoint_refused: bool = False
    lapse_after_extend: set[str] = field(default_factory=set)
    calls: list[tuple[str, list[str], int]] = field(default_factory=list)

    def extend_reservations(
        self, *, stack_key: str, job_uuids: Sequence[str], reservation_expiry_seconds: int
    ) -> tuple[list[str], list[str]]:
        self.calls.append(("extend", list(job_uuids), reservation_expiry_seconds))
        answer = (
            [j for j in job_uuids if j in self.held],
            [j for j in job_uuids if j not in self.held],
        )
        self.held -= self.lapse_after_extend
        return answer

    def issue_job_tokens(
        self, *, stack_key: str, job_uuids: Sequence[str], lifetime_seconds: int
    ) -> tuple[dict[str, SecretStr], list[str]]:
        self.calls.append(("issue", list(job_uuids), lifetime_seconds))
        if self.endpoint_refused:
            raise JatUnavailableError("HTTP 403")
        issued = [j for j in job_uuids if j not in self.refuse_issue]
        return {j: SecretStr(f"bkjat_{j[:8]}") for j in issued}, sorted(self.refuse_issue)


def jobs(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def tokens_for(
    server: TokenServer, batch: list[str], lifetime: int = 600, left: float = 890
) -> BatchTokens:
    """Tokens for a batch whose reservations have ``left`` seconds (moments after the
    poller reserved them for 900 s)."""
    tokens = BatchTokens(
        api=server, stack_key="fargate-prod", reservation_seconds=900, lifetime_seconds=lifetime
    )
    tokens.prepare(dict.fromkeys(batch, left))
    return tokens


def test_a_freshly_reserved_batch_costs_one_issue_request() -> None:
    batch = jobs(10)
    server = TokenServer(held=set(batch))
    tokens = tokens_for(server, batch)
    got = [tokens.token_for(j).get_secret_value() for j in batch]
    assert got == [f"bkjat_{j[:8]}" for j in batch]
    assert [(kind, len(asked)) for kind, asked, _ in server.calls] == [("issue", 10)]


def test_reservations_too_short_for_a_token_are_extended_first() -> None:
    fresh, late = jobs(2)
    server = TokenServer(held={fresh, late})
    tokens = BatchTokens(
        api=server, stack_key="fargate-prod", reservation_seconds=900, lifetime_seconds=600
    )
    tokens.prepare({fresh: 890, late: 120})
    tokens.token_for(fresh)
    assert server.calls == [("extend", [late], 900), ("issue", [fresh, late], 600)]


def test_the_token_lives_no_longer_than_the_reservation() -> None:
    (job,) = batch = jobs(1)
    server = TokenServer(held={job})
    tokens_for(server, batch, lifetime=3600).token_for(job)
    assert server.calls == [("extend", [job], 900), ("issue", [job], 900)]


def test_a_job_the_stack_no_longer_holds_gets_no_token() -> None:
    held, taken = jobs(2)
    # Buildkite issues nothing for a job this stack does not hold (the emulator's choice)
    server = TokenServer(held={held}, refuse_issue={taken})
    tokens = tokens_for(server, [held, taken])
    with pytest.raises(NotReservedError):
        tokens.token_for(taken)
    assert tokens.token_for(held).get_secret_value().startswith("bkjat_")
    # one issue request for the batch, then one extend to learn why one got none
    assert server.calls == [("issue", [held, taken], 600), ("extend", [taken], 900)]


def test_a_job_not_issued_right_after_its_extend_is_asked_about_again() -> None:
    (job,) = batch = jobs(1)
    # its reservation lapses to another stack between the extend and the issue
    server = TokenServer(held={job}, refuse_issue={job}, lapse_after_extend={job})
    with pytest.raises(NotReservedError):
        tokens_for(server, batch, left=120).token_for(job)
    assert server.calls == [("extend", [job], 900), ("issue", [job], 600), ("extend", [job], 900)]


def test_a_job_still_held_but_not_issued_is_retried_not_failed() -> None:
    (job,) = batch = jobs(1)
    server = TokenServer(held={job}, refuse_issue={job})
    with pytest.raises(TransientError) as caught:
        tokens_for(server, batch).token_for(job)
    assert not isinstance(caught.value, PermanentError)


def test_a_refused_endpoint_fails_every_launch_naming_the_parameter() -> None:
    batch = jobs(2)
    server = TokenServer(held=set(batch), endpoint_refused=True)
    tokens = tokens_for(server, batch)
    for job in batch:
        with pytest.raises(JatUnavailableError, match="AgentTokenMode=agent-token"):
            tokens.token_for(job)
    assert [kind for kind, _, _ in server.calls] == ["issue"]


def test_a_new_batch_forgets_the_last_ones_tokens() -> None:
    first, second = jobs(1), jobs(1)
    server = TokenServer(held={*first, *second})
    tokens = tokens_for(server, first)
    tokens.token_for(first[0])
    tokens.prepare(dict.fromkeys(second, 890.0))
    tokens.token_for(second[0])
    assert [asked for kind, asked, _ in server.calls if kind == "issue"] == [first, second]


# ------------------------------------------------------------------ the launch


def message(job: str) -> LaunchMessage:
    return LaunchMessage(
        job_uuid=uuid.UUID(job),
        stack_key="fargate-prod",
        scheduled_at=T0 - timedelta(seconds=3),
        reserved_at=T0 - timedelta(seconds=1),
        reservation_expires_at=T0 + timedelta(seconds=899),
        agent_query_rules=["queue=fargate"],
    )


def launcher(
    server: TokenServer, batch: list[str], strategy: CapacityStrategy = CapacityStrategy.SPOT
) -> tuple[LaunchJob, FakeTasks]:
    api = FakeStacksApi()
    for job in batch:
        api.jobs_data[job] = JobData(job, {"BUILDKITE_PIPELINE_SLUG": "app"}, "make")
    clock = FakeClock()
    tasks = FakeTasks(clock=clock)
    use_case = LaunchJob(
        api=api,
        tasks=tasks,
        fallbacks=FakeFallbacks(),
        clock=clock,
        options=LaunchOptions(launch_config(), strategy),
        tokens=tokens_for(server, batch),
    )
    return use_case, tasks


def agent_env(spec: object) -> dict[str, str]:
    overrides = spec.overrides()  # type: ignore[attr-defined]
    (container,) = overrides["containerOverrides"]
    return {e["name"]: e["value"] for e in container["environment"]}


def test_each_task_starts_with_its_own_jobs_token_and_the_job_to_acquire() -> None:
    batch = jobs(2)
    use_case, tasks = launcher(TokenServer(held=set(batch)), batch)
    for job in batch:
        assert use_case.launch(message(job))["outcome"] == "launched"
    for job, spec in zip(batch, tasks.launched, strict=True):
        env = agent_env(spec)
        assert env["BUILDKITE_AGENT_TOKEN"] == f"bkjat_{job[:8]}"
        assert env["BUILDKITE_AGENT_ACQUIRE_JOB"] == job
        # the secret is in the request only: no repr of the spec shows it
        assert f"bkjat_{job[:8]}" not in repr(spec)


def test_the_on_demand_fallback_reuses_the_token_it_was_given() -> None:
    (job,) = batch = jobs(1)
    server = TokenServer(held={job})
    use_case, tasks = launcher(server, batch, CapacityStrategy.SPOT_WITH_FALLBACK)
    tasks.errors = [CapacityUnavailableError("Capacity is unavailable")]
    assert use_case.launch(message(job))["outcome"] == "launched"
    assert agent_env(tasks.launched[-1])["BUILDKITE_AGENT_TOKEN"] == f"bkjat_{job[:8]}"
    assert [kind for kind, _, _ in server.calls] == ["issue"]


def test_a_job_no_longer_held_starts_no_task() -> None:
    (job,) = batch = jobs(1)
    use_case, tasks = launcher(TokenServer(held=set(), refuse_issue={job}), batch)
    with pytest.raises(NotReservedError):
        use_case.launch(message(job))
    assert tasks.launched == []


def test_a_refused_endpoint_fails_the_job_back_with_what_to_do() -> None:
    (job,) = batch = jobs(1)
    use_case, tasks = launcher(TokenServer(held={job}, endpoint_refused=True), batch)
    result = use_case.launch(message(job))
    assert result == {"outcome": "failed_back", "reason": "jat_unavailable"}
    assert tasks.launched == []
