"""Transfer progress: one separate message, edited with percent, bytes and speed.

Nothing is shown for a transfer that ends within ``delay_s``; after that one message is sent and
edited at most every ``interval_s`` (Telegram allows about one message per second per chat, and
edits count), and a last edit says 100 % (or where it stopped) before the outcome is replied.
Progress is decoration: its failures are logged and never fail a save.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog

from tgs3bot.interfaces import Platform
from tgs3bot.utils import human_size

log = structlog.get_logger(__name__)

PROGRESS_DELAY_S = 2.0
PROGRESS_INTERVAL_S = 2.0


class TransferMeter:
    """Counts the bytes flowing through a stream."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    async def count(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Pass the chunks on, counting them."""
        async for chunk in chunks:
            self.done += len(chunk)
            yield chunk


def progress_text(name: str, done: int, total: int | None, elapsed_s: float, *, stopped: bool = False) -> str:
    """``Saving «a.pdf»: 45 % (6.8 MiB of 15.0 MiB, 2.3 MiB/s)``."""
    speed = f"{human_size(int(done / elapsed_s))}/s" if elapsed_s > 0 else "…"
    amount = f"{human_size(done)} of {human_size(total)}" if total else human_size(done)
    percent = f"{min(100, done * 100 // total)} %" if total else "…"
    verb = "Saving stopped at" if stopped else "Saving"
    return f"{verb} «{name}»: {percent} ({amount}, {speed})"


class ProgressReporter:
    """Shows a meter's progress in a chat while a transfer runs (see the module docstring)."""

    def __init__(
        self,
        platform: Platform,
        chat_id: int,
        name: str,
        meter: TransferMeter,
        *,
        delay_s: float = PROGRESS_DELAY_S,
        interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self._platform = platform
        self._chat_id = chat_id
        self._name = name
        self._meter = meter
        self._delay_s = delay_s
        self._interval_s = interval_s
        self._finished = asyncio.Event()
        self._ok = False
        self.message_id: int | None = None

    def _text(self) -> str:
        meter = self._meter
        elapsed = time.monotonic() - meter.started
        return progress_text(
            self._name, meter.done, meter.total, elapsed, stopped=self._finished.is_set() and not self._ok
        )

    async def _until_finished(self, timeout_s: float) -> bool:
        """Wait for the end of the transfer, at most ``timeout_s``; True if it ended."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), timeout_s)
        return self._finished.is_set()

    async def run(self) -> None:
        """Report until ``finish``; the last edit happens before ``finish`` returns."""
        if await self._until_finished(self._delay_s):
            return  # short transfers show no progress at all
        self.message_id = await self._platform.send_text(self._chat_id, self._text())
        if self.message_id is None:
            return
        shown, shown_at = "", time.monotonic()
        while not await self._until_finished(self._interval_s):
            text = self._text()
            if text != shown:  # an identical edit is a 400 "message is not modified"
                await self._platform.edit_text(self._chat_id, self.message_id, text)
                shown, shown_at = text, time.monotonic()
        # The last edit keeps the pace too: Telegram counts edits against the chat's limit.
        await asyncio.sleep(max(0.0, shown_at + self._interval_s - time.monotonic()))
        await self._platform.edit_text(self._chat_id, self.message_id, self._text())

    async def finish(self, *, ok: bool) -> None:
        """Mark the transfer ended (``ok``: complete, so the meter shows 100 %)."""
        self._ok = ok
        if ok and self._meter.total is None:
            self._meter.total = self._meter.done
        self._finished.set()


@contextlib.asynccontextmanager
async def reporting(
    platform: Platform, chat_id: int, name: str, meter: TransferMeter, **timing: float
) -> AsyncIterator[ProgressReporter]:
    """Run a ``ProgressReporter`` around a transfer; its last edit lands before the block's end."""
    reporter = ProgressReporter(platform, chat_id, name, meter, **timing)
    task = asyncio.create_task(reporter.run(), name=f"progress-{chat_id}")
    try:
        yield reporter
    except asyncio.CancelledError:
        task.cancel()
        raise
    except BaseException:
        await _close(reporter, task, ok=False)
        raise
    await _close(reporter, task, ok=True)


async def _close(reporter: ProgressReporter, task: asyncio.Task[None], *, ok: bool) -> None:
    await reporter.finish(ok=ok)
    try:
        await task
    except Exception:
        log.warning("progress_failed", exc_info=True)
