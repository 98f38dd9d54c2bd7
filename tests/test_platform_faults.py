"""Faults between the bot and the Bot API: fixed reasons, proxy failures, a start that cannot reach it.

- A failed getFile is told to the user in a fixed phrase chosen by the kind of failure, never in
  the error's own text (aiohttp's texts carry the URL, and the token in it); the log has the detail.
- A proxy that is down or refuses is a network error like any other: retried while polling, a
  one-line exit 2 at start.
- A start that cannot reach Telegram, or whose deleteWebhook fails, ends with exit 2 and one line.

No test asserts how long anything takes: each waits for its event under a generous deadline. How
long a failed start takes here is a figure in the README ("Start-up checks and exit codes").
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.proxy import ConnectProxy
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.helpers import greet
from tests.processes import (
    CHAT,
    REPLY_TIMEOUT_S,
    Launch,
    bot_env,
    failed_start_line,
    launch,
    secrets_of,
    wait_polling,
)
from tgs3bot import replies
from tgs3bot.config import BackoffConfig
from tgs3bot.errors import StartupError, TransientError
from tgs3bot.platforms import telegram as telegram_module
from tgs3bot.platforms.telegram import TelegramPlatform

__all__ = ["launch"]  # the fixture, used by the end-to-end tests below
DEADLINE_S = 60  # bounds a hang on a busy machine; says nothing about how fast things happen
NOT_SAVED = "[document has not been saved]"


def closed_port() -> int:
    """A loopback port where nothing listens (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def reply_to_document(telegram: FakeTelegram, chat_id: int, **file: Any) -> str:
    """Send a document and return the bot's final answer about it."""
    document = telegram.add_file(b"some bytes", **file)
    telegram.add_update(updates.message(chat_id, document=document))
    texts = await telegram.wait_for_text(chat_id, "[document has", timeout=DEADLINE_S)
    return texts[-1]


def assert_no_token(text: str) -> None:
    for secret in secrets_of(TOKEN):
        assert secret not in text


# -- 1. the reasons users see --------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_getfile_redirect_loop_gets_a_fixed_reason_and_the_detail_goes_to_the_log(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """getFile answered 302 to itself (aiohttp's TooManyRedirects, whose text holds the URL and the
    token) gets a fixed network-trouble reason; the redacted log line names the redirect loop."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint))
    await wait_polling(telegram, bot)
    telegram.redirect_loop("getFile")

    document = telegram.add_file(b"looped", file_name="loop.txt")
    telegram.add_update(updates.message(CHAT, document=document))
    texts = await telegram.wait_for_text(CHAT, NOT_SAVED, timeout=REPLY_TIMEOUT_S)

    assert texts[-1] == replies.document_not_saved(replies.FILE_NETWORK_TROUBLE)
    for text in telegram.sent(CHAT, include_failed=True):
        assert_no_token(text)
        assert "getFile" not in text and "url=" not in text
    [record] = [r for r in bot.log_records() if r.get("event") == "get_file_failed"]
    assert "TooManyRedirects" in record["error"] and "/bot***/getFile" in record["error"]
    bot.assert_no_secret(TOKEN)


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 400, "description": "Bad Request: wrong file_id"}, replies.FILE_REFUSED),
        ({"status": 403, "description": "Forbidden: bot can't access the file"}, replies.FILE_REFUSED),
        ({"status": 502, "times": None}, replies.FILE_NETWORK_TROUBLE),
        ({"status": 503, "times": None, "html": True}, replies.FILE_NETWORK_TROUBLE),
    ],
    ids=["400", "403", "502-every-time", "proxy-html-page"],
)
async def test_getfile_failures_are_told_in_fixed_phrases_by_kind(
    telegram: FakeTelegram, fault: dict[str, Any], reason: str
) -> None:
    """Telegram's own description, or a proxy's page, is not the reason: the kind of failure picks it."""
    await greet(telegram, 31)
    telegram.fail("getFile", **fault)
    reply = await reply_to_document(telegram, 31, file_name="refused.txt")
    assert reply == replies.document_not_saved(reason)


# -- 2. proxies ------------------------------------------------------------------------------------


@pytest.fixture
async def dead_proxy_platform() -> AsyncIterator[TelegramPlatform]:
    """A platform whose proxy (socks5) is a port where nothing listens."""
    platform = TelegramPlatform(
        TOKEN, api_url=f"http://127.0.0.1:{closed_port()}", proxy=f"socks5://127.0.0.1:{closed_port()}"
    )
    try:
        yield platform
    finally:
        await platform.close()


