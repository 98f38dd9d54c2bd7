"""/files: the saved-files index, newest first, ten a page, Prev/Next editing the same message, privacy."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wire import Call
from tests.helpers import (
    button_data,
    buttons,
    greet,
    message_id_of,
    press_answered,
    reply_to,
    to_chat,
)

DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
StartBot = Callable[..., Awaitable[RunningBot]]


def shown(text: str, names: list[str]) -> list[str]:
    """The names that occur in ``text``, in the order they occur there."""
    return sorted((n for n in names if n in text), key=text.index)


def line_of(text: str, name: str) -> str:
    """The line of a listing that names ``name``."""
    return next(line for line in text.splitlines() if name in line)


async def save_all(telegram: FakeTelegram, chat_id: int, files: dict[str, bytes]) -> list[Call]:
    """Send the files as documents in one batch, wait until all are saved; return the saved replies."""
    since = len(telegram.calls)
    before = sum("[document has been saved]" in t for t in telegram.sent(chat_id))
    docs = [telegram.add_file(content, file_name=name) for name, content in files.items()]
    telegram.add_updates([updates.message(chat_id, document=doc) for doc in docs])
    await telegram.wait_for_text(chat_id, "[document has been saved]", count=before + len(files), timeout=60)
    return [
        c
        for c in telegram.calls[since:]
        if to_chat(c, "sendMessage", chat_id) and "[document has been saved]" in c.params["text"]
    ]


async def list_files(telegram: FakeTelegram, chat_id: int, user_id: int | None = None) -> Call:
    """Send /files and return the bot's answer."""
    return await reply_to(
        telegram, chat_id, updates.message(chat_id, user_id=user_id, text="/files"), "sendMessage"
    )


async def test_files_pages_through_25_documents_newest_first(telegram: FakeTelegram, bot: RunningBot) -> None:
    """/files shows the 10 newest with name, size and date; Next/Prev edit that same message page by page."""
    chat = 1
    await greet(telegram, chat)
    names = [f"report-{n:02d}.txt" for n in range(1, 26)]
    await save_all(telegram, chat, {name: os.urandom(n * 1024 + 512) for n, name in enumerate(names, 1)})
    newest_first = names[::-1]

    first = await list_files(telegram, chat)
    text = first.params["text"]
    assert shown(text, names) == newest_first[:10]
    for n in range(16, 26):  # file n has n KiB + 512 bytes
        line = line_of(text, f"report-{n:02d}.txt")
        assert f"{n}.5 KiB" in line and DATE.search(line), line
    assert [w for w in ("Prev", "Next") if any(w in b for b in buttons(first))] == ["Next"]
    list_id = message_id_of(telegram, first)

    async def press(word: str, shown_by: Call) -> Call:
        since = len(telegram.calls)
        press = updates.callback_query(chat, list_id, button_data(shown_by, word))
        telegram.add_update(press)
        edit = await telegram.wait_for_call(
            lambda c: to_chat(c, "editMessageText", chat) or to_chat(c, "sendMessage", chat), since=since
        )
        assert edit.method == "editMessageText", edit.describe()  # the list is edited, not sent again
        assert str(edit.params["message_id"]) == str(list_id)
        return edit

    second = await press("Next", first)
    assert shown(second.params["text"], names) == newest_first[10:20]
    assert "6.5 KiB" in line_of(second.params["text"], "report-06.txt")
    assert [w for w in ("Prev", "Next") if any(w in b for b in buttons(second))] == ["Prev", "Next"]

    third = await press("Next", second)
    assert shown(third.params["text"], names) == newest_first[20:]
    assert [w for w in ("Prev", "Next") if any(w in b for b in buttons(third))] == ["Prev"]

    back = await press("Prev", third)
    assert shown(back.params["text"], names) == newest_first[10:20]


