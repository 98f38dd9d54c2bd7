"""Share links: the 🔗 Link button gives the owner a presigned URL that downloads the file by name."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import Call, FakeTelegram
from tests.helpers import button_data, buttons, greet, object_keys, press_answered, reply_to

StartBot = Callable[..., Awaitable[RunningBot]]
URL = re.compile(r"https?://\S+")
NAME = "Отчёт за март (v2) [final].txt"


async def save(
    telegram: FakeTelegram, chat_id: int, content: bytes, name: str, user_id: int | None = None
) -> Call:
    """Send a document and return the sendMessage call of its `[document has been saved]` reply."""
    doc = telegram.add_file(content, file_name=name, mime_type="text/plain")
    since = len(telegram.calls)
    telegram.add_update(updates.message(chat_id, user_id=user_id, document=doc))
    return await telegram.wait_for_call(
        lambda c: c.method == "sendMessage" and "[document has been saved]" in c.params.get("text", ""),
        since=since,
    )


async def press_link(telegram: FakeTelegram, chat_id: int, data: str, user_id: int | None = None) -> Call:
    """Press a Link button; return the bot's answer to the press (answerCallbackQuery)."""
    press = updates.callback_query(chat_id, 1, data, user_id=user_id)
    callback_id = press["callback_query"]["id"]
    telegram.add_update(press)
    return await telegram.wait_for_call(
        lambda c: c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == callback_id
    )


async def link_in(telegram: FakeTelegram, chat_id: int) -> tuple[str, str]:
    """Wait for the chat's link message; return its text and the URL in it."""
    [text] = [t for t in await telegram.wait_for_text(chat_id, "Download link") if "Download link" in t][-1:]
    found = URL.search(text)
    assert found is not None, text
    return text, found.group(0)


async def download(url: str) -> tuple[int, bytes, str]:
    """GET the link as a browser would: status, body and Content-Disposition."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read(), response.headers.get("Content-Disposition", "")


def sent_links(telegram: FakeTelegram, chat_id: int) -> list[str]:
    """The link messages the bot sent to the chat."""
    return [t for t in telegram.sent(chat_id) if "Download link" in t]


async def test_the_link_downloads_the_file_under_its_unicode_name(
    telegram: FakeTelegram, bot: RunningBot, s3: Any, bucket: str
) -> None:
    """Link under a saved file → a URL whose download has the same bytes and names the file in UTF-8,
    whatever Content-Disposition the object itself has."""
    await greet(telegram, 1)
    content = b"March figures\n" * 1000
    saved = await save(telegram, 1, content, NAME)
    stored = await s3.head_object(Bucket=bucket, Key=NAME)
    await s3.copy_object(  # as if written by another program: no name in the object's own header
        Bucket=bucket,
        Key=NAME,
        CopySource={"Bucket": bucket, "Key": NAME},
        MetadataDirective="REPLACE",
        Metadata=stored["Metadata"],
        ContentType="text/plain",
        ContentDisposition="inline",
    )
    assert "🔗 Link" in buttons(saved)
    answer = await press_link(telegram, 1, button_data(saved, "Link"))
    text, url = await link_in(telegram, 1)
    assert not answer.params.get("text")  # no notice: the link is in the chat
    assert NAME in text
    until = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 24 * 3600))
    assert "valid until" in text and "(1 day)" in text and until in text, text
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["86400"]
    status, body, disposition = await download(url)
    assert (status, body) == (200, content)
    assert f"filename*=UTF-8''{quote(NAME, safe='')}" in disposition
    assert 'filename="' in disposition  # the ASCII fallback for old clients


async def test_in_an_open_bot_another_user_is_refused_the_link(
    telegram: FakeTelegram, bot: RunningBot
) -> None:
    """User 2 pressing (or forging) user 1's Link button gets a refusal and no URL."""
    await greet(telegram, 1, 2)
    saved = await save(telegram, 1, b"private", "mine.txt")
    answer = await press_link(telegram, 2, button_data(saved, "Link"))
    assert "links only to the files you saved" in answer.params["text"]
    assert sent_links(telegram, 2) == []
    await press_link(telegram, 1, button_data(saved, "Link"))  # the owner still gets it
    await link_in(telegram, 1)
    assert sent_links(telegram, 2) == []


async def test_in_a_closed_bot_anyone_allowed_gets_the_link(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    """With an allowlist, an allowed user gets a link to another allowed user's file."""
    await start_bot(allowed_users=frozenset({1, 2}))
    await greet(telegram, 1, 2)
    saved = await save(telegram, 1, b"shared", "team.txt")
    await press_link(telegram, 2, button_data(saved, "Link"))
    _, url = await link_in(telegram, 2)
    assert (await download(url))[:2] == (200, b"shared")


async def test_stale_link_buttons_give_no_link(
    telegram: FakeTelegram, bot: RunningBot, s3: Any, bucket: str
) -> None:
    """A forged id, or a file deleted from the bucket (then dropped from the index), is answered as stale."""
    await greet(telegram, 1)
    for data in ("link:999999", "link:abc", "link:" + "9" * 40):
        answer = await press_link(telegram, 1, data)
        assert "no longer known" in answer.params["text"]
    saved = await save(telegram, 1, b"soon gone", "gone.txt")
    await s3.delete_object(Bucket=bucket, Key="gone.txt")
    answer = await press_link(telegram, 1, button_data(saved, "Link"))
    assert "no longer in the bucket" in answer.params["text"]
    answer = await press_link(telegram, 1, button_data(saved, "Link"))  # the entry was dropped
    assert "no longer known" in answer.params["text"]
    assert sent_links(telegram, 1) == [] and await object_keys(s3, bucket) == []


async def test_files_offers_a_link_per_file(telegram: FakeTelegram, bot: RunningBot) -> None:
    """/files numbers its lines and has a "🔗 n" button per file; 🔗 1 is the newest file's link."""
    await greet(telegram, 1)
    await save(telegram, 1, b"older", "older.txt")
    await save(telegram, 1, b"newer", "newer.txt")
    listing = await reply_to(telegram, 1, updates.message(1, text="/files"), "sendMessage")
    lines = listing.params["text"].splitlines()
    assert lines[1].startswith("1. newer.txt") and lines[2].startswith("2. older.txt"), lines
    assert [t for t in buttons(listing) if t.startswith("🔗")] == ["🔗 1", "🔗 2"]
    assert all(len(d.encode()) <= 64 for d in buttons(listing).values())
    await press_answered(telegram, 1, buttons(listing)["🔗 1"])
    text, url = await link_in(telegram, 1)
    assert "newer.txt" in text
    assert (await download(url))[:2] == (200, b"newer")


async def test_links_name_the_public_endpoint_when_one_is_set(
    telegram: FakeTelegram, start_bot: StartBot, moto_endpoint: str
) -> None:
    """TGS3BOT_S3_PUBLIC_URL: the link's host is the public one (here moto by another name), and works."""
    public = moto_endpoint.replace("127.0.0.1", "localhost")
    await start_bot(s3_public_url=public, link_ttl=2 * 3600)
    await greet(telegram, 1)
    saved = await save(telegram, 1, b"via the public name", "public.txt")
    await press_link(telegram, 1, button_data(saved, "Link"))
    text, url = await link_in(telegram, 1)
    assert url.startswith(public + "/") and "(2 hours)" in text
    assert (await download(url))[:2] == (200, b"via the public name")
