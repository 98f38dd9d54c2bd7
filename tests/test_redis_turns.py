"""What comes with a turn of the Redis queue: the handled lookup skipped on a first delivery, the
mark carried by ``done``, the chat's greeting and dialog read with the turn, and the cases where
the skip would be wrong (a claimed turn, a turn handed back), run by the real bot so that an
update answered twice shows in the fake Bot API.

The argument these tests hold to is in ``tgs3bot.queues.redis_turns``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from typing import Any

import redis.asyncio as aioredis

from tests.conftest import RunningBot
from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wire import Call
from tests.helpers import button_data, greet, make_event, object_keys
from tgs3bot import replies
from tgs3bot.handlers.rename import RENAME
from tgs3bot.interfaces import Dialog
from tgs3bot.queues.redis import RedisQueue
from tgs3bot.state.redis import RedisState, handled_key

DEADLINE_S = 30.0  # generous: the machine may be busy
CHAT = 7
SEEDED = 900_001  # far above the fake Bot API's update ids (they start at 1000)
TG, VK = "telegram", "vk"
HANDLED = handled_key("tgs3bot:", TG, SEEDED)


async def linked(stack: AsyncExitStack, redis_url: str) -> tuple[RedisQueue, RedisState]:
    """A queue and a state wired as ``backends`` wires them for one process."""
    state = await stack.enter_async_context(RedisState(redis_url))
    queue = await stack.enter_async_context(RedisQueue(redis_url, queue_size=10))
    state.held = queue.turns
    return queue, state


async def commands_run(raw: aioredis.Redis) -> int:
    """Commands the server has run, but the INFO calls that ask."""
    stats = await raw.info("commandstats")
    return sum(int(v["calls"]) for name, v in stats.items() if name != "cmdstat_info")


async def test_a_first_delivery_needs_no_round_trip_for_its_handled_id(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A fresh turn's lookup answers without Redis, and its mark is written by task_done's script."""
    async with AsyncExitStack() as stack:
        queue, state = await linked(stack, redis_url)
        await queue.put_batch([make_event(1, chat_id=1)])
        event = await asyncio.wait_for(queue.get(), DEADLINE_S)
        before = await commands_run(raw)
        assert not await state.is_handled(TG, 1)
        await state.mark_handled(TG, 1)
        assert await commands_run(raw) == before
        assert not await raw.exists(handled_key("tgs3bot:", TG, 1))
        await queue.task_done(event)
        assert await raw.ttl(handled_key("tgs3bot:", TG, 1)) > 0
        assert await state.is_handled(TG, 1)  # not held any more: asked of Redis


async def test_a_handled_mark_left_to_a_done_that_never_came_is_written_on_close(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A worker cancelled between mark_handled and task_done: closing the queue finishes the update."""
    async with AsyncExitStack() as stack:
        queue, state = await linked(stack, redis_url)
        await queue.put_batch([make_event(1, chat_id=1)])
        await asyncio.wait_for(queue.get(), DEADLINE_S)
        await state.mark_handled(TG, 1)
    assert await raw.exists(handled_key("tgs3bot:", TG, 1))
    assert not await raw.exists("tgs3bot:lane:1")
    assert await raw.xlen("tgs3bot:ready:telegram") == 0


async def test_marks_are_written_at_once_while_draining(redis_url: str, raw: aioredis.Redis) -> None:
    """Once a drain begins (a shutdown may cancel the worker), mark_handled writes the mark itself."""
    async with AsyncExitStack() as stack:
        queue, state = await linked(stack, redis_url)
        await queue.put_batch([make_event(1, chat_id=1)])
        event = await asyncio.wait_for(queue.get(), DEADLINE_S)
        draining = asyncio.create_task(queue.drain())
        await asyncio.sleep(0)  # the drain has begun
        await state.mark_handled(TG, 1)
        assert await raw.exists(handled_key("tgs3bot:", TG, 1))
        await queue.task_done(event)
        await asyncio.wait_for(draining, DEADLINE_S)


async def test_a_turn_taken_by_done_brings_its_chats_greeting_and_dialog(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Reads of the greeting and dialog of a chat whose turn done took cost no round trip, give
    what Redis holds (the same keys the state uses), and see a dialog changed during the turn."""
    dialog = Dialog(RENAME, file_id=3, started_at=1.5)
    async with AsyncExitStack() as stack:
        queue, state = await linked(stack, redis_url)
        await state.set_dialog(TG, 2, dialog)
        await raw.sadd("tgs3bot:greeted", 2)
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=2), make_event(3, chat_id=3)])
        await queue.task_done(await asyncio.wait_for(queue.get(), DEADLINE_S))  # takes chat 2's turn
        second = await asyncio.wait_for(queue.get(), DEADLINE_S)
        assert second.chat_id == 2
        before = await commands_run(raw)
        assert (await state.get_dialog(TG, 2), await state.is_greeted(TG, 2)) == (dialog, True)
        assert await commands_run(raw) == before
        await state.set_dialog(TG, 2, None)
        assert await state.get_dialog(TG, 2) is None
        assert await commands_run(raw) == before + 1  # the HDEL alone
        await queue.task_done(second)  # takes chat 3's turn
        third = await asyncio.wait_for(queue.get(), DEADLINE_S)
        before = await commands_run(raw)
        assert (await state.get_dialog(TG, 3), await state.is_greeted(TG, 3)) == (None, False)
        assert await commands_run(raw) == before
        await queue.task_done(third)