async def test_in_an_open_bot_a_user_sees_only_their_own_files(
    telegram: FakeTelegram, bot: RunningBot
) -> None:
    """With no allowlist, /files never shows a user the names of files another user saved."""
    alice, bob = 2, 3
    await greet(telegram, alice, bob)
    alices = ["alice-secret-plan.txt", "alice-diary.txt"]
    await save_all(telegram, alice, dict.fromkeys(alices, b"private"))
    await save_all(telegram, bob, {"bob-notes.txt": b"mine"})

    bobs_list = (await list_files(telegram, bob)).params["text"]
    assert "bob-notes.txt" in bobs_list
    assert shown(bobs_list, alices) == []
    alices_list = (await list_files(telegram, alice)).params["text"]
    assert shown(alices_list, alices) == alices[::-1] and "bob-notes.txt" not in alices_list


async def test_in_a_closed_bot_everyone_allowed_sees_every_file(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    """With TGS3BOT_ALLOWED_USERS set, /files of one allowed user lists what another allowed user saved."""
    alice, bob = 4, 5
    await start_bot(allowed_users=frozenset({alice, bob}))
    await greet(telegram, alice, bob)
    await save_all(telegram, alice, {"team-budget.xlsx": b"1", "team-roadmap.md": b"2"})

    bobs_list = (await list_files(telegram, bob)).params["text"]
    assert shown(bobs_list, ["team-budget.xlsx", "team-roadmap.md"]) == [
        "team-roadmap.md",
        "team-budget.xlsx",
    ]


async def test_an_outsider_is_refused_the_list_and_its_page_buttons(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    """In a closed bot an outsider's /files and forged page button get [access denied] and no list."""
    insider, outsider = 6, 7
    await start_bot(allowed_users=frozenset({insider}))
    await greet(telegram, insider)
    names = [f"internal-{n:02d}.txt" for n in range(1, 12)]  # two pages
    await save_all(telegram, insider, dict.fromkeys(names, b"x"))
    page_data = button_data(await list_files(telegram, insider), "Next")

    since = len(telegram.calls)
    denied = await list_files(telegram, outsider)
    assert "[access denied]" in denied.params["text"]
    forged = await reply_to(telegram, outsider, updates.callback_query(outsider, 1, page_data), "sendMessage")
    assert "[access denied]" in forged.params["text"]
    to_outsider = [c for c in telegram.calls[since:] if str(c.params.get("chat_id")) == str(outsider)]
    assert [c.method for c in to_outsider if c.method != "answerCallbackQuery"] == ["sendMessage"] * 2
    assert not any(shown(str(c.params.get("text", "")), names) for c in to_outsider)
    assert telegram.calls_of("editMessageText") == []


async def test_an_object_deleted_from_the_bucket_shows_as_gone_then_drops_out(
    telegram: FakeTelegram, bot: RunningBot, s3: Any, bucket: str
) -> None:
    """A file deleted behind the bot's back is never listed as present, and the next listing omits it."""
    chat = 8
    await greet(telegram, chat)
    await save_all(telegram, chat, {"keep-1.txt": b"a", "doomed.txt": b"b", "keep-2.txt": b"c"})
    await s3.delete_object(Bucket=bucket, Key="doomed.txt")

    text = (await list_files(telegram, chat)).params["text"]
    assert shown(text, ["keep-1.txt", "keep-2.txt"]) == ["keep-2.txt", "keep-1.txt"]
    if "doomed.txt" in text:  # shown as gone rather than dropped at once: either is fine
        line = line_of(text, "doomed.txt")
        assert "gone" in line.lower() and not DATE.search(line), line
    again = (await list_files(telegram, chat)).params["text"]
    assert "doomed.txt" not in again
    assert shown(again, ["keep-1.txt", "keep-2.txt"]) == ["keep-2.txt", "keep-1.txt"]


async def test_an_empty_listing_says_there_are_no_files(telegram: FakeTelegram, bot: RunningBot) -> None:
    """/files before any save answers that there are no files, without page buttons."""
    chat = 9
    await greet(telegram, chat)
    answer = await list_files(telegram, chat)
    assert re.search(r"\bno (saved )?files\b", answer.params["text"], re.IGNORECASE), answer.params["text"]
    assert "[document is required]" not in answer.params["text"] and buttons(answer) == {}


async def test_a_renamed_file_is_listed_under_its_new_name(telegram: FakeTelegram, bot: RunningBot) -> None:
    """After a rename through the Rename button, /files shows the new name and not the old one."""
    chat = 10
    await greet(telegram, chat)
    [saved] = await save_all(telegram, chat, {"draft.txt": b"text"})
    press = updates.callback_query(chat, message_id_of(telegram, saved), button_data(saved, "Rename"))
    prompt = await reply_to(telegram, chat, press, "sendMessage")
    assert (
        "draft.txt" in prompt.params["text"]
        and "[document has not been renamed]" not in prompt.params["text"]
    )
    renamed = await reply_to(telegram, chat, updates.message(chat, text="final.txt"), "sendMessage")
    assert "[document has been renamed]" in renamed.params["text"]

    text = (await list_files(telegram, chat)).params["text"]
    assert "final.txt" in text and "draft.txt" not in text


async def test_paging_lists_every_remaining_file_once_when_gone_ones_drop_out(
    telegram: FakeTelegram, bot: RunningBot, s3: Any, bucket: str
) -> None:
    """25 files, four deleted from the bucket: Next to the end and Prev back list each remaining one once."""
    chat = 11
    await greet(telegram, chat)
    names = [f"doc-{n:02d}.txt" for n in range(1, 26)]
    await save_all(telegram, chat, dict.fromkeys(names, b"x"))
    deleted = ["doc-25.txt", "doc-22.txt", "doc-16.txt", "doc-09.txt"]  # on the first and second pages
    for name in deleted:
        await s3.delete_object(Bucket=bucket, Key=name)
    remaining = [n for n in names[::-1] if n not in deleted]

    def present(text: str) -> list[str]:
        return [n for n in shown(text, names) if "gone" not in line_of(text, n)]

    page = await list_files(telegram, chat)
    seen = present(page.params["text"])
    list_id = message_id_of(telegram, page)
    while "Next" in " ".join(buttons(page)):
        press = updates.callback_query(chat, list_id, button_data(page, "Next"))
        page = await reply_to(telegram, chat, press, "editMessageText")
        seen += present(page.params["text"])
    assert seen == remaining  # each exactly once, newest first
    back = set(seen[-5:])  # the last page: 05..01
    while "Prev" in " ".join(buttons(page)):
        press = updates.callback_query(chat, list_id, button_data(page, "Prev"))
        page = await reply_to(telegram, chat, press, "editMessageText")
        back |= set(present(page.params["text"]))
    assert back == set(remaining)  # paging back skips nothing either
    assert present(page.params["text"]) == remaining[:10]  # and ends on the first page: the ten newest


async def test_forged_page_buttons_are_answered_as_stale(telegram: FakeTelegram, bot: RunningBot) -> None:
    """A huge page number, old-style or malformed data: the press is answered, no apology, no edit."""
    chat = 12
    await greet(telegram, chat)
    await save_all(telegram, chat, {"one.txt": b"1"})
    forged = [
        "files:" + "9" * 57,
        "files:1",
        "files:next:1:1700000000.5:" + "9" * 19,
        "files:next:1:nan:1",
        "files:next:1:1e999:1",
        "files:prev:0:1700000000.5:1",
        "files:next:1:1e+e:1",
    ]
    for data in forged:
        await press_answered(telegram, chat, data)
    assert not any("went wrong" in t for t in telegram.sent(chat))
    assert telegram.calls_of("editMessageText") == []
    assert "one.txt" in (await list_files(telegram, chat)).params["text"]  # and the bot carries on
