"""Prometheus metrics of one bot process: a registry the app owns, and one-line hooks for the layers.

The app makes one ``Metrics`` when TGS3BOT_METRICS_PORT is set and binds it for its own tasks
(``bound``: a ContextVar, which every task the app starts inherits, as structlog's bound context
is). So a hook deep in the platform or the storage is one line, ``metrics.s3_error(exc)``, and no
constructor grows an argument. Where nothing is bound (metrics off, unit tests) a hook costs one
ContextVar lookup and does nothing. Several apps in one process count into their own registries.

Label values are bounded: route names of the router, the worker's outcomes, the Bot API's method
names, the bot's error classes and S3's error codes; never an error's text, a user or a chat.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from tgs3bot.health import PollStatus

if TYPE_CHECKING:
    from tgs3bot.monitoring import Watched

# An idle long poll lasts its timeout (60 s) plus the network; a busy bot's polls return at once.
POLL_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 55, 60, 65, 75)
HANDLING_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
SAME_FILE_HOWS = ("copied", "already")  # tgs3bot_same_file_saves_total's label values
MAX_LABEL_LENGTH = 64  # an S3-compatible store may invent error codes; keep them short

_current: ContextVar[Metrics | None] = ContextVar("tgs3bot_metrics", default=None)


class Metrics:
    """The app's registry and its instruments (names and labels are in the README)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, …
        PlatformCollector(registry=r)  # python_info
        self.updates = Counter(
            "tgs3bot_updates", "Updates handled, by route and outcome", ["route", "outcome"], registry=r
        )
        self.update_duration = Histogram(
            "tgs3bot_update_duration_seconds",
            "Time from a worker taking an update to the end of its handling",
            ["route"],
            buckets=HANDLING_BUCKETS_S,
            registry=r,
        )
        self.queue_depth = Gauge(
            "tgs3bot_queue_depth", "Updates taken and not finished: waiting or in progress", registry=r
        )
        self.queue_backlog = Gauge(
            "tgs3bot_queue_backlog", "Updates taken and waiting beyond the queue's bounds", registry=r
        )
        self._add_transfers(r)
        self._add_calls(r)
        self.polling = PollStatus()
        self.watched: Watched | None = None  # the app's tasks and backends, for /healthz

    def _add_transfers(self, r: CollectorRegistry) -> None:
        """Documents: in flight, saved, and saved without a download."""
        self.transfers = Gauge("tgs3bot_transfers_in_flight", "Documents being transferred", registry=r)
        self.saved_bytes = Counter("tgs3bot_saved_bytes", "Bytes of documents saved", registry=r)
        self.saved_documents = Counter("tgs3bot_saved_documents", "Documents saved", registry=r)
        self.same_file_saves = Counter(
            "tgs3bot_same_file_saves",
            "Documents the bucket held already: copied there, or already under their name",
            ["how"],
            registry=r,
        )
        for how in SAME_FILE_HOWS:  # both series from the start, at 0
            self.same_file_saves.labels(how)

    def _add_calls(self, r: CollectorRegistry) -> None:
        """The outside calls: Bot API and S3 failures, and getUpdates round trips."""
        self.bot_api_errors = Counter(
            "tgs3bot_bot_api_errors", "Failed Bot API calls", ["method", "kind"], registry=r
        )
        self.s3_errors = Counter("tgs3bot_s3_errors", "Failed S3 calls", ["operation", "kind"], registry=r)
        self.poll_duration = Histogram(
            "tgs3bot_poll_duration_seconds",
            "Round trips of successful getUpdates calls",
            buckets=POLL_BUCKETS_S,
            registry=r,
        )


@contextmanager
def bound(metrics: Metrics) -> Iterator[Metrics]:
    """Count into ``metrics`` in this task and in every task started from it while the block runs."""
    token = _current.set(metrics)
    try:
        yield metrics
    finally:
        _current.reset(token)


def current() -> Metrics | None:
    """The metrics bound here, if any."""
    return _current.get()


def watch(watched: Watched) -> None:
    """The app's tasks and backends are running: /healthz watches them from now on."""
    if (m := _current.get()) is not None:
        m.watched = watched


def update_handled(route: str, outcome: str, duration_s: float) -> None:
    """A worker finished an update (its ``update_handled`` log line)."""
    if (m := _current.get()) is not None:
        m.updates.labels(route, outcome).inc()
        m.update_duration.labels(route).observe(duration_s)


def document_saved(size: int) -> None:
    """A document was uploaded into the bucket (``size`` bytes written)."""
    if (m := _current.get()) is not None:
        m.saved_documents.inc()
        m.saved_bytes.inc(size)


def same_file_saved(how: str) -> None:
    """A document the bucket held already was saved without a download: ``copied`` or ``already``.

    Not a ``document_saved``: that one counts uploads and the bytes they wrote.
    """
    if (m := _current.get()) is not None:
        m.same_file_saves.labels(how).inc()


@asynccontextmanager
async def transfer_in_flight() -> AsyncIterator[None]:
    """Count a transfer (getFile, download, upload) while the block runs."""
    m = _current.get()
    if m is not None:
        m.transfers.inc()
    try:
        yield
    finally:
        if m is not None:
            m.transfers.dec()


def bot_api_error(kind: type[Exception], method: str) -> None:
    """A Bot API call failed; ``kind`` is the bot's error class (``errors``) it became."""
    if (m := _current.get()) is not None:
        m.bot_api_errors.labels(method, kind.__name__).inc()


def s3_error(exc: Exception) -> None:
    """An S3 call failed (after botocore's retries): kind is S3's error code or botocore's class."""
    if (m := _current.get()) is None:
        return
    response = getattr(exc, "response", None)  # botocore's ClientError
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    kind = str(code) if code else type(exc).__name__
    operation = str(getattr(exc, "operation_name", "") or "unknown")
    m.s3_errors.labels(operation[:MAX_LABEL_LENGTH], kind[:MAX_LABEL_LENGTH]).inc()


@contextmanager
def poll_round_trip() -> Iterator[None]:
    """Time one getUpdates; a failure starts or continues the failure streak /healthz looks at."""
    m = _current.get()
    if m is None:
        yield
        return
    started = time.monotonic()
    try:
        yield
    except Exception as exc:  # cancellation (a stop) is no failure
        m.polling.failed(type(exc).__name__, time.monotonic())
        raise
    m.polling.succeeded()
    m.poll_duration.observe(time.monotonic() - started)


@contextmanager
def standing_by() -> Iterator[None]:
    """The poller waits for the poller lease: healthy, and not failing (its streak is over)."""
    m = _current.get()
    if m is not None:
        m.polling.standby = True
    try:
        yield
    finally:
        if m is not None:
            m.polling.standby = False
            m.polling.succeeded()