async def test_a_dead_socks_proxy_is_a_network_error_while_polling(
    dead_proxy_platform: TelegramPlatform,
) -> None:
    """aiohttp_socks' ProxyConnectionError reaches the poller as TransientError (backoff), not a crash."""
    with pytest.raises(TransientError, match="ProxyConnectionError"):
        await asyncio.wait_for(dead_proxy_platform.get_updates(None, 0), DEADLINE_S)


async def test_polling_goes_on_through_a_proxy_that_fails_for_a_while(
    start_bot: Callable[..., Awaitable[RunningBot]], telegram: FakeTelegram
) -> None:
    """A proxy that cuts the long poll and refuses the next CONNECTs (aiohttp_socks' ProxyError) is
    waited out with backoff: the bot polls again through it and answers."""
    async with ConnectProxy() as proxy:
        bot = await start_bot(telegram_proxy=proxy.url)
        polls = len(telegram.calls_of("getUpdates"))
        proxy.break_for(3)
        await telegram.wait_until(
            lambda: len(telegram.calls_of("getUpdates")) > polls or bot.task.done(), "a poll after the break"
        )
        assert not bot.task.done(), f"the bot ended with {bot.task.result()}"
        assert proxy.refused == 3
        await greet(telegram, 32)
        assert not bot.task.done()


@pytest.mark.e2e
async def test_a_dead_socks_proxy_at_start_exits_2_with_one_line(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """TGS3BOT_TELEGRAM_PROXY pointing where nothing listens ends the start: exit 2, one line."""
    proxy = f"socks5://127.0.0.1:{closed_port()}"
    bot = await launch(bot_env(telegram, bucket, moto_endpoint, TGS3BOT_TELEGRAM_PROXY=proxy))
    line = await failed_start_line(telegram, bot)
    assert bot.proc.returncode == 2
    assert "proxy" in line.lower()
    assert telegram.calls == []
    bot.assert_no_secret(TOKEN)


# -- 3. a start that cannot reach Telegram ---------------------------------------------------------


@contextlib.asynccontextmanager
async def silent_server(requests: list[bytes]) -> AsyncIterator[str]:
    """An HTTP server that reads each request head and never answers; yields its base URL."""
    held: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            requests.append(await reader.readuntil(b"\r\n\r\n"))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_a_bot_api_that_never_answers_ends_the_start_within_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """getMe against a server that never answers: once the start's budget is spent no new attempt
    begins (each lasts at least a second here, so a 2 s budget allows at most 3 of the 5 retries),
    and the start fails with the last error."""
    monkeypatch.setattr(telegram_module, "STARTUP_BUDGET_S", 2)
    monkeypatch.setattr(telegram_module, "STARTUP_CALL_TIMEOUT_S", 1)
    requests: list[bytes] = []
    async with silent_server(requests) as api_url:
        backoff = BackoffConfig(initial_s=0.01, max_s=0.01, send_attempts=5)
        platform = TelegramPlatform(TOKEN, api_url=api_url, backoff=backoff)
        try:
            with pytest.raises(StartupError, match="could not check the bot token"):
                await asyncio.wait_for(platform.start(), DEADLINE_S)
        finally:
            await platform.close()
    assert 1 <= len(requests) <= 3, requests
    assert all(b"/getMe" in request for request in requests)


@pytest.mark.e2e
async def test_an_unreachable_bot_api_exits_2_with_one_line(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """An API URL where nothing listens: getMe's retries end in exit 2 and one line, no traceback."""
    api_url = f"http://127.0.0.1:{closed_port()}"
    bot = await launch(bot_env(telegram, bucket, moto_endpoint, TGS3BOT_TELEGRAM_API_URL=api_url))
    line = await failed_start_line(telegram, bot)
    assert bot.proc.returncode == 2
    assert "telegram" in line.lower()
    bot.assert_no_secret(TOKEN)


@pytest.mark.e2e
async def test_a_failing_delete_webhook_exits_2_with_one_line(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str
) -> None:
    """deleteWebhook answering 500 every time ends the start with exit 2 and one line, no traceback."""
    telegram.fail("deleteWebhook", status=500, times=None)
    bot = await launch(bot_env(telegram, bucket, moto_endpoint))
    line = await failed_start_line(telegram, bot)
    assert bot.proc.returncode == 2
    assert "deleteWebhook" in line
    assert telegram.calls_of("deleteWebhook")
    bot.assert_no_secret(TOKEN)
