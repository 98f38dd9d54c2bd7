"""``/metrics`` and ``/healthz`` scraped from the real ``tgs3bot run`` process.

The process runs against the fake Bot API and moto's S3 server; the exposition is parsed with
prometheus-client's own parser. Every scrape follows an event that guarantees what it checks: a
chat's updates are handled one after another, so the reply to a chat's next message means the
previous one has been counted; an error is counted before the retry (or the reply) it causes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.processes import (
    CHAT,
    REPLY_TIMEOUT_S,
    Launch,
    bot_env,
    failed_start_line,
    launch,
    wait_polling,
)

pytestmark = pytest.mark.e2e
__all__ = ["launch"]  # the fixture, used by the tests below

Labels = dict[str, str]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def listening_socket() -> Iterator[int]:
    """A port some other program already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


class Scraper:
    """GETs the bot's metrics server and reads the Prometheus exposition with its parser."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base + path, timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT_S)) as response,
        ):
            return response.status, await response.text()

    async def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics, by name and labels."""
        status, text = await self.get("/metrics")
        assert status == 200, text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def value(self, name: str, **labels: str) -> float | None:
        """One sample's value, or None if the process has not exported it."""
        return (await self.samples()).get((name, frozenset(labels.items())))


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (from /proc: its socket inodes in LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def send_and_wait(telegram: FakeTelegram, marker: str, count: int = 1, **message: Any) -> None:
    """One message in CHAT, and wait for the ``count``-th reply there that contains ``marker``."""
    telegram.add_update(updates.message(CHAT, **message))
    await telegram.wait_for_text(CHAT, marker, count=count, timeout=REPLY_TIMEOUT_S)


async def test_metrics_count_updates_bytes_transfers_and_errors_and_healthz_follows_polling(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """The counters show a text and a saved document by route and outcome and the document's bytes;
    the gauges show a held transfer and the update queued behind it; an S3 error and a Bot API error
    are counted by kind; /healthz is 200, then 503 while getUpdates keeps failing, then 200 again."""
    port = free_port()
    env = bot_env(
        telegram,
        bucket,
        moto_endpoint,
        TGS3BOT_METRICS_PORT=str(port),
        TGS3BOT_HEALTH_MAX_POLL_FAILURE_S="0",  # the first failed poll already counts as down
    )
    bot = await launch(env)
    await wait_polling(telegram, bot)
    scrape = Scraper(port)
    assert await scrape.get("/healthz") == (200, "ok: polling, 8 workers\n")

    await send_and_wait(telegram, "[greeting]", text="/start")
    content = os.urandom(300_000)
    document = telegram.add_file(content, file_name="report.pdf", mime_type="application/pdf")
    await send_and_wait(telegram, "[document has been saved]", document=document)
    await send_and_wait(telegram, "[document is required]", text="hello")
    # The chat's updates run in order: the greeting and the document are counted by now.
    assert await scrape.value("tgs3bot_updates_total", route="greeting", outcome="ok") == 1
    assert await scrape.value("tgs3bot_updates_total", route="document", outcome="ok") == 1
    assert await scrape.value("tgs3bot_saved_bytes_total") == len(content)
    assert await scrape.value("tgs3bot_saved_documents_total") == 1
    assert await scrape.value("tgs3bot_update_duration_seconds_count", route="document") == 1
    assert (await scrape.value("tgs3bot_poll_duration_seconds_count") or 0) >= 1

    hold = asyncio.Event()
    held = telegram.add_file(os.urandom(100_000), file_name="held.bin", hold=hold)
    telegram.add_update(updates.message(CHAT, document=held))
    await telegram.wait_download_started(held["file_id"], timeout=REPLY_TIMEOUT_S)
    behind = telegram.add_update(updates.message(CHAT, text="queued behind the transfer"))
    # The poller asks for the next offset only once the update is in the queue.
    await telegram.wait_for_call(
        lambda c: c.method == "getUpdates" and str(c.params.get("offset")) == str(behind + 1),
        timeout=REPLY_TIMEOUT_S,
    )
    assert await scrape.value("tgs3bot_transfers_in_flight") == 1
    assert await scrape.value("tgs3bot_queue_depth") == 2  # the held document and the text behind it
    assert await scrape.value("tgs3bot_updates_total", route="document_required", outcome="ok") == 1
    hold.set()
    await telegram.wait_for_text(CHAT, "[document is required]", count=2, timeout=REPLY_TIMEOUT_S)
    assert await scrape.value("tgs3bot_saved_documents_total") == 2
    assert await scrape.value("tgs3bot_transfers_in_flight") == 0

    # An S3 error: the bucket is gone.
    for key in ("report.pdf", "held.bin"):
        await s3.delete_object(Bucket=bucket, Key=key)
    await s3.delete_bucket(Bucket=bucket)
    lost = telegram.add_file(b"x" * 1000, file_name="lost.txt")
    await send_and_wait(telegram, "[document has not been saved]", document=lost)
    assert await scrape.value("tgs3bot_s3_errors_total", operation="PutObject", kind="NoSuchBucket") == 1

    # A Bot API error: one 500 on a reply, which the retry then delivers.
    telegram.fail("sendMessage", status=500, times=1)
    await send_and_wait(telegram, "[document is required]", count=3, text="again")
    assert (
        await scrape.value("tgs3bot_bot_api_errors_total", method="sendMessage", kind="TransientError")
    ) == 1

    # getUpdates keeps failing: 503 with the reason; once it works again, 200.
    telegram.fail("getUpdates", status=502, times=None)
    telegram.add_update(updates.message(CHAT, text="ends the long poll in flight"))
    # A poll after a failed one: the poller has taken the failure in.
    await telegram.wait_until(
        lambda: sum(c.status == 502 for c in telegram.calls_of("getUpdates")) >= 2,
        "two failed polls",
        timeout=REPLY_TIMEOUT_S,
    )
    status, body = await scrape.get("/healthz")
    assert status == 503
    assert body.startswith("unhealthy: getUpdates has been failing for ")
    assert "(last: TransientError)" in body
    assert (
        await scrape.value("tgs3bot_bot_api_errors_total", method="getUpdates", kind="TransientError") or 0
    ) >= 2
    telegram.clear_faults("getUpdates")
    await send_and_wait(telegram, "[document is required]", count=5, text="polling works again")
    assert await scrape.get("/healthz") == (200, "ok: polling, 8 workers\n")

    _, exposition = await scrape.get("/metrics")
    assert TOKEN not in exposition and TOKEN.partition(":")[2] not in exposition
    bot.proc.send_signal(signal.SIGTERM)
    assert await bot.wait_exit() == 0, bot.stderr()
    bot.assert_no_traceback()
    bot.assert_no_secret(TOKEN)


async def test_metrics_are_off_by_default_and_no_port_is_opened(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """Without TGS3BOT_METRICS_PORT the bot listens on no port at all."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint))
    await wait_polling(telegram, bot)
    assert listening_ports(bot.proc.pid) == set()
    bot.proc.send_signal(signal.SIGTERM)
    assert await bot.wait_exit() == 0, bot.stderr()
    assert [r for r in bot.log_records() if r.get("event") == "metrics_server_started"] == []


async def test_a_metrics_port_in_use_ends_the_start_with_one_line_and_exit_2(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """A port another program listens on stops the start before it talks to Telegram: exit 2, one line."""
    with listening_socket() as port:
        bot = await launch(bot_env(telegram, bucket, moto_endpoint, TGS3BOT_METRICS_PORT=str(port)))
        line = await failed_start_line(telegram, bot)
        assert await bot.wait_exit() == 2
    assert f"127.0.0.1:{port}" in line
    assert "TGS3BOT_METRICS_PORT" in line
    assert "already in use" in line
    assert telegram.calls_of("getMe") == []
