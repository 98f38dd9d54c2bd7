"""The bot's lifecycle: start-up checks, polling under failures, and the shutdown order."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import no_multipart_uploads, object_keys
from tgs3bot.app import App
from tgs3bot.errors import FatalPollingError, StartupError
from tgs3bot.events import Event

MiB = 1024 * 1024
DEADLINE_S = 60  # for waits on an event: it bounds a hang, it does not say how fast things happen


async def test_start_checks_token_deletes_webhook_keeping_updates_and_polls_with_timeout_60(
    bot: RunningBot, telegram: FakeTelegram
) -> None:
    """getMe, deleteWebhook without drop_pending_updates, the command menu, then getUpdates(timeout=60)."""
    methods = [c.method for c in telegram.calls]
    assert methods[:4] == ["getMe", "deleteWebhook", "setMyCommands", "getUpdates"]
    menu = telegram.calls_of("setMyCommands")[0].params["commands"]
    assert [c["command"] for c in menu] == ["start", "help", "files", "cancel"]
    assert "drop_pending_updates" not in telegram.calls_of("deleteWebhook")[0].params
    assert telegram.calls_of("getUpdates")[0].params["timeout"] == "60"


async def test_updates_sent_while_the_bot_was_down_are_handled(
    start_bot: Any, telegram: FakeTelegram
) -> None:
    """Pending updates survive the start (no drop_pending_updates) and get answers."""
    telegram.add_update(updates.message(1, text="/start"))
    await start_bot()
    await telegram.wait_for_text(1, "[greeting]")


async def test_a_rejected_token_stops_the_start(start_bot: Any, telegram: FakeTelegram) -> None:
    """A token Telegram rejects (401 on getMe) ends the start with an error naming the token."""
    telegram.fail("getMe", status=401, description="Unauthorized")
    bot = await start_bot()
    with pytest.raises(StartupError, match="token"):
        await bot.task
    assert telegram.calls_of("getUpdates") == []


async def test_a_malformed_token_stops_the_start_before_any_request(
    start_bot: Any, telegram: FakeTelegram
) -> None:
    """A token of the wrong shape is refused before the bot talks to Telegram."""
    bot = await start_bot(telegram_token="not-a-token")
    with pytest.raises(StartupError, match="token"):
        await bot.task
    assert telegram.calls == []


async def test_a_missing_bucket_stops_the_start(start_bot: Any, telegram: FakeTelegram) -> None:
    """head_bucket fails: the start ends with an error naming the bucket, and nothing is polled."""
    bot = await start_bot(s3_bucket="no-such-bucket-here")
    with pytest.raises(StartupError, match="no-such-bucket-here"):
        await bot.task
    assert telegram.calls_of("getUpdates") == []


async def test_polling_survives_5xx_html_pages_and_rate_limits(
    bot: RunningBot, telegram: FakeTelegram
) -> None:
    """5xx, a proxy's HTML page and 429 are waited out; updates are then handled."""
    telegram.fail("getUpdates", status=502, html=True, times=1)
    telegram.fail("getUpdates", status=500, times=1)
    telegram.fail("getUpdates", status=429, retry_after=1, times=1)
    telegram.add_update(updates.message(2, text="/start"))  # answers the poll in flight
    await telegram.wait_for_text(2, "[greeting]", timeout=DEADLINE_S)
    telegram.add_update(updates.message(2, text="after the storm"))
    await telegram.wait_for_text(2, "[document is required]", timeout=DEADLINE_S)
    statuses = [c.status for c in telegram.calls_of("getUpdates")]
    assert {502, 500, 429} <= set(statuses)
    assert telegram.max_concurrent_polls_seen == 1


async def test_conflicts_that_last_end_the_bot(start_bot: Any, telegram: FakeTelegram) -> None:
    """409 Conflict beyond the grace window (1 s in tests, 90 s by default) stops the bot with an error."""
    telegram.fail("getUpdates", status=409, times=None)
    bot = await start_bot()
    with pytest.raises(FatalPollingError, match="another instance"):
        await asyncio.wait_for(bot.task, DEADLINE_S)


async def test_a_revoked_token_while_polling_ends_the_bot(start_bot: Any, telegram: FakeTelegram) -> None:
    """401 on getUpdates: the poller stops and the bot ends with an error instead of idling."""
    telegram.fail("getUpdates", status=401, times=None)
    bot = await start_bot()
    with pytest.raises(FatalPollingError, match="token"):
        await asyncio.wait_for(bot.task, DEADLINE_S)


