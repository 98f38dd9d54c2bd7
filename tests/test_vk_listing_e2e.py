"""``/files`` on VK, end to end: the real ``tgs3bot run`` against the fake VK and Telegram.

VK has no command menu, so a VK user types ``/files`` as text; the list comes as one message whose
callback buttons page through it: a press (``message_event``) is answered with
``messages.sendMessageEventAnswer`` and the list message edited in place with ``messages.edit``.
The assertions name files present or absent, never the list's layout, and find the paging
buttons by their labels (``Next``/``Older``, ``Prev``/``Newer``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk, VkMessage
from tests.processes import REPLY_TIMEOUT_S, Launch, launch
from tests.test_vk_e2e import SAVED, USER, both_env, start_both, stop_cleanly, vk, vk_doc

pytestmark = pytest.mark.e2e
__all__ = ["launch", "vk"]  # the fixtures, used by the tests below

OTHER_VK_USER = USER + 1
MINE = [f"vk-file-{n:02}.txt" for n in range(1, 13)]  # saved in this order: 12 is the newest
THEIRS = ["telegram-same-number.txt", "other-vk-user.txt"]
OLDER, NEWER = ("Next", "Older"), ("Prev", "Newer")
PAGE = 8  # VK shows at most 10 buttons under a message: a 🔗 button per line, then Prev and Next


def paging_button(message: VkMessage, words: tuple[str, ...]) -> str | None:
    """The data of the message's one button whose label holds one of ``words``; None if there is none."""
    found = [data for label, data in message.buttons().items() if any(w in label for w in words)]
    assert len(found) <= 1, f"several {words} buttons: {message.buttons()!r}"
    return found[0] if found else None


def names_in(text: str, names: list[str]) -> list[str]:
    """Which of ``names`` the text shows."""
    return [name for name in names if name in text]


async def save_mine_and_theirs(vk: FakeVk, telegram: FakeTelegram) -> None:
    """VK user 7 saves twelve docs (two messages); Telegram user 7 and VK user 8 save one each."""
    for batch in (MINE[:6], MINE[6:]):  # several docs in one message: saved one by one, in order
        vk.send_message(USER, attachments=[vk_doc(vk, name.encode(), name) for name in batch])
    vk.send_message(OTHER_VK_USER, attachments=[vk_doc(vk, b"theirs", THEIRS[1])])
    telegram.add_update(updates.message(USER, text="/start"))
    doc = telegram.add_file(b"theirs", file_name=THEIRS[0], mime_type="text/plain")
    telegram.add_update(updates.message(USER, document=doc))
    await vk.wait_for_text(USER, SAVED, count=len(MINE), timeout=REPLY_TIMEOUT_S)
    await vk.wait_for_text(OTHER_VK_USER, SAVED, timeout=REPLY_TIMEOUT_S)
    await telegram.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)


async def request_list(vk: FakeVk) -> VkMessage:
    """Type ``/files`` and return the list message (the first new one naming a saved file)."""
    before = len(vk.messages)
    vk.send_message(USER, "/files")

    def listed() -> list[VkMessage]:
        return [m for m in vk.messages[before:] if m.peer_id == USER and names_in(m.text, MINE)]

    await vk.wait_until(lambda: bool(listed()), "the /files list", timeout=REPLY_TIMEOUT_S)
    return listed()[0]


async def press_and_wait_edit(vk: FakeVk, message: VkMessage, data: str) -> str:
    """Press a button of the list; wait for the press to be answered and the list edited; its new text."""
    since, edits = len(vk.calls), len(message.edits)
    event_id = vk.press_button(USER, data, message.conversation_message_id)
    answer = await vk.wait_for_call(
        lambda c: c.method == "messages.sendMessageEventAnswer" and c.params.get("event_id") == event_id,
        since=since,
        timeout=REPLY_TIMEOUT_S,
    )
    assert answer.status == 200
    assert (int(answer.params["user_id"]), int(answer.params["peer_id"])) == (USER, USER)
    await vk.wait_until(lambda: len(message.edits) > edits, "the list edited", timeout=REPLY_TIMEOUT_S)
    [edit] = [c for c in vk.calls[since:] if c.method == "messages.edit"]
    assert edit.status == 200
    where = (int(edit.params["peer_id"]), int(edit.params["conversation_message_id"]))
    assert where == (USER, message.conversation_message_id)
    return message.edits[-1]


async def test_a_vk_user_lists_their_own_files_and_pages_with_callback_buttons(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """/files typed on VK lists that VK user's files only; Next/Prev edit the list in place."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    await save_mine_and_theirs(vk, telegram)

    listing = await request_list(vk)
    assert names_in(listing.text, MINE) == MINE[-PAGE:], listing.text  # the newest page
    assert names_in(listing.text, THEIRS) == []
    assert paging_button(listing, NEWER) is None
    older = paging_button(listing, OLDER)
    assert older is not None, f"no Next button on the first page: {listing.buttons()!r}"

    second = await press_and_wait_edit(vk, listing, older)
    assert names_in(second, MINE) == MINE[:-PAGE], second
    assert names_in(second, THEIRS) == []
    assert paging_button(listing, OLDER) is None  # the keyboard was edited too: nothing older
    newer = paging_button(listing, NEWER)
    assert newer is not None, f"no Prev button on the second page: {listing.buttons()!r}"

    back = await press_and_wait_edit(vk, listing, newer)
    assert names_in(back, MINE) == MINE[-PAGE:], back
    assert paging_button(listing, OLDER) is not None and paging_button(listing, NEWER) is None
    since_list = [m for m in vk.messages if m.peer_id == USER and m.message_id >= listing.message_id]
    assert since_list == [listing]  # paging edited the list; it sent nothing new
    await stop_cleanly(bot)
