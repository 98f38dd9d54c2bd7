"""VkPlatform's replies against the fake VK API: random_id, retries, refusals, buttons, the token."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from pydantic import SecretStr

from tests.fakes.vk import TOKEN, FakeVk
from tests.vk_fixtures import FAST, USER, MakePlatform, document_of, make_platform, platform, read_all, vk
from tgs3bot.errors import RetryAfter, StartupError, TransferError
from tgs3bot.events import Button
from tgs3bot.platforms.vk import VkPlatform
from tgs3bot.platforms.vk_api import VkApi

__all__ = ["make_platform", "platform", "vk"]  # fixtures


# -- replies ---------------------------------------------------------------------------------------


async def test_send_text_with_reply_and_buttons(vk: FakeVk, platform: VkPlatform) -> None:
    """A reply is a forward with is_reply; buttons are inline callbacks; the id edits the message."""
    user_message = vk.send_message(USER, "hi")
    buttons = ((Button("✏️ Rename", "rn:1"), Button("Keep this name", "kp:1")),)
    cmid = await platform.send_text(
        USER, "[document] ok", reply_to=user_message["conversation_message_id"], buttons=buttons
    )
    assert cmid is not None
    sent = vk.message(USER, cmid)
    assert (sent.text, sent.reply_to) == ("[document] ok", user_message["conversation_message_id"])
    assert sent.keyboard is not None
    assert sent.buttons() == {"✏️ Rename": "rn:1", "Keep this name": "kp:1"}
    assert vk.last_message(USER, "[document]").button_data("Rename") == "rn:1"
    assert await platform.edit_text(USER, cmid, "50 %") is True
    assert vk.chat_view(USER) == ["50 %"]
    assert await platform.edit_text(USER, cmid + 100, "nowhere") is False


async def test_random_id_unique_per_reply(vk: FakeVk, platform: VkPlatform) -> None:
    """Every reply carries its own random_id, so VK keeps each of them."""
    for n in range(5):
        await platform.send_text(USER, f"reply {n}")
    random_ids = [int(c.params["random_id"]) for c in vk.calls_of("messages.send")]
    assert len(set(random_ids)) == 5
    assert vk.texts(USER) == [f"reply {n}" for n in range(5)]


@pytest.mark.parametrize("code", [6, 9, 10])
async def test_rate_and_flood_errors_are_retried_with_the_same_random_id(
    vk: FakeVk, platform: VkPlatform, code: int
) -> None:
    """Errors 6 and 9 (and VK's internal 10) wait and retry the same reply, with the same random_id."""
    vk.fail("messages.send", code, times=2)
    cmid = await platform.send_text(USER, "[greeting] hi")
    calls = vk.calls_of("messages.send")
    assert [c.status for c in calls] == [code, code, 200]
    assert len({c.params["random_id"] for c in calls}) == 1
    assert cmid is not None
    assert vk.texts(USER) == ["[greeting] hi"]


async def test_retry_after_a_lost_answer_keeps_one_message(vk: FakeVk, platform: VkPlatform) -> None:
    """A reply VK took whose retry carries the same random_id stays one message (VK's dedup)."""
    await platform.send_text(USER, "once")
    first = vk.calls_of("messages.send")[0]
    replay = VkApi(SecretStr(TOKEN), vk.api_url)  # the exact request a retry after a lost answer sends
    try:
        answer = await replay.call("messages.send", first.params)
    finally:
        await replay.close()
    assert vk.texts(USER) == ["once"]
    assert answer[0]["conversation_message_id"] == vk.messages[0].conversation_message_id


async def test_rate_limit_that_lasts_is_raised(vk: FakeVk, platform: VkPlatform) -> None:
    """Retries are bounded: a rate limit that does not end is raised after send_attempts."""
    vk.fail("messages.send", 6, times=None)
    with pytest.raises(RetryAfter):
        await platform.send_text(USER, "never")
    assert len(vk.calls_of("messages.send")) == FAST.send_attempts


@pytest.mark.parametrize("code", [901, 902])
async def test_no_permission_to_write_is_dropped(vk: FakeVk, platform: VkPlatform, code: int) -> None:
    """901/902 (no permission to write) are logged and dropped: send_text returns None, once."""
    (vk.blocked_peers if code == 901 else vk.private_peers).add(USER)
    with structlog.testing.capture_logs() as logs:
        assert await platform.send_text(USER, "hello") is None
    assert len(vk.calls_of("messages.send")) == 1
    assert [e["event"] for e in logs] == ["reply_dropped"]
    assert f"VK error {code}" in logs[0]["reason"]


async def test_answer_callback(vk: FakeVk, platform: VkPlatform) -> None:
    """A button press is answered with its event, user and peer; a text goes as a snackbar."""
    vk.press_button(USER, "rn:1", cmid=3)
    (event,) = (await platform.get_updates(None, timeout_s=0)).events
    assert event.callback_id is not None
    await platform.answer_callback(event.callback_id)
    await platform.answer_callback(event.callback_id, "The name stays.")
    plain, snackbar = vk.calls_of("messages.sendMessageEventAnswer")
    assert (int(plain.params["user_id"]), int(plain.params["peer_id"])) == (USER, USER)
    assert "event_data" not in plain.params
    assert snackbar.params["event_data"] == {"type": "show_snackbar", "text": "The name stays."}


async def test_unreadable_callback_id_is_not_sent(vk: FakeVk, platform: VkPlatform) -> None:
    """A callback id VkPlatform did not make is logged and never sent to VK."""
    await platform.answer_callback("not-a-vk-callback")
    assert vk.calls_of("messages.sendMessageEventAnswer") == []


async def test_set_commands_is_a_no_op(vk: FakeVk, platform: VkPlatform) -> None:
    """VK has no command menu: set_commands calls nothing."""
    calls = len(vk.calls)
    await platform.set_commands([("help", "what this bot does")])
    assert len(vk.calls) == calls


# -- the token -------------------------------------------------------------------------------------


async def test_token_never_in_logs_errors_or_replies(
    vk: FakeVk, make_platform: MakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    """Through retries, refusals, failed starts and downloads, no log line or reply holds the token."""
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with structlog.testing.capture_logs() as logs:
        platform = await make_platform()
        vk.fail("messages.send", 6, times=2)
        await platform.send_text(USER, "[greeting] hi")
        vk.blocked_peers.add(USER + 1)
        await platform.send_text(USER + 1, "dropped")
        vk.fail("messages.edit", 100)
        await platform.edit_text(USER, 1, "x")
        document = await document_of(vk, platform, vk.add_doc(b"q" * 100_000, truncate_at=10))
        try:
            await read_all(platform, document)
        except TransferError as exc:
            errors.append(repr(exc))
        vk.token_group_id = 1
        try:
            await make_platform()
        except StartupError as exc:
            errors.append(repr(exc))
    seen = [json.dumps(logs, default=str), caplog.text, *errors, *vk.texts(USER), *vk.texts(USER + 1)]
    assert logs and errors
    assert not [text for text in seen if TOKEN in text]
    assert vk.token_in_query == []
