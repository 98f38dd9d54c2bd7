"""The /healthz rules (``health.verdict``) as pure functions of a snapshot, role by role."""

from __future__ import annotations

import pytest

from tgs3bot.health import PollStatus, Role, Snapshot, verdict

BOUND_S = 60.0


def judge(snapshot: Snapshot, now: float = 1000.0) -> tuple[int, str]:
    answer = verdict(snapshot, now=now, max_poll_failure_s=BOUND_S)
    return answer.status, answer.body()


@pytest.mark.parametrize(
    ("role", "body"),
    [("run", "ok: polling, 8 workers\n"), ("poll", "ok: polling\n"), ("work", "ok: 8 workers\n")],
)
def test_a_process_doing_its_roles_job_is_healthy_and_says_what_it_does(role: Role, body: str) -> None:
    """Polling and live workers: 200 with a summary of what this role does."""
    assert judge(Snapshot(role=role, workers=8)) == (200, body)


@pytest.mark.parametrize("role", ["run", "poll", "work"])
def test_before_the_tasks_start_and_once_stopping_it_is_not_healthy(role: Role) -> None:
    """Starting (the start-up checks run) and shutting down are 503, whatever the role."""
    assert judge(Snapshot(role=role, started=False)) == (503, "unhealthy: starting\n")
    assert judge(Snapshot(role=role, workers=8, stopping=True)) == (503, "unhealthy: shutting down\n")


@pytest.mark.parametrize("role", ["run", "poll"])
def test_a_poller_that_ended_is_unhealthy_with_how_it_ended(role: Role) -> None:
    """The poller task ended (fatal polling, a bug): 503 naming the kind."""
    status, body = judge(Snapshot(role=role, workers=8, poller_ended="FatalPollingError"))
    assert (status, body) == (503, "unhealthy: the poller stopped (FatalPollingError)\n")


@pytest.mark.parametrize("role", ["run", "poll"])
def test_polling_that_fails_for_the_bound_or_longer_is_unhealthy(role: Role) -> None:
    """A failure streak shorter than the bound is tolerated; at the bound it is 503 with the last kind."""
    failing = Snapshot(role=role, workers=8, failing_since=1000.0, last_failure="TransientError")
    assert judge(failing, now=1000.0 + BOUND_S - 0.1)[0] == 200
    assert judge(failing, now=1000.0 + BOUND_S) == (
        503,
        "unhealthy: getUpdates has been failing for 60 s (last: TransientError)\n",
    )


def test_a_work_process_ignores_polling_state() -> None:
    """``work`` has no poller: poll failures and a stopped poller are not its business."""
    snapshot = Snapshot(role="work", workers=2, poller_ended="FatalPollingError", failing_since=0.0)
    assert judge(snapshot) == (200, "ok: 2 workers\n")


def test_a_standby_poller_is_healthy_and_says_so() -> None:
    """A ``poll`` process waiting for the lease does its job: 200, and the body says it stands by."""
    snapshot = Snapshot(role="poll", standby=True, failing_since=0.0, last_failure="Conflict")
    assert judge(snapshot) == (200, "ok: standby, waiting for the poller lease\n")
    assert judge(Snapshot(role="run", workers=3, standby=True)) == (
        200,
        "ok: standby, waiting for the poller lease, 3 workers\n",
    )


@pytest.mark.parametrize("role", ["run", "work"])
def test_a_dead_worker_is_unhealthy(role: Role) -> None:
    """A worker task that ended: 503 naming it; a ``poll`` process has no workers to lose."""
    snapshot = Snapshot(role=role, workers=8, dead_workers=("worker-3 (RuntimeError)",))
    assert judge(snapshot) == (503, "unhealthy: worker-3 (RuntimeError) ended\n")


def test_every_reason_is_given_and_redis_counts_for_every_role() -> None:
    """Several problems: all of them, in one line; Redis not answering is one for any role."""
    snapshot = Snapshot(
        role="run",
        workers=8,
        poller_ended="cancelled",
        dead_workers=("worker-0 (cancelled)",),
        backend_error="TimeoutError",
    )
    assert judge(snapshot) == (
        503,
        "unhealthy: the poller stopped (cancelled); worker-0 (cancelled) ended; "
        "Redis does not answer (TimeoutError)\n",
    )
    assert judge(Snapshot(role="poll", backend_error="ConnectionError"))[0] == 503


def test_a_poll_status_streak_starts_at_the_first_failure_and_ends_at_a_success() -> None:
    """``failing_since`` is the first failure of the streak; a success clears it."""
    status = PollStatus()
    status.failed("TransientError", now=10.0)
    status.failed("RetryAfter", now=20.0)
    assert (status.failing_since, status.last_failure) == (10.0, "RetryAfter")
    status.succeeded()
    assert (status.failing_since, status.last_failure) == (None, None)
