"""Transfer progress: one separate message, edited with percent, bytes and speed.

Nothing is shown for a transfer that ends within ``delay_s``; after that one message is sent and
edited at most every ``interval_s`` (Telegram allows about one message per second per chat, and
edits count). The percentage counts the bytes taken from the download; they reach the bucket
later (a small file goes up in one put once it is in, a big one trails by a few parts), so once
the download is in the text says it is uploading and stays under 100 % until the put has finished.

Progress is decoration and never holds up a save. The message and its edits run in their own
task, which is cancelled when the transfer ends: an edit waiting out a 429 is dropped, never waited
for. One last edit (100 %, or where it stopped) is then tried at once and given at most
``FINAL_EDIT_WAIT_S``; it is not paced like the others, since the outcome reply follows it at once
anyway. Failures are logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Literal

import structlog

from tgs3bot.interfaces import Platform
from tgs3bot.utils import human_size

log = structlog.get_logger(__name__)

PROGRESS_DELAY_S = 2.0
PROGRESS_INTERVAL_S = 2.0
FINAL_EDIT_WAIT_S = 2.0  # a round trip to Telegram; a 429 asks for seconds to minutes, not waited

Stage = Literal["downloading", "uploading", "saved", "stopped"]


class TransferMeter:
    """Counts the bytes flowing through a stream; its clock starts when it is made.

    Make it once the transfer can start (the key's lock is held), so that time spent waiting for
    another save of the same name does not count against the speed.
    """

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.downloaded = False  # the stream has ended: what is left is the upload
        self.started = time.monotonic()

    async def count(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Pass the chunks on, counting them; note when the stream ends."""
        async for chunk in chunks:
            self.done += len(chunk)
            yield chunk
        self.downloaded = True

    def elapsed_s(self) -> float:
        """Seconds since the meter was made."""
        return time.monotonic() - self.started


def progress_text(
    name: str, done: int, total: int | None, elapsed_s: float, *, stage: Stage = "downloading"
) -> str:
    """``Saving «a.pdf»: 45 % (6.8 MiB of 15.0 MiB, 2.3 MiB/s)``; 100 % only once ``saved``."""
    speed = f"{human_size(int(done / elapsed_s))}/s" if elapsed_s > 0 else "…"
    amount = f"{human_size(done)} of {human_size(total)}" if total else human_size(done)
    ceiling = 100 if stage == "saved" else 99  # the bytes are not in the bucket before the put ends
    percent = f"{min(ceiling, done * 100 // total)} %" if total else "…"
    verb = "Saving stopped at" if stage == "stopped" else "Saving"
    tail = ", uploading to the bucket…" if stage == "uploading" else ""
    return f"{verb} «{name}»: {percent} ({amount}, {speed}){tail}"


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
        final_wait_s: float = FINAL_EDIT_WAIT_S,
    ) -> None:
        self._platform = platform
        self._chat_id = chat_id
        self._name = name
        self._meter = meter
        self._delay_s = delay_s
        self._interval_s = interval_s
        self.final_wait_s = final_wait_s
        self._ended: Stage | None = None
        self._shown = ""
        self.message_id: int | None = None

    def _text(self) -> str:
        meter = self._meter
        stage = self._ended or ("uploading" if meter.downloaded else "downloading")
        return progress_text(self._name, meter.done, meter.total, meter.elapsed_s(), stage=stage)

    async def run(self) -> None:
        """Send the message after ``delay_s``, then edit it every ``interval_s``, until cancelled."""
        try:
            await asyncio.sleep(self._delay_s)  # short transfers show no progress at all
            text = self._text()
            self.message_id = await self._platform.send_text(self._chat_id, text)
            self._shown = text
            while self.message_id is not None:
                await asyncio.sleep(self._interval_s)
                await self._edit()
        except Exception:
            log.warning("progress_failed", exc_info=True)

    async def _edit(self) -> None:
        text = self._text()
        if self.message_id is None or text == self._shown:  # an identical edit is a 400 "not modified"
            return
        await self._platform.edit_text(self._chat_id, self.message_id, text)
        self._shown = text

    async def finish(self, *, ok: bool) -> None:
        """Show the end of the transfer (``ok``: 100 %; else where it stopped), if anything is shown."""
        self._ended = "saved" if ok else "stopped"
        if ok and self._meter.total is None:
            self._meter.total = self._meter.done
        await self._edit()


@contextlib.asynccontextmanager
async def reporting(
    platform: Platform, chat_id: int, name: str, meter: TransferMeter, **timing: float
) -> AsyncIterator[ProgressReporter]:
    """Run a ``ProgressReporter`` around a transfer; leaving the block never waits on Telegram for long."""
    reporter = ProgressReporter(platform, chat_id, name, meter, **timing)
    task = asyncio.create_task(reporter.run(), name=f"progress-{chat_id}")
    try:
        yield reporter
    except asyncio.CancelledError:
        task.cancel()  # a shutdown: no last edit
        raise
    except BaseException:
        await _close(reporter, task, ok=False)
        raise
    await _close(reporter, task, ok=True)


async def _close(reporter: ProgressReporter, task: asyncio.Task[None], *, ok: bool) -> None:
    """Drop the pending edits, then try the last one, for at most ``final_wait_s``."""
    task.cancel()
    last = asyncio.create_task(_last_edit(reporter, task, ok=ok), name=task.get_name())
    try:
        await asyncio.wait({last}, timeout=reporter.final_wait_s)
    finally:
        if not last.done():
            log.info("progress_last_edit_dropped", message_id=reporter.message_id)
            last.cancel()


async def _last_edit(reporter: ProgressReporter, periodic: asyncio.Task[None], *, ok: bool) -> None:
    await asyncio.wait({periodic})  # cancelled already: it ends at once, and its edit never lands after ours
    try:
        await reporter.finish(ok=ok)
    except Exception:
        log.warning("progress_failed", exc_info=True)
