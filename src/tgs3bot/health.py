"""``/healthz``: whether this process does its job, decided by pure rules over a ``Snapshot``.

What a process must do depends on its role (SPEC §5): ``run`` polls and works, ``poll`` polls (or
stands by while another process holds the poller lease), ``work`` works. The verdict is 503 with
every reason that holds, or 200 with a one-line summary:

- the app has not started its tasks yet (``starting``), or it is shutting down;
- polling (``run``, ``poll``): the poller task ended, or getUpdates has been failing without a
  success for ``max_poll_failure_s`` or longer. A standby waiting for the lease is healthy;
- working (``run``, ``work``): a worker task ended;
- the shared backend (Redis) does not answer.

Reasons name kinds (the bot's error classes), never error texts: those can carry the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["run", "poll", "work"]
POLLING_ROLES: frozenset[Role] = frozenset({"run", "poll"})
WORKING_ROLES: frozenset[Role] = frozenset({"run", "work"})


@dataclass(slots=True)
class PollStatus:
    """How polling goes, kept up to date by the poller's hooks (``metrics.poll_round_trip``)."""

    failing_since: float | None = None  # monotonic time of the first failure since the last success
    last_failure: str | None = None  # the kind of the latest failure
    standby: bool = False  # waiting for the poller lease (another process polls)

    def failed(self, kind: str, now: float) -> None:
        """A getUpdates failed; a streak starts at its first failure."""
        if self.failing_since is None:
            self.failing_since = now
        self.last_failure = kind

    def succeeded(self) -> None:
        """A getUpdates succeeded: any streak is over."""
        self.failing_since = None
        self.last_failure = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the health rules look at, read from the running app (``monitoring``)."""

    role: Role
    started: bool = True  # the app has started its poller and workers
    stopping: bool = False  # a graceful shutdown has begun
    poller_ended: str | None = None  # how the poller task ended (an error's kind), None while it runs
    workers: int = 0
    dead_workers: tuple[str, ...] = ()  # "worker-3 (RuntimeError)"
    failing_since: float | None = None
    last_failure: str | None = None
    standby: bool = False
    backend_error: str | None = None  # why Redis did not answer (its error's kind)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer: healthy or not, and the reasons (or, when healthy, the summary)."""

    healthy: bool
    reasons: tuple[str, ...]

    @property
    def status(self) -> int:
        """The HTTP status: 200 or 503."""
        return 200 if self.healthy else 503

    def body(self) -> str:
        """One line: ``ok: …`` or ``unhealthy: reason; reason``."""
        return ("ok: " if self.healthy else "unhealthy: ") + "; ".join(self.reasons) + "\n"


def verdict(snapshot: Snapshot, *, now: float, max_poll_failure_s: float) -> Verdict:
    """Apply the rules of the module's text to ``snapshot`` at the monotonic time ``now``."""
    if not snapshot.started:
        return Verdict(False, ("starting",))
    if snapshot.stopping:
        return Verdict(False, ("shutting down",))
    problems: list[str] = []
    if snapshot.role in POLLING_ROLES:
        problems += _polling_problems(snapshot, now, max_poll_failure_s)
    if snapshot.role in WORKING_ROLES:
        problems += [f"{worker} ended" for worker in snapshot.dead_workers]
    if snapshot.backend_error is not None:
        problems.append(f"Redis does not answer ({snapshot.backend_error})")
    if problems:
        return Verdict(False, tuple(problems))
    return Verdict(True, _summary(snapshot))


def _polling_problems(snapshot: Snapshot, now: float, max_poll_failure_s: float) -> list[str]:
    if snapshot.poller_ended is not None:
        return [f"the poller stopped ({snapshot.poller_ended})"]
    if snapshot.standby or snapshot.failing_since is None:
        return []
    failing_s = now - snapshot.failing_since
    if failing_s < max_poll_failure_s:
        return []
    return [f"getUpdates has been failing for {failing_s:.0f} s (last: {snapshot.last_failure})"]


def _summary(snapshot: Snapshot) -> tuple[str, ...]:
    parts = []
    if snapshot.role in POLLING_ROLES:
        parts.append("standby, waiting for the poller lease" if snapshot.standby else "polling")
    if snapshot.role in WORKING_ROLES:
        parts.append(f"{snapshot.workers} workers")
    return (", ".join(parts),)
