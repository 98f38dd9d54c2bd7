"""Pure builders of Bot API update dicts for tests.

Each builder returns a dict without ``update_id``: ``FakeTelegram.add_update`` assigns it. The
shapes are the ones ``aiogram.types.Update.model_validate`` accepts.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Literal

BOT_ID = 123456789
BOT_USERNAME = "tgs3_test_bot"
MemberStatus = Literal["member", "left", "kicked"]

_message_ids = itertools.count(10_000)
_media_ids = itertools.count(1)


def bot_user(bot_id: int = BOT_ID, username: str = BOT_USERNAME) -> dict[str, Any]:
    """The bot's own User dict, as getMe and the bot's messages carry it."""
    return {
        "id": bot_id,
        "is_bot": True,
        "first_name": "tgs3bot test",
        "username": username,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def user(user_id: int) -> dict[str, Any]:
    """A human User dict."""
    return {"id": user_id, "is_bot": False, "first_name": f"User {user_id}", "username": f"u{user_id}"}


def chat(chat_id: int, chat_type: str | None = None) -> dict[str, Any]:
    """A Chat dict; the type defaults to private for positive ids and group otherwise."""
    kind = chat_type or ("private" if chat_id > 0 else "group")
    if kind == "private":
        return {"id": chat_id, "type": kind, "first_name": f"User {chat_id}"}
    return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}


def _media(prefix: str) -> dict[str, Any]:
    """Fresh file_id/file_unique_id keys for media the bot is not expected to download."""
    n = next(_media_ids)
    return {"file_id": f"{prefix}-{n}", "file_unique_id": f"u{prefix}{n}"}


def _photo_sizes(photo: bool | dict[str, Any]) -> list[dict[str, Any]]:
    """Two PhotoSize dicts; the largest reuses an ``add_file`` dict's ids when one is given."""
    big = {**_media("photo"), "width": 1280, "height": 960, "file_size": 200_000}
    if isinstance(photo, dict):
        big |= {k: photo[k] for k in ("file_id", "file_unique_id", "file_size") if k in photo}
    return [{**_media("thumb"), "width": 90, "height": 68, "file_size": 1_500}, big]


def _attachments(
    document: dict[str, Any] | None,
    photo: bool | dict[str, Any],
    sticker: bool,
    voice: bool,
    video: bool,
) -> dict[str, Any]:
    """The media keys of a Message."""
    media: dict[str, Any] = {}
    if document is not None:
        media["document"] = document
    if photo:
        media["photo"] = _photo_sizes(photo)
    if sticker:
        shape = {"type": "regular", "width": 512, "height": 512, "emoji": "👍"}
        media["sticker"] = {**_media("sticker"), **shape, "is_animated": False, "is_video": False}
    if voice:
        media["voice"] = {**_media("voice"), "duration": 3, "mime_type": "audio/ogg"}
    if video:
        media["video"] = {**_media("video"), "width": 640, "height": 360, "duration": 5}
    return media


def message(
    chat_id: int,
    *,
    user_id: int | None = None,
    text: str | None = None,
    document: dict[str, Any] | None = None,
    photo: bool | dict[str, Any] = False,
    sticker: bool = False,
    voice: bool = False,
    video: bool = False,
    chat_type: str = "private",
    message_id: int | None = None,
    caption: str | None = None,
) -> dict[str, Any]:
    """A ``message`` update from a user (``user_id`` defaults to ``chat_id``)."""
    msg: dict[str, Any] = {
        "message_id": next(_message_ids) if message_id is None else message_id,
        "date": int(time.time()),
        "chat": chat(chat_id, chat_type),
        "from": user(chat_id if user_id is None else user_id),
    }
    if text is not None:
        msg["text"] = text
    if caption is not None:
        msg["caption"] = caption
    return {"message": msg | _attachments(document, photo, sticker, voice, video)}


def edited_message(
    chat_id: int,
    *,
    message_id: int,
    text: str,
    user_id: int | None = None,
    chat_type: str = "private",
) -> dict[str, Any]:
    """An ``edited_message`` update: a user changed the text of an earlier message."""
    msg = message(chat_id, user_id=user_id, text=text, chat_type=chat_type, message_id=message_id)
    return {"edited_message": msg["message"] | {"edit_date": int(time.time())}}


def callback_query(
    chat_id: int,
    message_id: int,
    data: str,
    *,
    user_id: int | None = None,
    message_text: str = "…",
    bot_id: int = BOT_ID,
) -> dict[str, Any]:
    """A ``callback_query`` update: a user pressed an inline button under the bot's message."""
    bot_message = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat(chat_id),
        "from": bot_user(bot_id),
        "text": message_text,
    }
    query = {
        "id": f"cq-{next(_media_ids)}",
        "from": user(chat_id if user_id is None else user_id),
        "chat_instance": f"ci-{chat_id}",
        "message": bot_message,
        "data": data,
    }
    return {"callback_query": query}


def _member(status: MemberStatus, member: dict[str, Any]) -> dict[str, Any]:
    """A ChatMember dict of one of the simple statuses."""
    extra = {"until_date": 0} if status == "kicked" else {}
    return {"status": status, "user": member, **extra}


def my_chat_member(
    chat_id: int,
    *,
    user_id: int | None = None,
    old_status: MemberStatus = "member",
    new_status: MemberStatus = "kicked",
    bot_id: int = BOT_ID,
) -> dict[str, Any]:
    """A ``my_chat_member`` update; the default is the user blocking the bot."""
    me = bot_user(bot_id)
    update = {
        "chat": chat(chat_id),
        "from": user(chat_id if user_id is None else user_id),
        "date": int(time.time()),
        "old_chat_member": _member(old_status, me),
        "new_chat_member": _member(new_status, me),
    }
    return {"my_chat_member": update}
