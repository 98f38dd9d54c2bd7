"""Transfer progress: one separate message, edited with percent and speed, throttled, ending at 100 %."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wire import Call
from tests.helpers import greet, message_id_of, object_body, to_chat
from tgs3bot.progress import ProgressReporter, Stage, TransferMeter, progress_text, reporting
from tgs3bot.storage import S3Storage
from tgs3bot.storage.base import SaveResult

MiB = 1024 * 1024
# The bot paces edits 2 s apart (PROGRESS_INTERVAL_S); the fake timestamps them when they arrive,
# so one call's delivery delay on a loaded machine shortens a gap. A lower bound with that slack
# still catches a throttle that has gone (or halved); the exact pace is checked on a recording
# platform below, where the times are taken at the calls themselves.
MIN_EDIT_GAP_S = 1.5
SAVED_TIMEOUT_S = 60  # a deadline for a hang, not an expectation


async def send_and_wait_saved(telegram: FakeTelegram, chat_id: int, doc: dict[str, object]) -> list[Call]:
    """Send one document and return every call the bot made from then until it was saved."""
    since = len(telegram.calls)
    telegram.add_update(updates.message(chat_id, document=doc))
    await telegram.wait_for_text(chat_id, "[document has been saved]", timeout=SAVED_TIMEOUT_S)
    return telegram.calls[since:]


async def test_a_slow_transfer_shows_a_throttled_progress_message_ending_at_100(
    telegram: FakeTelegram, bot: RunningBot
) -> None:
    """A ~4.5 s transfer gets one extra message, edited with percent every ~2 s or slower, 100 % last."""
    chat = 1
    await greet(telegram, chat)
    doc = telegram.add_file(os.urandom(15 * MiB), file_name="slow.bin", bytes_per_s=3.4 * MiB)
    calls = await send_and_wait_saved(telegram, chat, doc)

    sends = [c for c in calls if to_chat(c, "sendMessage", chat)]
    progress = [c for c in sends if "[document" not in c.params["text"]]
    assert len(progress) == 1, [c.params["text"] for c in sends]
    assert "[document]" in sends[0].params["text"] and "[document has been saved]" in sends[-1].params["text"]
    progress_id = message_id_of(telegram, progress[0])

    all_edits = [c for c in calls if c.method == "editMessageText"]
    assert all_edits, "the progress message was never edited"
    assert {str(c.params["message_id"]) for c in all_edits} == {str(progress_id)}  # not the [document] one
    assert all(c.ok for c in all_edits), [c.describe() for c in all_edits]
    assert all("%" in c.params["text"] for c in all_edits), [c.params["text"] for c in all_edits]
    assert "100 %" in all_edits[-1].params["text"]
    assert calls.index(all_edits[-1]) < calls.index(sends[-1])  # the final edit lands before "saved"
    # The last edit is made at once when the transfer ends (the outcome follows it anyway).
    times = [progress[0].at, *(c.at for c in all_edits[:-1])]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    assert not gaps or min(gaps) >= MIN_EDIT_GAP_S, (
        f"progress send/edits {gaps} s apart: {[c.describe() for c in all_edits]}"
    )


async def test_a_fast_transfer_shows_no_progress(telegram: FakeTelegram, bot: RunningBot) -> None:
    """A document saved within a couple of seconds gets only [document] and the outcome, no progress."""
    chat = 2
    await greet(telegram, chat)
    calls = await send_and_wait_saved(
        telegram, chat, telegram.add_file(os.urandom(50_000), file_name="quick.bin")
    )
    texts = [c.params["text"] for c in calls if to_chat(c, "sendMessage", chat)]
    assert len(texts) == 2 and "[document]" in texts[0] and "[document has been saved]" in texts[1], texts
    assert [c for c in calls if c.method == "editMessageText"] == []


# -- the pure text ---------------------------------------------------------------------------------


def test_progress_text_shows_percent_sizes_and_speed() -> None:
    """Percent of the total, done and total in MiB, and bytes per second over the elapsed time."""
    text = progress_text("a.pdf", int(6.8 * MiB), 15 * MiB, 3.0)
    assert "a.pdf" in text and "45 %" in text
    assert "6.8 MiB" in text and "15.0 MiB" in text and "2.3 MiB/s" in text


@pytest.mark.parametrize(("done", "percent"), [(0, "0 %"), (15 * MiB, "100 %"), (16 * MiB, "100 %")])
def test_progress_text_percent_stays_between_0_and_100(done: int, percent: str) -> None:
    """Nothing done is 0 %, a saved file is 100 %, and a file longer than announced never passes 100 %."""
    stage: Stage = "saved" if done else "downloading"
    assert percent in progress_text("b.bin", done, 15 * MiB, 1.0, stage=stage)


@pytest.mark.parametrize("stage", ["downloading", "uploading"])
def test_progress_text_shows_100_only_once_the_put_has_finished(stage: Stage) -> None:
    """Every byte downloaded is not every byte in the bucket: 99 % until saved, and the upload named."""
    text = progress_text("b.bin", 15 * MiB, 15 * MiB, 1.0, stage=stage)
    assert "99 %" in text and "100 %" not in text
    assert ("uploading" in text) == (stage == "uploading")


def test_progress_text_without_a_known_total_shows_bytes_and_speed_only() -> None:
    """When Telegram gave no file_size there is no percentage to show, only the amount and the speed."""
    text = progress_text("c.bin", 3 * MiB, None, 1.5)
    assert "c.bin" in text and "3.0 MiB" in text and "2.0 MiB/s" in text
    assert "%" not in text


def test_progress_text_at_time_zero_does_not_divide_by_zero() -> None:
    """A report at the very start (no time elapsed) is still a text."""
    assert "0 %" in progress_text("d.bin", 0, 1000, 0.0)


def test_progress_text_says_where_a_transfer_stopped() -> None:
    """A transfer that failed is shown as stopped at its last percentage, not as running."""
    stopped = progress_text("e.bin", 6 * MiB, 15 * MiB, 2.0, stage="stopped")
    assert "stopped" in stopped.lower() and "40 %" in stopped
    assert "stopped" not in progress_text("e.bin", 6 * MiB, 15 * MiB, 2.0).lower()


# -- the reporter's throttle, on a recording platform ----------------------------------------------


class RecordingPlatform:
    """The two Platform methods a ProgressReporter uses, recording when each call happened.

    With ``stuck`` set, every edit hangs (as one waiting out a 429 does) until it is cancelled.
    """

    def __init__(self, *, stuck: bool = False) -> None:
        self.calls: list[tuple[str, float, str]] = []
        self.cancelled: list[str] = []
        self.seen = asyncio.Condition()
        self._stuck = stuck

    async def send_text(self, chat_id: int, text: str, **_: object) -> int:
        self.calls.append(("send", asyncio.get_running_loop().time(), text))
        return 1

    async def edit_text(self, chat_id: int, message_id: int, text: str, **_: object) -> bool:
        self.calls.append(("edit", asyncio.get_running_loop().time(), text))
        await self._changed()
        try:
            if self._stuck:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(text)
            await asyncio.shield(self._changed())
            raise
        return True

    async def _changed(self) -> None:
        async with self.seen:
            self.seen.notify_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checked after every edit and every cancelled edit."""
        async with self.seen:
            await asyncio.wait_for(self.seen.wait_for(predicate), 60)

    async def wait_edits(self, count: int) -> None:
        """Wait until ``count`` edits have been attempted."""
        await self.wait_until(lambda: [k for k, _, _ in self.calls].count("edit") >= count)


