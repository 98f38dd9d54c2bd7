"""Transfer progress: one separate message, edited with percent and speed, throttled, ending at 100 %."""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wire import Call
from tests.helpers import greet, message_id_of, to_chat
from tgs3bot.progress import ProgressReporter, TransferMeter, progress_text

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
    """A ~4.5 s transfer gets one extra message, edited with percent at most every ~2 s, 100 % last."""
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
    times = [progress[0].at, *(c.at for c in all_edits)]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    assert min(gaps) >= MIN_EDIT_GAP_S, (
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
    """Nothing done is 0 %, everything is 100 %, and a file longer than announced never passes 100 %."""
    assert percent in progress_text("b.bin", done, 15 * MiB, 1.0)


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
    stopped = progress_text("e.bin", 6 * MiB, 15 * MiB, 2.0, stopped=True)
    assert "stopped" in stopped.lower() and "40 %" in stopped
    assert "stopped" not in progress_text("e.bin", 6 * MiB, 15 * MiB, 2.0).lower()


# -- the reporter's throttle, on a recording platform ----------------------------------------------


class RecordingPlatform:
    """The two Platform methods a ProgressReporter uses, recording when each call happened."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, str]] = []
        self.edited = asyncio.Event()

    async def send_text(self, chat_id: int, text: str, **_: object) -> int:
        self.calls.append(("send", asyncio.get_running_loop().time(), text))
        return 1

    async def edit_text(self, chat_id: int, message_id: int, text: str, **_: object) -> bool:
        self.calls.append(("edit", asyncio.get_running_loop().time(), text))
        self.edited.set()
        return True


async def test_the_final_progress_edit_also_respects_the_interval() -> None:
    """A transfer ending just after a periodic edit gets its 100 % edit no sooner than the interval allows."""
    platform = RecordingPlatform()
    meter = TransferMeter(1000)
    reporter = ProgressReporter(platform, 1, "f.bin", meter, delay_s=0.05, interval_s=0.3)  # type: ignore[arg-type]
    task = asyncio.create_task(reporter.run())
    meter.done = 400
    # The transfer runs: the message after 0.05 s, then a periodic edit 0.3 s later…
    await asyncio.wait_for(platform.edited.wait(), 60)
    meter.done = 1000
    await reporter.finish(ok=True)  # …and it ends right after that edit
    await asyncio.wait_for(task, 60)
    kinds = [kind for kind, _, _ in platform.calls]
    assert kinds[0] == "send" and kinds.count("edit") >= 2 and "100 %" in platform.calls[-1][2]
    gaps = [round(b[1] - a[1], 3) for a, b in itertools.pairwise(platform.calls)]
    assert min(gaps) >= 0.3 * 0.95, f"send/edits {gaps} s apart with a 0.3 s interval"
