"""Small helpers the test modules share: the bucket's contents, chats, Bot API calls, unit-test events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wire import Call
from tgs3bot.context import KeyLocks
from tgs3bot.events import Event, EventKind

# -- the bucket ------------------------------------------------------------------------------------


async def object_keys(s3: Any, bucket: str) -> list[str]:
    """The keys of every object in the bucket, sorted."""
    answer = await s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


async def read_object(s3: Any, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes of one object and the rest of get_object's answer (ContentType, Metadata…)."""
    answer: dict[str, Any] = await s3.get_object(Bucket=bucket, Key=key)
    async with answer["Body"] as stream:
        data: bytes = await stream.read()
    return data, answer


async def object_body(s3: Any, bucket: str, key: str) -> bytes:
    """The bytes of one object."""
    data, _ = await read_object(s3, bucket, key)
    return data


async def no_multipart_uploads(s3: Any, bucket: str) -> bool:
    """Whether the bucket has no multipart upload left open."""
    answer = await s3.list_multipart_uploads(Bucket=bucket)
    return not answer.get("Uploads")


# -- waiting -----------------------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    """Wait until ``check()`` is true, looking again every 50 ms, within a generous deadline.

    For state no event announces (a Redis key, a row another connection wrote).
    """
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 (Redis and SQLite cannot set an asyncio.Event)
            await asyncio.sleep(0.05)


# -- chats and Bot API calls -----------------------------------------------------------------------


async def greet(telegram: FakeTelegram, *chat_ids: int) -> None:
    """Send /start in each chat in turn and wait for its [greeting]."""
    for chat_id in chat_ids:
        telegram.add_update(updates.message(chat_id, text="/start"))
        await telegram.wait_for_text(chat_id, "[greeting]")


def to_chat(call: Call, method: str, chat_id: int) -> bool:
    """Whether ``call`` is a successful ``method`` aimed at ``chat_id``."""
    return call.method == method and call.ok and str(call.params.get("chat_id")) == str(chat_id)


def message_id_of(telegram: FakeTelegram, call: Call) -> int:
    """The id the fake gave the message of a sendMessage call (ids go 1, 2, 3… over successful sends)."""
    sends = [c for c in telegram.calls if c.method == "sendMessage" and c.ok]
    return next(n for n, c in enumerate(sends, start=1) if c is call)


def buttons(call: Call) -> dict[str, str]:
    """The inline buttons of a sendMessage/editMessageText call: text → callback_data."""
    markup = call.params.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


def button_data(call: Call, word: str) -> str:
    """The callback_data of the one button whose text contains ``word``."""
    found = [data for text, data in buttons(call).items() if word in text]
    assert len(found) == 1, f"one {word!r} button expected, got {buttons(call)!r}"
    return found[0]


async def press_answered(telegram: FakeTelegram, chat_id: int, data: str) -> None:
    """Press a button with ``data`` under message 1 and wait until the bot answers that press."""
    press = updates.callback_query(chat_id, 1, data)
    callback_id = press["callback_query"]["id"]
    telegram.add_update(press)
    await telegram.wait_for_call(
        lambda c: c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == callback_id
    )


async def reply_to(telegram: FakeTelegram, chat_id: int, update: dict[str, Any], method: str) -> Call:
    """Inject ``update`` and return the bot's next successful ``method`` call to the chat."""
    since = len(telegram.calls)
    telegram.add_update(update)
    return await telegram.wait_for_call(lambda c: to_chat(c, method, chat_id), since=since)


# -- events for unit tests -------------------------------------------------------------------------


def make_event(update_id: int, chat_id: int = 1, **fields: Any) -> Event:
    """A private message "hi" from the chat's own user, message id = update id; ``fields`` override."""
    values: dict[str, Any] = {
        "kind": EventKind.MESSAGE,
        "user_id": chat_id,
        "private": True,
        "message_id": update_id,
        "text": "hi",
    }
    return Event(update_id=update_id, chat_id=chat_id, **(values | fields))


class WatchedLocks(KeyLocks):
    """KeyLocks that know which keys are held now; a subclass may act before each ``hold`` (``before``)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = set()

    async def before(self, key: str) -> None:
        """Called as ``hold(key)`` starts, before waiting for the lock."""

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        await self.before(key)
        async with super().hold(key):
            self.held.add(key)
            try:
                yield
            finally:
                self.held.discard(key)