async def test_an_update_already_handled_is_not_queued(redis_url: str, raw: aioredis.Redis) -> None:
    """put_batch skips an update whose handled mark exists (even if its seen key is gone)."""
    await raw.set(handled_key("tgs3bot:", TG, 1), "1")
    async with RedisQueue(redis_url, queue_size=10) as queue:
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=1)])
        assert (await asyncio.wait_for(queue.get(), DEADLINE_S)).update_id == 2


async def test_a_vk_and_a_telegram_chat_of_one_number_bring_their_own_state_and_marks(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """VK update 7 in VK chat 5 and Telegram update 7 in Telegram chat 5, both held from turns done
    took: each brings its own chat's greeting and dialog, a dialog changed on one stays off the
    other, and each done writes its own platform's handled mark (SPEC §6)."""
    tg_dialog, vk_dialog = (
        Dialog(RENAME, file_id=3, started_at=1.5),
        Dialog(RENAME, file_id=4, started_at=2.5),
    )
    async with AsyncExitStack() as stack:
        queue, state = await linked(stack, redis_url)
        await state.set_dialog(TG, 5, tg_dialog)
        await state.mark_greeted(TG, 5)
        vk, tg = make_event(7, chat_id=5, platform=VK), make_event(7, chat_id=5)
        await queue.put_batch([make_event(1, chat_id=1), make_event(2, chat_id=2)])
        first, second = [await asyncio.wait_for(queue.get(), DEADLINE_S) for _ in range(2)]
        await queue.put_batch([vk, tg])
        await queue.task_done(first)  # takes a chat 5's turn (from one platform's stream)
        await queue.task_done(second)  # takes the other's (the streams are tried in turn)
        held = {(await asyncio.wait_for(queue.get(), DEADLINE_S)).platform for _ in range(2)}
        assert held == {VK, TG}
        before = await commands_run(raw)
        assert (await state.get_dialog(VK, 5), await state.is_greeted(VK, 5)) == (None, False)
        assert (await state.get_dialog(TG, 5), await state.is_greeted(TG, 5)) == (tg_dialog, True)
        assert not await state.is_handled(VK, 7) and not await state.is_handled(TG, 7)
        await state.mark_handled(VK, 7)
        assert await commands_run(raw) == before
        await state.set_dialog(VK, 5, vk_dialog)
        assert (await state.get_dialog(VK, 5), await state.get_dialog(TG, 5)) == (vk_dialog, tg_dialog)
        assert sorted(await raw.hkeys("tgs3bot:dialogs")) == ["5", "vk:5"]
        await queue.task_done(vk)
        assert await raw.exists(handled_key("tgs3bot:", VK, 7), handled_key("tgs3bot:", TG, 7)) == 1
        assert await raw.exists("tgs3bot:handled:vk:7")  # the key names themselves
        assert await state.is_handled(VK, 7) and not await state.is_handled(TG, 7)
        await state.mark_handled(TG, 7)
        await queue.task_done(tg)
        assert await raw.exists("tgs3bot:handled:7", "tgs3bot:handled:vk:7") == 2
        assert await raw.smembers("tgs3bot:greeted") == {"5"}


async def test_a_handled_telegram_update_neither_skips_nor_answers_for_the_vk_update_of_its_number(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """put_batch skips Telegram update 7 (marked handled) and queues VK update 7; while that one is
    held from a fresh turn, Telegram update 7 is still looked up in Redis (and found handled)."""
    await raw.set(handled_key("tgs3bot:", TG, 7), "1")
    async with AsyncExitStack() as stack:
        queue, state = await linked(stack, redis_url)
        vk = make_event(7, chat_id=5, platform=VK)
        await queue.put_batch([vk, make_event(7, chat_id=5)])
        assert await queue.counts() == (1, 0)
        assert await asyncio.wait_for(queue.get(), DEADLINE_S) == vk
        before = await commands_run(raw)
        assert not await state.is_handled(VK, 7)  # a first delivery: no round trip
        assert await commands_run(raw) == before
        assert await state.is_handled(TG, 7)  # not held here: asked of Redis
        await queue.task_done(vk)


async def answered_once_after(telegram: FakeTelegram, bot: RunningBot) -> list[str]:
    """Send the chat a second text; once the reply to it is sent (so the seeded update, ahead of it
    in the chat's order, is behind us), return what the chat was sent."""
    after = updates.message(CHAT, text="after")
    telegram.add_update(after)
    message_id = after["message"]["message_id"]

    def reply_to_after(call: Call) -> bool:
        reply = call.params.get("reply_parameters") or {}
        return call.method == "sendMessage" and reply.get("message_id") == message_id

    await telegram.wait_for_call(reply_to_after, timeout=DEADLINE_S)
    assert not bot.task.done()
    return telegram.sent(CHAT)


async def test_a_claimed_turn_of_an_already_handled_update_is_not_answered_again(
    redis_url: str,
    raw: aioredis.Redis,
    telegram: FakeTelegram,
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    """A worker that answered and marked an update died before its done: the bot claims the turn,
    finds the mark, and answers only the chat's next message."""
    async with RedisQueue(redis_url, queue_size=10) as seeding:
        await seeding.put_batch([make_event(SEEDED, chat_id=CHAT)])
    await raw.sadd("tgs3bot:greeted", CHAT)
    assert await raw.xreadgroup("workers", "dead-worker", {"tgs3bot:ready:telegram": ">"}, count=1)
    await raw.set(HANDLED, "1")  # it answered and marked the update, then died
    bot = await start_bot(redis_url=redis_url, redis_claim_idle_s=0.5)
    assert await answered_once_after(telegram, bot) == [replies.DOCUMENT_REQUIRED]


async def test_a_turn_handed_back_after_its_update_was_handled_is_not_answered_again(
    redis_url: str,
    raw: aioredis.Redis,
    telegram: FakeTelegram,
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    """A process whose shutdown cancelled a worker after it marked the update (a document saved as
    the drain ran out) hands the turn back; the next holder finds the mark and does not answer."""
    await raw.sadd("tgs3bot:greeted", CHAT)
    async with AsyncExitStack() as stack:
        queue, state = await linked(stack, redis_url)
        await queue.put_batch([make_event(SEEDED, chat_id=CHAT)])
        await asyncio.wait_for(queue.get(), DEADLINE_S)
        draining = asyncio.create_task(queue.drain())
        await asyncio.sleep(0)  # the drain has begun
        await state.mark_handled(TG, SEEDED)
        draining.cancel()
        with suppress(asyncio.CancelledError):
            await draining
    assert await raw.exists("tgs3bot:lane:7")  # handed back, not finished
    bot = await start_bot(redis_url=redis_url)
    assert await answered_once_after(telegram, bot) == [replies.DOCUMENT_REQUIRED]


async def test_a_new_name_sent_with_its_rename_press_is_taken_as_the_name(
    redis_url: str,
    telegram: FakeTelegram,
    s3: Any,
    bucket: str,
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    """The press and the name in one poll: the name's turn, taken by the press's done, brings the
    dialog the press opened (written before that done), so the name renames the file."""
    await start_bot(redis_url=redis_url)
    await greet(telegram, CHAT)
    doc = telegram.add_file(b"contents", file_name="draft.txt", mime_type="text/plain")
    telegram.add_update(updates.message(CHAT, document=doc))
    saved = await telegram.wait_for_call(
        lambda c: c.method == "sendMessage" and "[document has been saved]" in c.params.get("text", "")
    )
    press = updates.callback_query(CHAT, 1, button_data(saved, "Rename"))
    telegram.add_updates([press, updates.message(CHAT, text="final.txt")])
    await telegram.wait_for_text(CHAT, "[document has been renamed]", timeout=DEADLINE_S)
    assert await object_keys(s3, bucket) == ["final.txt"]
