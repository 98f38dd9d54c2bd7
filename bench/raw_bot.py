"""Contestant (b) of the text pipeline, the ceiling: a plain aiohttp poller and 8 workers, nothing else.

One getUpdates long poll (timeout 60) at a time puts the updates into an ``asyncio.Queue``; 8
worker coroutines POST sendMessage: the greeting for a chat's first message, the
document-required text (as a reply) for the others. No models, no logging, no state file.
Run as ``python bench/raw_bot.py BASE_URL TOKEN [WORKERS]``; SIGTERM ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from tgs3bot.replies import DOCUMENT_REQUIRED, GREETING

POLL_TIMEOUT_S = 60


async def work(http: aiohttp.ClientSession, api: str, queue: asyncio.Queue[Any], greeted: set[int]) -> None:
    """Answer queued updates forever."""
    while True:
        message = (await queue.get())["message"]
        chat_id = message["chat"]["id"]
        data: dict[str, Any] = {"chat_id": chat_id}
        if chat_id in greeted:
            reply = {"message_id": message["message_id"], "allow_sending_without_reply": True}
            data |= {"text": DOCUMENT_REQUIRED, "reply_parameters": json.dumps(reply)}
        else:
            greeted.add(chat_id)
            data["text"] = GREETING
        async with http.post(f"{api}/sendMessage", data=data) as response:
            await response.read()


async def main(base_url: str, token: str, workers: int = 8) -> None:
    """Poll and answer until killed."""
    api = f"{base_url}/bot{token}"
    queue: asyncio.Queue[Any] = asyncio.Queue()
    greeted: set[int] = set()
    poll_timeout = aiohttp.ClientTimeout(total=POLL_TIMEOUT_S + 15)
    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.create_task(work(http, api, queue, greeted)) for _ in range(workers)]
        offset = 0
        while True:
            params = {"timeout": POLL_TIMEOUT_S, "offset": offset}
            async with http.post(f"{api}/getUpdates", data=params, timeout=poll_timeout) as response:
                body = json.loads(await response.read())
            for update in body["result"]:
                queue.put_nowait(update)
                offset = update["update_id"] + 1
        del tasks  # unreachable: the loop ends with the process


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4])))
