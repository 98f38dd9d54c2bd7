"""The same file again: a document whose file_unique_id the bot saved before is not downloaded again."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import greet, object_keys, read_object, reply_to
from tests.processes import CHAT, REPLY_TIMEOUT_S, Launch, bot_env, launch, wait_polling

__all__ = ["launch"]  # the fixture, used by the end-to-end test below
SAVED = "[document has been saved]"


def downloads(telegram: FakeTelegram, document: dict[str, Any]) -> int:
    """How many times the bot started downloading the document's file from the fake."""
    return telegram.files[document["file_id"]].downloads_started


async def send(
    telegram: FakeTelegram, chat_id: int, document: dict[str, Any], marker: str = SAVED, **fields: Any
) -> str:
    """Send the document (``fields`` change it, e.g. ``file_name``) and return the reply with ``marker``."""
    before = sum(marker in t for t in telegram.sent(chat_id))
    telegram.add_update(updates.message(chat_id, user_id=chat_id, document=document | fields))
    texts = await telegram.wait_for_text(chat_id, marker, count=before + 1, timeout=REPLY_TIMEOUT_S)
    return [t for t in texts if marker in t][-1]


@pytest.mark.e2e
async def test_the_real_process_downloads_a_file_once_for_both_names(
    launch: Launch, telegram: FakeTelegram, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """Sent twice under one name: one download, "already". Then under another name: still one
    download, and two objects with equal bytes, each written as a fresh save would write it."""
    bot = await launch(bot_env(telegram, bucket, moto_endpoint))
    await wait_polling(telegram, bot)
    await greet(telegram, CHAT)
    content = os.urandom(300 * 1024)
    document = telegram.add_file(content, file_name="Отчёт (март).pdf", mime_type="application/pdf")

    first = await send(telegram, CHAT, document)
    assert "already" not in first and downloads(telegram, document) == 1
    again = await send(telegram, CHAT, document)
    assert "Отчёт (март).pdf" in again.splitlines() and "already in the bucket" in again
    copied = await send(telegram, CHAT, document, file_name="Копия отчёта.pdf")
    assert "Копия отчёта.pdf" in copied.splitlines() and "Отчёт (март).pdf" not in copied

    assert downloads(telegram, document) == 1
    assert len(telegram.calls_of("getFile")) == 1
    assert await object_keys(s3, bucket) == sorted(["Копия отчёта.pdf", "Отчёт (март).pdf"])
    (original, _), (copy, stored) = [await read_object(s3, bucket, k) for k in await object_keys(s3, bucket)][
        ::-1
    ]
    assert original == copy == content
    assert stored["ContentType"] == "application/pdf"
    assert unquote(stored["ContentDisposition"].split("UTF-8''")[1]) == "Копия отчёта.pdf"
    assert stored["Metadata"] == {
        "user-id": str(CHAT),
        "platform": "telegram",
        "chat-id": str(CHAT),
        "file-unique-id": document["file_unique_id"],
    }
    bot.assert_no_traceback()


async def test_another_users_copy_is_used_but_never_named_nor_overwritten(
    telegram: FakeTelegram, bot: RunningBot, s3: Any, bucket: str
) -> None:
    """Open bot: user 2 sending user 1's file under user 1's name is refused as a fresh save is;
    under a new name it is copied from user 1's object, and the reply names only user 2's key."""
    await greet(telegram, 1, 2)
    content = b"the same bytes for everyone"
    document = telegram.add_file(content, file_name="shared.txt", mime_type="text/plain")
    await send(telegram, 1, document)
    refused = await send(telegram, 2, document, marker="[document has not been saved]")
    assert "taken" in refused
    mine = await send(telegram, 2, document, file_name="mine.txt")
    assert "mine.txt" in mine.splitlines() and "shared.txt" not in mine and "already" not in mine
    assert downloads(telegram, document) == 1
    assert await object_keys(s3, bucket) == ["mine.txt", "shared.txt"]
    data, stored = await read_object(s3, bucket, "mine.txt")
    assert (data, stored["Metadata"]["user-id"]) == (content, "2")
    listing = await reply_to(telegram, 2, updates.message(2, text="/files"), "sendMessage")
    assert "mine.txt" in listing.params["text"] and "shared.txt" not in listing.params["text"]


async def test_a_gone_or_replaced_object_means_a_download(
    telegram: FakeTelegram, bot: RunningBot, s3: Any, bucket: str
) -> None:
    """An indexed object deleted from the bucket is dropped from the index; one replaced by other
    bytes (another program's write) loses its note; either way the file is downloaded again."""
    await greet(telegram, 1)
    document = telegram.add_file(b"original bytes", file_name="a.txt", mime_type="text/plain")
    await send(telegram, 1, document)
    await s3.delete_object(Bucket=bucket, Key="a.txt")
    await send(telegram, 1, document, file_name="b.txt")
    assert downloads(telegram, document) == 2
    listing = await reply_to(telegram, 1, updates.message(1, text="/files"), "sendMessage")
    assert "b.txt" in listing.params["text"] and "a.txt" not in listing.params["text"]

    await s3.put_object(Bucket=bucket, Key="b.txt", Body=b"other", Metadata={"user-id": "1"})
    await send(telegram, 1, document, file_name="c.txt")
    await send(telegram, 1, document, file_name="d.txt")  # copied from c.txt, whose note holds
    assert downloads(telegram, document) == 3
    for key in ("c.txt", "d.txt"):
        assert (await read_object(s3, bucket, key))[0] == b"original bytes"
    assert (await read_object(s3, bucket, "b.txt"))[0] == b"other"


async def test_in_a_closed_bot_the_same_name_is_already_there_for_anyone_allowed(
    telegram: FakeTelegram, start_bot: Any, s3: Any, bucket: str
) -> None:
    """With an allowlist, user 2 sending user 1's file under its name is told it is already there."""
    await start_bot(allowed_users=frozenset({1, 2}))
    await greet(telegram, 1, 2)
    document = telegram.add_file(b"team file", file_name="team.txt", mime_type="text/plain")
    await send(telegram, 1, document)
    again = await send(telegram, 2, document)
    assert "already in the bucket" in again and "team.txt" in again.splitlines()
    assert downloads(telegram, document) == 1
    assert (await read_object(s3, bucket, "team.txt"))[1]["Metadata"]["user-id"] == "1"  # nothing written
