"""The short conversations: greeting, document required, private chats only, access control."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.proxy import ConnectProxy
from tests.fakes.telegram import FakeTelegram
from tests.helpers import greet, object_keys


async def test_first_message_is_greeted_and_later_texts_require_a_document(
    bot: RunningBot, telegram: FakeTelegram
) -> None:
    """/start gets [greeting]; the next text gets [document is required] and no second greeting."""
    telegram.add_update(updates.message(1, text="/start"))
    await telegram.wait_for_text(1, "[greeting]")
    telegram.add_update(updates.message(1, text="hello"))
    texts = await telegram.wait_for_text(1, "[document is required]")
    assert len(texts) == 2
    assert "[greeting]" in texts[0] and "[document is required]" not in texts[0]


async def test_photos_stickers_voice_video_and_commands_are_not_documents(
    bot: RunningBot, telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """Anything but message.document (a photo sent as a photo included) gets [document is required]."""
    picture = telegram.add_file(b"\x89PNG...", file_name=None, mime_type="image/png")
    telegram.add_updates(
        [
            updates.message(7, text="hi"),
            updates.message(7, photo=picture),
            updates.message(7, sticker=True),
            updates.message(7, voice=True),
            updates.message(7, video=True),
            updates.message(7, text="/start"),
            updates.message(7, text="/unknown"),
        ]
    )
    texts = await telegram.wait_for_text(7, "[document is required]", count=6)
    assert len(texts) == 7
    assert await object_keys(s3, bucket) == []
    assert telegram.calls_of("getFile") == []


async def test_a_first_message_with_a_document_is_greeted_then_saved(
    bot: RunningBot, telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """The document in a chat's first message is not dropped: greeting, [document], then saved."""
    doc = telegram.add_file(b"first!", file_name="first.txt", mime_type="text/plain")
    telegram.add_update(updates.message(3, document=doc))
    texts = await telegram.wait_for_text(3, "[document has been saved]")
    assert ["[greeting]" in texts[0], "[document]" in texts[1]] == [True, True]
    assert await object_keys(s3, bucket) == ["first.txt"]


async def test_groups_and_channels_get_no_reply_and_nothing_is_saved(
    bot: RunningBot, telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """Messages from groups and supergroups are left alone, documents included."""
    doc = telegram.add_file(b"group file", file_name="group.txt")
    telegram.add_updates(
        [
            updates.message(-100, user_id=5, text="hello", chat_type="group"),
            updates.message(-200, user_id=5, document=doc, chat_type="supergroup"),
            updates.message(5, text="/start"),  # a barrier: handled after the two above were taken
        ]
    )
    await telegram.wait_for_text(5, "[greeting]")
    await bot.stop()
    assert telegram.sent(-100) == [] and telegram.sent(-200) == []
    assert await object_keys(s3, bucket) == []


async def test_outsiders_are_denied_and_nothing_is_saved(
    start_bot: Any, telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """With TGS3BOT_ALLOWED_USERS set, others get [access denied], no greeting and no [document]."""
    await start_bot(allowed_users=frozenset({1}))
    doc = telegram.add_file(b"secret", file_name="outsider.txt")
    telegram.add_updates([updates.message(2, text="/start"), updates.message(2, document=doc)])
    texts = await telegram.wait_for_text(2, "[access denied]", count=2)
    assert not any("[greeting]" in t or "[document]" in t for t in texts)
    await greet(telegram, 1)
    assert await object_keys(s3, bucket) == []
    assert telegram.calls_of("getFile") == []


async def test_other_update_kinds_are_skipped_and_confirmed(bot: RunningBot, telegram: FakeTelegram) -> None:
    """Edited messages, chat member changes and stale buttons do not break the batch or the poller."""
    ids = telegram.add_updates(
        [
            updates.edited_message(4, message_id=1, text="edited"),
            updates.my_chat_member(4),
            updates.callback_query(4, message_id=1, data="old-button"),
            updates.message(4, text="/start"),
        ]
    )
    await telegram.wait_for_text(4, "[greeting]")
    await telegram.wait_confirmed(ids[-1] + 1)
    assert len(telegram.sent(4)) == 1
    answered = telegram.calls_of("answerCallbackQuery")
    assert len(answered) == 1


async def test_a_user_who_blocked_the_bot_is_not_retried_and_others_are_served(
    bot: RunningBot, telegram: FakeTelegram
) -> None:
    """A 403 reply is logged and dropped (one attempt), and the bot goes on serving other chats."""
    telegram.blocked_chats.add(8)
    telegram.add_updates([updates.message(8, text="/start"), updates.message(9, text="/start")])
    await telegram.wait_for_text(9, "[greeting]")
    telegram.add_update(updates.message(8, text="again"))
    telegram.add_update(updates.message(9, text="again"))
    await telegram.wait_for_text(9, "[document is required]")
    attempts = [c for c in telegram.calls_of("sendMessage") if c.params["chat_id"] == "8"]
    assert len(attempts) == 2  # one per update, never retried
    assert all(c.status == 403 for c in attempts)


async def test_rate_limited_replies_wait_and_are_delivered(bot: RunningBot, telegram: FakeTelegram) -> None:
    """A 429 on sendMessage is waited out (retry_after) and the reply still arrives."""
    telegram.fail("sendMessage", status=429, retry_after=1, times=1)
    telegram.add_update(updates.message(11, text="/start"))
    await telegram.wait_for_text(11, "[greeting]")
    failed, delivered = telegram.calls_of("sendMessage")[:2]
    assert failed.status == 429
    assert delivered.at - failed.at >= 0.9


async def test_the_bot_api_is_reached_through_the_configured_proxy(
    start_bot: Any, telegram: FakeTelegram, s3: Any, bucket: str
) -> None:
    """With TGS3BOT_TELEGRAM_PROXY set, Bot API calls and file downloads go through the proxy."""
    async with ConnectProxy() as proxy:
        bot = await start_bot(telegram_proxy=proxy.url)
        doc = telegram.add_file(b"via proxy", file_name="proxied.txt")
        telegram.add_update(updates.message(30, document=doc))
        await telegram.wait_for_text(30, "[document has been saved]")
        assert await object_keys(s3, bucket) == ["proxied.txt"]
        assert proxy.targets
        assert set(proxy.targets) == {telegram.base_url.removeprefix("http://")}
        await bot.stop()
