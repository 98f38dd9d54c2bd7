"""The document flow: what is stored, under which key, and every way a save can fail cleanly."""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import unquote

import pytest
import structlog

from tests.conftest import FAST_BACKOFF, RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.helpers import buttons, greet, no_multipart_uploads, object_body, object_keys, to_chat
from tgs3bot.handlers import documents
from tgs3bot.state import SqliteState

MiB = 1024 * 1024
pytestmark = pytest.mark.usefixtures("bot")


async def send_document(telegram: FakeTelegram, chat_id: int, content: bytes, **file: Any) -> str:
    """Send a document to the bot and return the text of its final answer."""
    doc = telegram.add_file(content, **file)
    telegram.add_update(updates.message(chat_id, document=doc))
    before = len(telegram.sent(chat_id))
    texts = await telegram.wait_for_text(chat_id, "[document has", count=_count(telegram, chat_id) + 1)
    assert any("[document]" in t for t in texts[before:])
    return texts[-1]


def _count(telegram: FakeTelegram, chat_id: int) -> int:
    return sum("[document has" in t for t in telegram.sent(chat_id))


async def test_document_is_saved_with_its_exact_name_bytes_and_headers(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """The file lands at the bucket root under file_name verbatim, with type, disposition and owner."""
    await greet(telegram, 1)
    name = "Отчёт за 2026 [final] (1).pdf"
    content = os.urandom(300_000)
    reply = await send_document(telegram, 1, content, file_name=name, mime_type="application/pdf")
    assert "[document has been saved]" in reply and name in reply.splitlines()
    assert await object_keys(s3, bucket) == [name]
    assert await object_body(s3, bucket, name) == content
    head = await s3.head_object(Bucket=bucket, Key=name)
    assert head["ContentType"] == "application/pdf"
    assert unquote(head["ContentDisposition"].split("UTF-8''")[1]) == name
    file_unique_id = next(iter(telegram.files.values())).file_unique_id
    assert head["Metadata"] == {
        "user-id": "1",
        "platform": "telegram",
        "chat-id": "1",
        "file-unique-id": file_unique_id,
    }


async def test_a_big_document_is_streamed_in_parts(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """A file over one part (8 MiB) goes up as a multipart upload with exact bytes."""
    await greet(telegram, 2)
    content = os.urandom(19 * MiB)
    reply = await send_document(telegram, 2, content, file_name="big.bin")
    assert "[document has been saved]" in reply
    assert await object_body(s3, bucket, "big.bin") == content
    head = await s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ETag"].endswith('-3"')  # three parts: 8 + 8 + 3 MiB
    assert await no_multipart_uploads(s3, bucket)


async def test_an_empty_document_is_saved(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """A 0-byte file is a file too."""
    await greet(telegram, 3)
    reply = await send_document(telegram, 3, b"", file_name="empty.txt")
    assert "[document has been saved]" in reply
    assert await object_body(s3, bucket, "empty.txt") == b""


async def test_files_over_20_mib_are_refused_without_downloading(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """file_size over the cloud Bot API limit: refused with the reason, getFile never called."""
    await greet(telegram, 4)
    reply = await send_document(telegram, 4, b"x", file_name="huge.iso", file_size=20 * MiB + 1)
    assert "[document has not been saved]" in reply and "20.0 MiB" in reply
    assert telegram.calls_of("getFile") == []
    assert await object_keys(s3, bucket) == []


async def test_getfile_too_big_is_explained(telegram: FakeTelegram, s3: Any, bucket: str) -> None:
    """Without file_size, getFile's "file is too big" becomes a plain-words refusal."""
    await greet(telegram, 5)
    reply = await send_document(telegram, 5, b"x", file_name="nosize.iso", file_size=None, too_big=True)
    assert "[document has not been saved]" in reply and "bigger than" in reply and "(20.0 MiB)" in reply
    assert await object_keys(s3, bucket) == []


@pytest.mark.parametrize(
    ("faults", "size", "reason"),
    [
        ({"status": 500}, 1000, "HTTP 500"),
        ({"truncate_at": 500}, 1000, "broke off"),
        ({"truncate_at": 9 * MiB}, 12 * MiB, "broke off"),
    ],
    ids=["http-error", "short-small", "short-multipart"],
)
async def test_failed_downloads_leave_nothing_behind(
    telegram: FakeTelegram, s3: Any, bucket: str, faults: dict[str, Any], size: int, reason: str
) -> None:
    """An error page, or a download that ends short, is never stored; multipart uploads are aborted."""
    await greet(telegram, 6)
    reply = await send_document(telegram, 6, os.urandom(size), file_name="broken.bin", **faults)
    assert "[document has not been saved]" in reply and reason in reply
    assert await object_keys(s3, bucket) == []
    assert await no_multipart_uploads(s3, bucket)


async def test_a_download_shorter_than_file_size_is_refused(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """A download that ends cleanly but short of file_size is not saved."""
    await greet(telegram, 7)
    reply = await send_document(telegram, 7, b"only this", file_name="short.txt", file_size=100)
    assert "[document has not been saved]" in reply and "9 of 100 bytes" in reply
    assert await object_keys(s3, bucket) == []


async def test_storage_failure_is_reported_and_the_bot_goes_on(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """When S3 refuses the upload the user is told why, and the next chat is still served."""
    await greet(telegram, 8)
    await s3.delete_bucket(Bucket=bucket)
    try:
        reply = await send_document(telegram, 8, b"data", file_name="lost.txt")
        assert "[document has not been saved]" in reply and "NoSuchBucket" in reply
        await greet(telegram, 9)
    finally:
        await s3.create_bucket(Bucket=bucket)  # so the fixture's bucket exists again


async def test_a_document_without_a_name_gets_a_generated_one(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """No file_name: a generated root-level key, which the reply names."""
    await greet(telegram, 10)
    reply = await send_document(telegram, 10, b"%PDF", file_name=None, mime_type="application/pdf")
    [key] = await object_keys(s3, bucket)
    assert key.startswith("document-") and key.endswith(".pdf")
    assert key in reply.splitlines() and "no usable name" in reply


async def test_unsafe_names_become_a_single_root_level_key(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """Path separators and dot segments never nest the key or leave the bucket root."""
    await greet(telegram, 11)
    reply = await send_document(telegram, 11, b"x", file_name="../../etc/pass\x07wd")
    assert await object_keys(s3, bucket) == ["etc_passwd"]
    assert "etc_passwd" in reply.splitlines() and "made safe" in reply


async def test_same_name_replaces_own_file_but_never_anothers_in_an_open_bot(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """A user may replace their own file; another user's same name is refused and nothing is lost."""
    await greet(telegram, 12, 13)
    await send_document(telegram, 12, b"v1", file_name="notes.txt")
    reply = await send_document(telegram, 12, b"v2", file_name="notes.txt")
    assert "[document has been saved]" in reply and "replaced" in reply
    reply = await send_document(telegram, 13, b"intruder", file_name="notes.txt")
    assert "[document has not been saved]" in reply and "taken" in reply
    assert await object_body(s3, bucket, "notes.txt") == b"v2"


async def test_in_a_closed_bot_allowed_users_may_replace_each_others_files(
    start_bot: Any, telegram: FakeTelegram, s3: Any, bucket: str, bot: RunningBot
) -> None:
    """With TGS3BOT_ALLOWED_USERS set, anyone allowed may replace any file, and is told so."""
    await bot.stop()
    await telegram.wait_polls_idle()
    await start_bot(allowed_users=frozenset({14, 15}))
    await greet(telegram, 14, 15)
    await send_document(telegram, 14, b"mine", file_name="shared.txt")
    reply = await send_document(telegram, 15, b"theirs", file_name="shared.txt")
    assert "[document has been saved]" in reply and "replaced" in reply
    assert await object_body(s3, bucket, "shared.txt") == b"theirs"


async def test_a_chat_is_answered_in_order(telegram: FakeTelegram) -> None:
    """A text sent during a transfer is answered after [document has been saved]."""
    await greet(telegram, 16)
    hold = asyncio.Event()
    doc = telegram.add_file(os.urandom(100_000), file_name="slow.bin", hold=hold)
    telegram.add_updates([updates.message(16, document=doc), updates.message(16, text="and this?")])
    await telegram.wait_download_started(doc["file_id"])
    hold.set()
    texts = await telegram.wait_for_text(16, "[document is required]")
    assert ["[document]" in t for t in texts[1:]] == [True, False, False]
    assert "[document has been saved]" in texts[2] and "[document is required]" in texts[3]


async def test_one_busy_chat_does_not_hold_up_the_others(telegram: FakeTelegram) -> None:
    """A chat sending a dozen stalled files occupies one worker; other chats are answered meanwhile."""
    await greet(telegram, 17)
    hold = asyncio.Event()
    # Bigger than the fake's first chunk (64 KiB), so the hold really stalls each download midway.
    docs = [telegram.add_file(b"z" * 100_000, file_name=f"stalled-{n}.bin", hold=hold) for n in range(12)]
    telegram.add_updates([updates.message(17, document=d) for d in docs])
    await telegram.wait_download_started(docs[0]["file_id"])
    telegram.add_updates([updates.message(chat, text="/start") for chat in (18, 19, 20, 21, 22)])
    for chat in (18, 19, 20, 21, 22):
        await telegram.wait_for_text(chat, "[greeting]")
    assert telegram.files[docs[1]["file_id"]].downloads_started == 0  # the busy chat waits its turn
    hold.set()
    await telegram.wait_for_text(17, "[document has been saved]", count=12, timeout=30)


async def test_a_failed_acknowledgement_does_not_stop_the_save(
    telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """[document] failing through all its retries (a 5xx spell) is logged; the file is saved and told."""
    await greet(telegram, 23)
    telegram.fail("sendMessage", status=502, times=FAST_BACKOFF.send_attempts)  # every try of the ack
    doc = telegram.add_file(b"saved regardless", file_name="unacknowledged.txt")
    telegram.add_update(updates.message(23, document=doc))
    texts = await telegram.wait_for_text(23, "[document has")
    assert "[document has been saved]" in texts[-1] and "unacknowledged.txt" in texts[-1].splitlines()
    assert not any("[document]" in t for t in texts)  # the fault did hit the acknowledgement
    assert await object_body(s3, bucket, "unacknowledged.txt") == b"saved regardless"


async def test_an_index_failure_after_the_put_still_says_saved(
    telegram: FakeTelegram, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object is in the bucket, so the reply says saved (no Rename button: nothing indexed); logged."""

    async def broken_index(*_: object, **__: object) -> None:
        raise RuntimeError("the state file is gone")

    monkeypatch.setattr(SqliteState, "record_file", broken_index)
    await greet(telegram, 24)
    since = len(telegram.calls)
    with structlog.testing.capture_logs() as logs:
        reply = await send_document(telegram, 24, b"in the bucket", file_name="unindexed.txt")
    assert "[document has been saved]" in reply and "unindexed.txt" in reply.splitlines()
    [outcome] = [
        c
        for c in telegram.calls[since:]
        if to_chat(c, "sendMessage", 24) and "[document has" in str(c.params)
    ]
    assert buttons(outcome) == {}
    assert await object_body(s3, bucket, "unindexed.txt") == b"in the bucket"
    assert any(e["event"] == "index_write_failed" and e["key"] == "unindexed.txt" for e in logs), logs


async def test_an_unexpected_error_with_a_document_is_answered_not_saved(
    telegram: FakeTelegram, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever breaks while a document is handled, its chat gets a [document has not been saved] outcome."""

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(documents, "safe_key", broken)
    await greet(telegram, 25)
    doc = telegram.add_file(b"x", file_name="unlucky.txt")
    telegram.add_update(updates.message(25, document=doc))
    texts = await telegram.wait_for_text(25, "[document has not been saved]")
    assert "on our side" in texts[-1]
    assert await object_keys(s3, bucket) == []
