"""Several real processes on one real Redis: ``tgs3bot poll`` and ``work``, ``run``, kills and restarts.

Every process is the installed console script, started with TGS3BOT_REDIS_URL pointing at the
session's ``redis-server``; the fake Bot API and moto's S3 server are shared by all of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import no_multipart_uploads, object_body, object_keys
from tests.processes import REPLY_TIMEOUT_S, BotProcess, Launch, bot_env, launch, wait_polling

pytestmark = pytest.mark.e2e
__all__ = ["launch"]  # the fixture, used by the tests below

TGS3BOT = str(Path(sys.executable).parent / "tgs3bot")
SAVED = "[document has been saved]"
Env = dict[str, str]


@pytest.fixture
def env(telegram: FakeTelegram, bucket: str, moto_endpoint: str, redis_url: str) -> Env:
    """Every process's environment: the fakes, and Redis with short lease and claim times."""
    return bot_env(
        telegram,
        bucket,
        moto_endpoint,
        TGS3BOT_REDIS_URL=redis_url,
        TGS3BOT_REDIS_LEASE_S="2",
        TGS3BOT_REDIS_CLAIM_IDLE_S="2",
        TGS3BOT_CONCURRENT_WORKERS="8",
    )


async def started(launch: Launch, telegram: FakeTelegram, env: Env, *roles: str) -> list[BotProcess]:
    """Start one process per role and wait until each has checked its token (getMe)."""
    before = len(telegram.calls_of("getMe"))
    processes = [await launch(env, [TGS3BOT, role]) for role in roles]
    await telegram.wait_until(
        lambda: len(telegram.calls_of("getMe")) >= before + len(roles),
        f"{len(roles)} processes started",
        timeout=REPLY_TIMEOUT_S,
    )
    return processes


async def stop_all(*processes: BotProcess) -> None:
    """SIGTERM each process; each exits 0 without a traceback."""
    for process in processes:
        process.proc.send_signal(signal.SIGTERM)
    for process in processes:
        assert await process.wait_exit() == 0, process.stderr()
        process.assert_no_traceback()


def saved_names(telegram: FakeTelegram, chat: int) -> list[str]:
    """The key line of every ``[document has been saved]`` reply to the chat, in order."""
    return [t.splitlines()[1] for t in telegram.sent(chat) if SAVED in t]


async def test_two_work_processes_share_forty_documents_keeping_each_chats_order(
    launch: Launch, telegram: FakeTelegram, env: Env, s3: Any, bucket: str, redis_url: str
) -> None:
    """Ten chats of four documents, one poll and two work processes: each saved once, in chat order."""
    poll, *workers = await started(launch, telegram, env, "poll", "work", "work")
    await wait_polling(telegram, poll)
    chats = range(701, 711)
    hold = asyncio.Event()
    docs = {
        c: [telegram.add_file(os.urandom(100_000), file_name=f"{c}-{n}.bin", hold=hold) for n in range(4)]
        for c in chats
    }
    telegram.add_updates([updates.message(c, document=docs[c][n]) for n in range(4) for c in chats])
    # Eight workers per process: ten transfers at once mean both processes are taking turns.
    await telegram.wait_until(
        lambda: sum(f.downloads_started for f in telegram.files.values()) >= 10,
        "ten transfers in flight",
        timeout=REPLY_TIMEOUT_S,
    )
    hold.set()
    for chat in chats:
        await telegram.wait_for_text(chat, SAVED, count=4, timeout=REPLY_TIMEOUT_S)
    for chat in chats:
        assert saved_names(telegram, chat) == [f"{chat}-{n}.bin" for n in range(4)]
    assert len(await object_keys(s3, bucket)) == 40
    assert all(f.downloads_started == 1 for f in telegram.files.values())
    await stop_all(poll, *workers)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = {key async for key in client.scan_iter("tgs3bot:lane:*")}
        assert keys == set()  # finished lanes are deleted
        assert await client.xlen("tgs3bot:ready:telegram") == 0
    finally:
        await client.aclose()


