"""Share links and the same file again on VK: the real ``tgs3bot run`` against the fake VK and moto.

The buttons are platform-neutral, so VK gets them through its callback keyboards; ownership is
the (platform, user) pair, so the Telegram user of the same number is refused; a VK doc's id
(``owner_id_id``) is what "the same file again" goes by.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVk
from tests.helpers import greet, object_keys, read_object
from tests.processes import REPLY_TIMEOUT_S, Launch, launch
from tests.test_vk_e2e import SAVED, USER, both_env, start_both, stop_cleanly, vk, vk_doc

pytestmark = pytest.mark.e2e
__all__ = ["launch", "vk"]  # the fixtures, used by the tests below

URL = re.compile(r"https?://\S+")
LINK_TEXT = "Download link"
NOT_YOURS = "You can get links only to the files you saved."


async def download(url: str) -> tuple[int, bytes]:
    """GET the link as a browser would."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read()


async def test_a_vk_user_gets_a_link_and_the_telegram_user_of_that_number_does_not(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str
) -> None:
    """🔗 Link under a VK save answers the VK owner with a working link; the same button data
    pressed by Telegram user 7 is refused with the not-yours notice and no link."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    vk.send_message(USER, attachments=[vk_doc(vk, b"vk's report", "report.txt")])
    await vk.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)
    saved = vk.last_message(USER, SAVED)
    link = saved.button_data("Link")

    await greet(telegram, USER)
    press = updates.callback_query(USER, 1, link)
    telegram.add_update(press)
    answer = await telegram.wait_for_call(
        lambda c: (
            c.method == "answerCallbackQuery"
            and c.params.get("callback_query_id") == press["callback_query"]["id"]
        )
    )
    assert answer.params.get("text") == NOT_YOURS
    assert not [t for t in telegram.sent(USER) if LINK_TEXT in t]

    vk.press_button(USER, link, saved.conversation_message_id)
    texts = await vk.wait_for_text(USER, LINK_TEXT, timeout=REPLY_TIMEOUT_S)
    [text] = [t for t in texts if LINK_TEXT in t]
    found = URL.search(text)
    assert found is not None and "report.txt" in text
    assert await download(found.group(0)) == (200, b"vk's report")
    await vk.wait_for_call(lambda c: c.method == "messages.sendMessageEventAnswer", timeout=REPLY_TIMEOUT_S)
    await stop_cleanly(bot)


async def test_the_same_vk_doc_again_is_already_there_and_then_copied(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str, s3: Any
) -> None:
    """The very same doc sent again is not downloaded: already there under its name, and after a
    rename copied back under it, written as a fresh VK save (platform vk, the sender's id)."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    attachment = vk_doc(vk, b"the draft", "draft.txt")
    [doc] = vk.docs.values()
    vk.send_message(USER, attachments=[attachment])
    await vk.wait_for_text(USER, SAVED, timeout=REPLY_TIMEOUT_S)
    vk.send_message(USER, attachments=[attachment])
    texts = await vk.wait_for_text(USER, SAVED, count=2, timeout=REPLY_TIMEOUT_S)
    assert "already in the bucket" in texts[-1] and "draft.txt" in texts[-1].splitlines()

    saved = vk.last_message(USER, SAVED)
    vk.press_button(USER, saved.button_data("Rename"), saved.conversation_message_id)
    await vk.wait_for_text(USER, "Send the new name", timeout=REPLY_TIMEOUT_S)
    vk.send_message(USER, "final.txt")
    await vk.wait_for_text(USER, "[document has been renamed]", timeout=REPLY_TIMEOUT_S)
    vk.send_message(USER, attachments=[attachment])
    texts = await vk.wait_for_text(USER, SAVED, count=3, timeout=REPLY_TIMEOUT_S)
    assert "already" not in texts[-1] and "draft.txt" in texts[-1].splitlines()

    assert doc.downloads_started == 1
    assert await object_keys(s3, bucket) == ["draft.txt", "final.txt"]
    body, stored = await read_object(s3, bucket, "draft.txt")
    assert body == b"the draft"
    assert stored["Metadata"]["platform"] == "vk" and stored["Metadata"]["user-id"] == str(USER)
    assert stored["Metadata"]["file-unique-id"] == f"{doc.owner_id}_{doc.doc_id}"
    await stop_cleanly(bot)


async def test_files_on_vk_has_a_link_per_line_and_paging_within_ten_buttons(
    launch: Launch, telegram: FakeTelegram, vk: FakeVk, bucket: str, moto_endpoint: str
) -> None:
    """Nine VK files: the first page has eight lines, a 🔗 button for each and Next, ten in all."""
    bot = await start_both(launch, both_env(telegram, vk, bucket, moto_endpoint), telegram, vk)
    for n in range(9):
        vk.send_message(USER, attachments=[vk_doc(vk, b"x" * (n + 1), f"file{n}.txt")])
    await vk.wait_for_text(USER, SAVED, count=9, timeout=REPLY_TIMEOUT_S)
    vk.send_message(USER, "/files")
    await vk.wait_for_text(USER, "newest first", timeout=REPLY_TIMEOUT_S)
    listing = vk.last_message(USER, "newest first")
    assert sum(line[:2] in {f"{n}." for n in range(1, 9)} for line in listing.text.splitlines()) == 8
    labels = list(listing.buttons())
    assert labels == [f"🔗 {n}" for n in range(1, 9)] + ["Next »"]
    await stop_cleanly(bot)
