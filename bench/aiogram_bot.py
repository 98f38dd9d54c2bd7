"""Contestant (a) of the text pipeline: a minimal aiogram 3 bot on ``Dispatcher.start_polling``.

It answers like tgs3bot does for texts: a chat's first message gets the greeting, every later one
the document-required text as a reply (greeted chats are kept in a set). Run as
``python bench/aiogram_bot.py BASE_URL TOKEN``; logging is left unconfigured, so, as with
tgs3bot at WARNING, aiogram's per-update INFO lines are filtered out and not written.
"""

from __future__ import annotations

import asyncio
import sys

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message, ReplyParameters

from tgs3bot.replies import DOCUMENT_REQUIRED, GREETING

router = Router()
greeted: set[int] = set()


@router.message()
async def answer(message: Message) -> None:
    """Greet a chat's first message, answer the others with the document-required text."""
    chat_id = message.chat.id
    if chat_id not in greeted:
        greeted.add(chat_id)
        await message.answer(GREETING)
        return
    reply = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    await message.answer(DOCUMENT_REQUIRED, reply_parameters=reply)


async def main(base_url: str, token: str) -> None:
    """Poll the fake with aiogram's dispatcher until SIGTERM (which start_polling handles)."""
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    await dispatcher.start_polling(bot, polling_timeout=60, handle_as_tasks=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
