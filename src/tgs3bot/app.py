"""The composition root: builds the parts, runs them, and owns the one shutdown order.

Start: check the token (getMe) and the bucket (head_bucket), delete any webhook (keeping pending
updates), open the state and the queue (which brings back what the journal kept from an earlier
run), then start one poller and the workers.

Stop (SIGTERM/SIGINT only set an event; fatal polling, 401 or a lasting 409, takes the same path):
1. cancel the poller (its long poll is abandoned; everything it took is already journaled);
2. let the workers drain the queue, for at most ``shutdown_timeout`` seconds;
3. cancel the workers (on a timeout, transfers in flight abort and their users are told that the
   bot will save the file when it is back: the unfinished updates stay in the journal);
4. confirm what was taken with one last getUpdates (offset, timeout=0), so a restart is not sent
   it again (not after fatal polling: Telegram would refuse that call too);
5. close the queue, the state, S3 and the Bot API session (the exit stack).

Exit codes: 0 after a clean drain; 1 when the drain timed out or polling or a worker died (a
supervisor should restart the bot); start-up errors raise ``StartupError`` to the CLI.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import structlog

from tgs3bot import replies
from tgs3bot.backends import Backends, open_backends
from tgs3bot.config import BackoffConfig, Settings, WorkerConfig
from tgs3bot.context import Context, Policy
from tgs3bot.errors import FatalPollingError, PlatformError
from tgs3bot.interfaces import Platform, StateStore, UpdateQueue
from tgs3bot.localfiles import LocalFiles
from tgs3bot.poller import POLL_TIMEOUT_S, Poller
from tgs3bot.router import build_router
from tgs3bot.storage import S3Storage
from tgs3bot.telegram import TelegramPlatform
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
            platform = TelegramPlatform(
                s.telegram_token.get_secret_value(),
                api_url=s.telegram_api_url,
                local_files=_local_files(s),
                proxy=s.telegram_proxy,
                backoff=self.backoff,
            )
            stack.push_async_callback(platform.close)
            await platform.start()
            worker = None if self.role == "poll" else await self._worker(stack, platform)
            backends = worker.backends if worker else await open_backends(stack, s, queue=self.queue)
            poller = None
            if self.role != "work":
                await _register_commands(platform)
                poller = Poller(
                    platform, backends.queue, backoff=self.backoff, poll_timeout_s=self.poll_timeout_s
                )
            stack.callback(self._remove_signal_handlers)
            self._install_signal_handlers()
            log.info(
                "bot_started",
                role=self.role,
                backend="sqlite" if s.redis_url is None else "redis",
                bot_username=platform.username,
                bucket=s.s3_bucket,
                workers=s.concurrent_workers if worker else 0,
                queue_size=s.queue_size,
                restored=len(backends.queue.unfinished()),
                event_loop=type(asyncio.get_running_loop()).__module__.partition(".")[0],
            )
            return await self._serve(platform, backends, poller, worker)
        raise AssertionError("unreachable")  # pragma: no cover (mypy cannot see the return above)

    async def _worker(self, stack: AsyncExitStack, platform: Platform) -> _Working:
        """S3, the state and the queue, and the worker pool over them."""
        s = self.settings
        storage = await stack.enter_async_context(_storage(s))
        await storage.check_bucket()
        await storage.check_conditional_writes()  # TGS3BOT_S3_CONDITIONAL_WRITES; "auto" probes the store
        backends = await open_backends(stack, s, state=self.state, queue=self.queue)
        policy = Policy(allowed_users=s.allowed_users, download_limit=s.download_limit)
        ctx = Context(platform, storage, backends.state, policy, key_locks=backends.key_locks)
        pool = Worker(backends.queue, build_router(), ctx, WorkerConfig(s.concurrent_workers))
        return _Working(pool, backends)

    async def _serve(
        self, platform: Platform, backends: Backends, poller: Poller | None, worker: _Working | None
    ) -> int:
        poll_task = None
        if poller is not None:
            lease = backends.lease
            polling = (
                log_exceptions(poller.run)() if lease is None else log_exceptions(poller.run_leased)(lease)
            )
            poll_task = asyncio.create_task(polling, name="poller")
        workers = worker.pool.start() if worker else []
        stop_task = asyncio.create_task(self.stop_requested.wait(), name="stop-signal")
        background = {stop_task, *workers, *([poll_task] if poll_task else [])}
        done, _ = await asyncio.wait(background, return_when=asyncio.FIRST_COMPLETED)
        if poll_task in done and isinstance(poll_task.exception(), FatalPollingError):
            # Polling cannot go on: finish what was taken (it stays queued if time runs out).
            await _cancel(stop_task)
            await self._drain(platform, backends.queue, worker, workers, confirm_offset=None)
            poll_task.result()  # re-raises: the CLI prints the one error line and exits 1
        if stop_task not in done:
            # The poller or a worker ended on its own: never stay alive without polling or working.
            await _cancel(*background)
            crashed = done.pop()
            log.critical("background_task_ended", task=crashed.get_name())
            crashed.result()  # re-raises its exception
            return 1
        if poll_task is not None:
            await _cancel(poll_task)
        # With a lease the next holder's first poll confirms: a confirming call now could meet it.
        offset = poller.offset if poller is not None and backends.lease is None else None
        return await self._drain(platform, backends.queue, worker, workers, confirm_offset=offset)

    async def _drain(
        self,
        platform: Platform,
        queue: UpdateQueue,
        worker: _Working | None,
        workers: list[asyncio.Task[None]],
        confirm_offset: int | None,
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
        # Whatever is unfinished is kept (journal, Redis): confirming it to Telegram loses nothing.
        await _confirm(platform, confirm_offset)
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


def _local_files(settings: Settings) -> LocalFiles | None:
    if not settings.telegram_local_mode:
        return None
    server_dir = PurePosixPath(settings.telegram_local_server_dir)
    return LocalFiles(server_dir=server_dir, bot_dir=settings.telegram_local_dir or Path(server_dir))


async def _register_commands(platform: Platform) -> None:
    """The command menu (setMyCommands); a failure costs only the menu, so it is logged."""
    try:
        await platform.set_commands(replies.COMMANDS)
    except PlatformError as exc:
        log.warning("set_commands_failed", error=str(exc))


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
        log.warning("confirm_failed", offset=offset, error=str(exc))
    else:
        log.info("updates_confirmed", offset=offset)