async def test_a_killed_work_process_leaves_its_transfer_to_the_other(
    launch: Launch, telegram: FakeTelegram, env: Env, s3: Any, bucket: str
) -> None:
    """SIGKILL of the work process mid-transfer: the other one takes the update over and saves it once."""
    poll, doomed = await started(launch, telegram, env, "poll", "work")
    await wait_polling(telegram, poll)
    hold = asyncio.Event()
    content = os.urandom(300_000)
    doc = telegram.add_file(content, file_name="cut.bin", hold=hold)
    telegram.add_updates([updates.message(801, document=doc), updates.message(801, text="after it")])
    await telegram.wait_download_started(doc["file_id"], timeout=REPLY_TIMEOUT_S)
    [survivor] = await started(launch, telegram, env, "work")
    doomed.proc.send_signal(signal.SIGKILL)
    assert await doomed.wait_exit() == -signal.SIGKILL
    hold.set()
    texts = await telegram.wait_for_text(801, "[document is required]", timeout=REPLY_TIMEOUT_S)
    assert [t for t in texts if SAVED in t or "required" in t] == [texts[-2], texts[-1]]
    assert saved_names(telegram, 801) == ["cut.bin"]
    assert telegram.files[doc["file_id"]].downloads_started == 2  # cut once, then whole
    assert await object_body(s3, bucket, "cut.bin") == content
    assert await no_multipart_uploads(s3, bucket)
    await stop_all(poll, survivor)


async def test_a_standby_poller_takes_over_when_the_polling_one_is_killed(
    launch: Launch, telegram: FakeTelegram, env: Env
) -> None:
    """SIGKILL of the polling process: the standby polls within the lease, nothing lost or answered twice."""
    first, worker = await started(launch, telegram, env, "poll", "work")
    await wait_polling(telegram, first)
    [standby] = await started(launch, telegram, env, "poll")
    chats = (901, 902, 903)
    telegram.add_updates([updates.message(c, text="/start") for c in chats])
    for chat in chats:
        await telegram.wait_for_text(chat, "[greeting]", timeout=REPLY_TIMEOUT_S)
    polls_before = len(telegram.calls_of("getUpdates"))
    first.proc.send_signal(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    telegram.add_updates([updates.message(c, text=f"hello {n}") for n in range(3) for c in chats])
    for chat in chats:
        await telegram.wait_for_text(chat, "[document is required]", count=3, timeout=REPLY_TIMEOUT_S)
    for chat in chats:
        assert len(telegram.sent(chat)) == 4  # one greeting, three answers: nothing twice
    later = telegram.calls_of("getUpdates")[polls_before:]
    assert sum(c.status == 409 for c in later) <= 1  # no 409 storm: the killed poll is gone
    await stop_all(standby, worker)


async def test_sigkill_of_run_with_redis_mid_transfer_loses_nothing(
    launch: Launch, telegram: FakeTelegram, env: Env, s3: Any, bucket: str
) -> None:
    """`tgs3bot run` on Redis killed mid-transfer: the next `run` saves the file once, whole."""
    [first] = await started(launch, telegram, env, "run")
    await wait_polling(telegram, first)
    hold = asyncio.Event()
    content = os.urandom(300_000)
    doc = telegram.add_file(content, file_name="redis cut.bin", hold=hold)
    [update_id] = telegram.add_updates([updates.message(802, document=doc)])
    await telegram.wait_download_started(doc["file_id"], timeout=REPLY_TIMEOUT_S)
    await telegram.wait_confirmed(update_id + 1, timeout=REPLY_TIMEOUT_S)
    first.proc.send_signal(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    hold.set()
    await telegram.wait_polls_idle(timeout=REPLY_TIMEOUT_S)
    [second] = await started(launch, telegram, env, "run")
    await telegram.wait_for_text(802, SAVED, timeout=REPLY_TIMEOUT_S)
    assert saved_names(telegram, 802) == ["redis cut.bin"]
    assert await object_body(s3, bucket, "redis cut.bin") == content
    await stop_all(second)


async def test_everything_restarted_on_the_same_redis_keeps_greetings_and_files(
    launch: Launch, telegram: FakeTelegram, env: Env
) -> None:
    """After `run` stops, a new poll and work on the same Redis neither greet again nor forget /files."""
    [run] = await started(launch, telegram, env, "run")
    await wait_polling(telegram, run)
    doc = telegram.add_file(os.urandom(1000), file_name="kept in redis.txt")
    telegram.add_update(updates.message(803, document=doc))
    await telegram.wait_for_text(803, SAVED, timeout=REPLY_TIMEOUT_S)
    await stop_all(run)
    await telegram.wait_polls_idle(timeout=REPLY_TIMEOUT_S)

    poll, work = await started(launch, telegram, env, "poll", "work")
    mentions = sum("kept in redis.txt" in t for t in telegram.sent(803))
    telegram.add_updates([updates.message(803, text="/start"), updates.message(803, text="/files")])
    await telegram.wait_for_text(803, "kept in redis.txt", count=mentions + 1, timeout=REPLY_TIMEOUT_S)
    after = telegram.sent(803)[-2:]
    assert "[document is required]" in after[0] and "[greeting]" not in after[0]
    assert "kept in redis.txt" in after[1]
    await stop_all(poll, work)