async def test_the_periodic_edits_keep_the_interval() -> None:
    """The message and its edits are at least the interval apart (Telegram counts edits per chat)."""
    platform = RecordingPlatform()
    meter = TransferMeter(1000)
    reporter = ProgressReporter(platform, 1, "f.bin", meter, delay_s=0.05, interval_s=0.3)  # type: ignore[arg-type]
    task = asyncio.create_task(reporter.run())
    try:
        for done in (200, 400, 600):
            meter.done = done
            await platform.wait_edits(done // 200)
    finally:
        task.cancel()
    kinds = [kind for kind, _, _ in platform.calls]
    assert kinds == ["send", "edit", "edit", "edit"], platform.calls
    gaps = [round(b[1] - a[1], 3) for a, b in itertools.pairwise(platform.calls)]
    assert min(gaps) >= 0.3 * 0.95, f"send/edits {gaps} s apart with a 0.3 s interval"


async def test_the_end_of_a_transfer_drops_a_stuck_edit_and_never_waits_long_for_the_last() -> None:
    """Leaving ``reporting`` cancels an edit in flight, tries the 100 % edit once, and gives up on it."""
    platform = RecordingPlatform(stuck=True)
    meter = TransferMeter(1000)
    timing = {"delay_s": 0.0, "interval_s": 0.01, "final_wait_s": 0.05}

    async def transfer() -> None:
        async with reporting(platform, 1, "g.bin", meter, **timing):  # type: ignore[arg-type]
            meter.done = 400
            await platform.wait_edits(1)  # a periodic edit hangs, as if waiting out a 429
            meter.done = 1000

    await asyncio.wait_for(transfer(), 60)  # a deadline for a hang, not an expectation
    edits = [text for kind, _, text in platform.calls if kind == "edit"]
    assert len(edits) == 2 and "100 %" in edits[-1], edits
    await platform.wait_until(lambda: len(platform.cancelled) == 2)  # both dropped, none waited for
    assert platform.cancelled == edits


async def test_a_progress_edit_stuck_on_429_never_holds_up_the_outcome(
    telegram: FakeTelegram, bot: RunningBot, s3: Any, bucket: str
) -> None:
    """Edits answered 429 (retry after 30 s) every time: the saved reply comes before any edit is retried."""
    chat = 3
    await greet(telegram, chat)
    telegram.fail("editMessageText", status=429, retry_after=30, times=None)
    hold = asyncio.Event()
    doc = telegram.add_file(os.urandom(200_000), file_name="rate-limited.bin", hold=hold)
    since = len(telegram.calls)
    telegram.add_update(updates.message(chat, document=doc))
    # The transfer is held until a periodic edit has been refused and is waiting out its 30 s.
    await telegram.wait_for_call(lambda c: c.method == "editMessageText", since=since)
    hold.set()
    await telegram.wait_for_text(chat, "[document has been saved]", timeout=SAVED_TIMEOUT_S)
    calls = telegram.calls[since:]
    saved_at = next(n for n, c in enumerate(calls) if "[document has been saved]" in c.params.get("text", ""))
    edits = [c.params["text"] for c in calls[:saved_at] if c.method == "editMessageText"]
    assert len(edits) == len(set(edits)), f"an edit was retried before the outcome: {edits}"
    assert await object_body(s3, bucket, "rate-limited.bin") == telegram.files[doc["file_id"]].content


async def test_progress_stays_under_100_until_the_upload_has_finished(
    telegram: FakeTelegram, bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the download is in, the message says it is uploading; 100 % comes only after the put."""
    chat = 4
    await greet(telegram, chat)
    put_done, release = asyncio.Event(), asyncio.Event()
    real_save = S3Storage.save

    async def slow_put(self: S3Storage, *args: Any, **kwargs: Any) -> SaveResult:
        result = await real_save(self, *args, **kwargs)
        put_done.set()
        await release.wait()  # from the handler's side the upload is still running
        return result

    monkeypatch.setattr(S3Storage, "save", slow_put)
    hold = asyncio.Event()
    doc = telegram.add_file(os.urandom(200_000), file_name="slow-put.bin", hold=hold)
    since = len(telegram.calls)
    telegram.add_update(updates.message(chat, document=doc))
    await telegram.wait_for_call(
        lambda c: to_chat(c, "sendMessage", chat) and "%" in c.params["text"], since=since
    )
    hold.set()
    await asyncio.wait_for(put_done.wait(), SAVED_TIMEOUT_S)
    uploading = await telegram.wait_for_call(
        lambda c: c.method == "editMessageText" and "uploading" in c.params["text"], since=since
    )
    shown = [c.params["text"] for c in telegram.calls[since:] if "%" in c.params.get("text", "")]
    assert not any("100 %" in t for t in shown), shown
    assert "99 %" in uploading.params["text"]
    release.set()
    await telegram.wait_for_text(chat, "[document has been saved]", timeout=SAVED_TIMEOUT_S)
    final = [c for c in telegram.calls[since:] if c.method == "editMessageText"][-1]
    assert "100 %" in final.params["text"] and "uploading" not in final.params["text"]
