"""The message side of the fake Bot API: sendMessage and editMessageText, checked as Telegram
checks them, and the chats that refuse messages. ``FakeTelegram`` mixes it in."""

from __future__ import annotations

import time
from typing import Any

from .updates import chat
from .wire import ApiError, Json

MAX_TEXT_LENGTH = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


class MessageMethods:
    """sendMessage and editMessageText of ``FakeTelegram``, and what they leave in ``_texts``."""

    bot_user: Json
    blocked_chats: set[int]
    missing_chats: set[int]
    _texts: dict[tuple[int, int], tuple[str, Any]]
    _next_message_id: int

    def _chat_id(self, params: dict[str, Any]) -> int:
        """The target chat of a send/edit, or the error Telegram gives for it."""
        try:
            chat_id = int(params.get("chat_id", ""))
        except ValueError:
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat_id in self.blocked_chats:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing_chats:
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    @staticmethod
    def _text(params: dict[str, Any]) -> str:
        """The message text, checked like Telegram does."""
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    def _message(self, chat_id: int, message_id: int, text: str, markup: Any) -> Json:
        """A Message dict sent by the bot."""
        msg: Json = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat(chat_id),
            "from": self.bot_user,
            "text": text,
        }
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        return msg

    def _send_message(self, params: dict[str, Any]) -> Json:
        """sendMessage."""
        chat_id, text = self._chat_id(params), self._text(params)
        message_id, self._next_message_id = self._next_message_id, self._next_message_id + 1
        self._texts[(chat_id, message_id)] = (text, params.get("reply_markup"))
        return self._message(chat_id, message_id, text, params.get("reply_markup"))

    def _edit_message_text(self, params: dict[str, Any]) -> Json:
        """editMessageText of one of the bot's messages."""
        chat_id, text = self._chat_id(params), self._text(params)
        key = (chat_id, int(params.get("message_id", 0)))
        if key not in self._texts:
            raise ApiError(400, "Bad Request: message to edit not found")
        if self._texts[key] == (text, params.get("reply_markup")):
            raise ApiError(400, NOT_MODIFIED)
        self._texts[key] = (text, params.get("reply_markup"))
        msg = self._message(chat_id, key[1], text, params.get("reply_markup"))
        return msg | {"edit_date": int(time.time())}