async def test_stop_drains_the_queue_then_confirms_the_offset(
    bot: RunningBot, telegram: FakeTelegram
) -> None:
    """On stop, queued updates are answered, then one getUpdates(timeout=0) confirms them; exit 0."""
    hold = asyncio.Event()
    doc = telegram.add_file(os.urandom(200_000), file_name="drain.bin", hold=hold)  # > one 64 KiB chunk
    ids = telegram.add_updates(
        [updates.message(3, document=doc)] + [updates.message(c, text="/start") for c in (4, 5, 6)]
    )
    await telegram.wait_download_started(doc["file_id"])
    bot.app.request_stop()
    hold.set()
    assert await bot.stop() == 0
    assert "[document has been saved]" in telegram.sent(3)[-1]
    assert all(telegram.sent(c) for c in (4, 5, 6))
    last = telegram.calls_of("getUpdates")[-1]
    assert (last.params["timeout"], last.params["offset"]) == ("0", str(ids[-1] + 1))
    assert telegram.pending_update_ids == []


async def test_stop_timeout_aborts_transfers_and_the_next_start_saves_them(
    start_bot: Any, telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """A drain that outlasts the timeout aborts the transfer (exit 1); the restart saves both files."""
    bot = await start_bot(shutdown_timeout=0.5)
    hold = asyncio.Event()  # not set before the stop: the transfer cannot finish
    stuck = telegram.add_file(os.urandom(12 * MiB), file_name="stuck.bin", hold=hold, chunk_size=9 * MiB)
    queued = telegram.add_file(b"queued behind it", file_name="queued.bin")
    telegram.add_updates([updates.message(7, document=stuck), updates.message(7, document=queued)])
    await telegram.wait_download_started(stuck["file_id"])
    assert await bot.stop() == 1
    notices = [t for t in telegram.sent(7) if "[document has not been saved]" in t and "restarting" in t]
    assert len(notices) == 1  # the one in flight; the queued one was never started
    assert (await s3.list_objects_v2(Bucket=bucket)).get("Contents") is None
    assert await no_multipart_uploads(s3, bucket)
    assert telegram.files[queued["file_id"]].downloads_started == 0
    assert telegram.pending_update_ids == []  # confirmed: the journal keeps them, not Telegram

    hold.set()
    await telegram.wait_polls_idle()
    since = len(telegram.calls)
    await start_bot()
    await telegram.wait_for_call(
        lambda _: sum("[document has been saved]" in t for t in telegram.sent(7)) == 2, since=since
    )
    assert await object_keys(s3, bucket) == ["queued.bin", "stuck.bin"]


class LostQueue:
    """A queue backend that breaks: workers fail to take updates from it."""

    async def __aenter__(self) -> LostQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def put_batch(self, events: Sequence[Event]) -> None:
        """Accept the updates (and lose them)."""

    async def wait_for_room(self) -> int:
        """Always room."""
        return 100

    async def get(self) -> Event:
        """Fail, as a queue backend whose connection is gone would."""
        raise RuntimeError("queue backend lost")

    async def task_done(self, event: Event) -> None:
        """Nothing to finish."""

    async def drain(self) -> None:
        """Nothing to wait for."""

    def unfinished(self) -> list[Event]:
        """Nothing in progress."""
        return []


async def test_a_dead_worker_ends_the_bot_instead_of_idling(
    telegram: FakeTelegram, settings_for: Any
) -> None:
    """When a worker dies, the bot stops polling and ends with the error (the CLI exits 1)."""
    app = App(settings_for(), queue=LostQueue())
    with pytest.raises(RuntimeError, match="queue backend lost"):
        await asyncio.wait_for(app.run(), DEADLINE_S)
    await telegram.wait_polls_idle()  # the poller was cancelled too


async def test_fatal_polling_drains_and_keeps_the_rest_for_the_next_start(
    start_bot: Any, telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """A 401 while polling ends the bot through the drain; what it could not finish runs at the next start."""
    bot = await start_bot(shutdown_timeout=0.5)
    hold = asyncio.Event()
    doc = telegram.add_file(os.urandom(200_000), file_name="kept.bin", hold=hold)
    telegram.add_updates([updates.message(8, document=doc), updates.message(8, text="and this")])
    await telegram.wait_download_started(doc["file_id"])
    telegram.fail("getUpdates", status=401, times=None)
    telegram.add_update(updates.message(9, text="/start"))  # ends the long poll; the next one gets 401
    with pytest.raises(FatalPollingError, match="token"):
        await asyncio.wait_for(bot.task, DEADLINE_S)
    assert not any("[document has been saved]" in t for t in telegram.sent(8))

    telegram.clear_faults()
    hold.set()
    await telegram.wait_polls_idle()
    await start_bot()
    texts = await telegram.wait_for_text(8, "[document is required]", timeout=DEADLINE_S)
    assert "[document has been saved]" in texts[-2] and "kept.bin" in texts[-2]
    await telegram.wait_for_text(9, "[greeting]", timeout=DEADLINE_S)
    assert await object_keys(s3, bucket) == ["kept.bin"]
