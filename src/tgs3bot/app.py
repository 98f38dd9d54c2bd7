"""The composition root: builds the parts, runs them, and owns the one shutdown order.

One process serves every configured platform (Telegram, VK): a poller each, and one queue, worker
pool, router, storage and state for all of them (SPEC §6).

Start: run each platform's start checks (Telegram: the token by getMe, deleteWebhook keeping
pending updates; VK: the token, the community and its Long Poll settings), check the bucket
(head_bucket), open the state and the queue (which brings back what the journal kept from an
earlier run), then start a poller per platform and the workers.

Stop (SIGTERM/SIGINT only set an event; fatal polling, 401 or a lasting 409, takes the same path):
1. cancel the pollers (their long polls are abandoned; everything taken is already journaled);
2. let the workers drain the queue, for at most ``shutdown_timeout`` seconds;
3. cancel the workers (on a timeout, transfers in flight abort and their users are told that the
   bot will save the file when it is back: the unfinished updates stay in the journal);
4. confirm what each poller took with one last poll from its offset (timeout=0), so a restart is
   not sent it again (Telegram: getUpdates; VK: the ts saved as its cursor); not for a platform
   whose polling was fatal: it would refuse that call too;
5. close the queue, the state, S3 and the platforms' sessions (the exit stack).

Exit codes: 0 after a clean drain; 1 when the drain timed out or polling or a worker died (a
supervisor should restart the bot); start-up errors raise ``StartupError`` to the CLI.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from typing import Literal

import structlog

from tgs3bot import replies
from tgs3bot.backends import Backends, open_backends
from tgs3bot.config import BackoffConfig, Settings, WorkerConfig
from tgs3bot.context import Context
from tgs3bot.errors import FatalPollingError, PlatformError
from tgs3bot.interfaces import Platform, StateStore, UpdateQueue
from tgs3bot.monitoring import start_monitoring, watch
from tgs3bot.platforms.configured import LateCursors, open_platforms, policy_for
from tgs3bot.poller import POLL_TIMEOUT_S, Poller
from tgs3bot.router import build_router
from tgs3bot.storage import S3Storage
from tgs3bot.utils import log_exceptions
from tgs3bot.worker import Worker

log = structlog.get_logger(__name__)

Role = Literal["run", "poll", "work"]
WORKER_CANCEL_TIMEOUT_S = 10  # cancelled transfers abort their uploads and tell their users


class App:
    """The bot: ``await App(settings).run()`` returns the process exit code.

    ``role``: ``run`` polls and works; with Redis, ``poll`` only polls and ``work`` only works.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        role: Role = "run",
        backoff: BackoffConfig | None = None,
        state: StateStore | None = None,
        queue: UpdateQueue | None = None,
        poll_timeout_s: int = POLL_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.role = role
        self.backoff = backoff or BackoffConfig()
        self.state = state  # None: from the settings (the SQLite file, or Redis)
        self.queue = queue  # None: from the settings (ChatQueue journaled in the file, or Redis)
        self.poll_timeout_s = poll_timeout_s
        self.stop_requested = asyncio.Event()

    def request_stop(self) -> None:
        """Begin the graceful shutdown (what SIGTERM and SIGINT do)."""
        self.stop_requested.set()

    async def run(self) -> int:
        """Start, serve until stopped or broken, shut down; return the exit code."""
        s = self.settings
        async with AsyncExitStack() as stack:
            await start_monitoring(stack, s, self.role)  # first in, so the last to close
            cursors = LateCursors()
            platforms = await open_platforms(stack, s, backoff=self.backoff, cursors=cursors)
            worker = None if self.role == "poll" else await self._worker(stack, platforms)
            backends = worker.backends if worker else await open_backends(stack, s, queue=self.queue)
            cursors.state = backends.state
            pollers = [] if self.role == "work" else [self._poller(p, backends) for p in platforms]
            for poller in pollers:
                await _register_commands(poller.platform)
            stack.callback(self._remove_signal_handlers)
            self._install_signal_handlers()
            log.info(
                "bot_started",
                role=self.role,
                platforms=[p.name for p in platforms],
                backend="sqlite" if s.redis_url is None else "redis",
                # Telegram's @username, for the operator; no other platform has one to log.
                bot_username=next((u for p in platforms if (u := getattr(p, "username", None))), None),
                bucket=s.s3_bucket,
                workers=s.concurrent_workers if worker else 0,
                queue_size=s.queue_size,
                restored=len(backends.queue.unfinished()),
                event_loop=type(asyncio.get_running_loop()).__module__.partition(".")[0],
            )
            return await self._serve(backends, pollers, worker)
        raise AssertionError("unreachable")  # pragma: no cover (mypy cannot see the return above)

    def _poller(self, platform: Platform, backends: Backends) -> Poller:
        return Poller(platform, backends.queue, backoff=self.backoff, poll_timeout_s=self.poll_timeout_s)

    async def _worker(self, stack: AsyncExitStack, platforms: list[Platform]) -> _Working:
        """S3, the state and the queue, and the worker pool over them (a Context per platform)."""
        s = self.settings
        storage = await stack.enter_async_context(_storage(s))
        await storage.check_bucket()
        await storage.check_conditional_writes()  # TGS3BOT_S3_CONDITIONAL_WRITES; "auto" probes the store
        backends = await open_backends(stack, s, state=self.state, queue=self.queue)
        contexts = {
            p.name: Context(p, storage, backends.state, policy_for(s, p.name), key_locks=backends.key_locks)
            for p in platforms
        }
        pool = Worker(backends.queue, build_router(), contexts, WorkerConfig(s.concurrent_workers))
        return _Working(pool, backends)

    async def _serve(self, backends: Backends, pollers: list[Poller], worker: _Working | None) -> int:
        polls = {self._start_polling(poller, backends): poller for poller in pollers}
        workers = worker.pool.start() if worker else []
        stop_task = asyncio.create_task(self.stop_requested.wait(), name="stop-signal")
        watch(list(polls), workers, backends, self.stop_requested)  # for /healthz
        background = {stop_task, *workers, *polls}
        done, _ = await asyncio.wait(background, return_when=asyncio.FIRST_COMPLETED)
        fatal = [task for task in done if task in polls and isinstance(task.exception(), FatalPollingError)]
        if fatal:
            # Polling cannot go on: finish what was taken (it stays queued if time runs out); the
            # other platforms' pollers stop as on SIGTERM.
            await _cancel(stop_task, *(task for task in polls if task not in fatal))
            confirms = self._confirms(backends, [p for t, p in polls.items() if t not in fatal])
            await self._drain(backends.queue, worker, workers, confirms)
            fatal[0].result()  # re-raises: the CLI prints the one error line and exits 1
        if stop_task not in done:
            # A poller or a worker ended on its own: never stay alive without polling or working.
            await _cancel(*background)
            crashed = done.pop()
            log.critical("background_task_ended", task=crashed.get_name())
            crashed.result()  # re-raises its exception
            return 1
        await _cancel(*polls)
        return await self._drain(backends.queue, worker, workers, self._confirms(backends, pollers))

    def _start_polling(self, poller: Poller, backends: Backends) -> asyncio.Task[None]:
        lease = backends.leases.get(poller.platform.name)
        polling = log_exceptions(poller.run)() if lease is None else log_exceptions(poller.run_leased)(lease)
        return asyncio.create_task(polling, name=f"poller-{poller.platform.name}")

    @staticmethod
    def _confirms(backends: Backends, pollers: list[Poller]) -> list[tuple[Platform, int | None]]:
        # With a lease the next holder's first poll confirms: a confirming call now could meet it.
        return [(p.platform, None if backends.leases else p.offset) for p in pollers]

    async def _drain(
        self,
        queue: UpdateQueue,
        worker: _Working | None,
        workers: list[asyncio.Task[None]],
        confirms: list[tuple[Platform, int | None]],
    ) -> int:
        """Finish the queued work within the shutdown timeout; 0 if all of it was finished."""
        code = 0
        if worker is not None:
            log.info("shutdown_started", unfinished=len(queue.unfinished()))
            try:
                await asyncio.wait_for(queue.drain(), self.settings.shutdown_timeout)
            except TimeoutError:
                code = await self._abandon(queue, worker.pool, workers)
            else:
                await _cancel(*workers)
        # Whatever is unfinished is kept (journal, Redis): confirming it to the platform loses nothing.
        for platform, offset in confirms:
            await _confirm(platform, offset)
        log.info("shutdown_complete", exit_code=code)
        return code

    async def _abandon(self, queue: UpdateQueue, worker: Worker, workers: list[asyncio.Task[None]]) -> int:
        """The drain ran out of time: abort what is in flight; the rest waits for the next start.

        Cancelled transfers abort their uploads and tell their users the bot will save the file
        when it is back; every unfinished update stays queued (journal or Redis) and runs again.
        """
        log.error(
            "shutdown_timed_out",
            timeout_s=self.settings.shutdown_timeout,
            in_progress=sorted(e.update_id for e in worker.in_progress()),
            kept_update_ids=[e.update_id for e in queue.unfinished()],
        )
        await _cancel(*workers, timeout_s=WORKER_CANCEL_TIMEOUT_S)
        return 1

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("signal_received", signal=sig.name)
        self.request_stop()


def _storage(settings: Settings) -> S3Storage:
    return S3Storage(
        settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        conditional_writes=settings.s3_conditional_writes,
        public_url=settings.s3_public_url,
        link_ttl_s=settings.link_ttl,
    )


@dataclass(frozen=True, slots=True)
class _Working:
    """The worker pool of a ``run`` or ``work`` process, and the backends it uses."""

    pool: Worker
    backends: Backends


async def _register_commands(platform: Platform) -> None:
    """The command menu (setMyCommands); a failure costs only the menu, so it is logged."""
    try:
        await platform.set_commands(replies.COMMANDS)
    except PlatformError as exc:
        log.warning("set_commands_failed", platform=platform.name, error=str(exc))


async def _cancel(*tasks: asyncio.Task[object], timeout_s: float | None = None) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s)


async def _confirm(platform: Platform, offset: int | None) -> None:
    """Tell the platform that everything before ``offset`` is handled (a getUpdates, timeout=0)."""
    if offset is None:
        return
    try:
        await platform.get_updates(offset, timeout_s=0)
    except PlatformError as exc:
        log.warning("confirm_failed", platform=platform.name, offset=offset, error=str(exc))
    else:
        log.info("updates_confirmed", platform=platform.name, offset=offset)
