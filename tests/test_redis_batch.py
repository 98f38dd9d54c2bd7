"""ScriptBatch on a real redis-server: calls made together each get their own reply, a cancelled
caller's reply still reaches ``on_reply``, errors go to their own caller, lost scripts are loaded
again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from tests.redis_server import free_port
from tgs3bot.queues.redis_batch import ScriptBatch

ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('NOPE refused') end
redis.call('INCR', 'calls')
return ARGV[1]
"""


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the test's server, answering str."""
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis
    await redis.aclose()


async def test_calls_made_together_each_get_their_own_reply(client: aioredis.Redis) -> None:
    """Twenty calls at once: each caller gets its own reply, on_reply sees each, the script ran 20 times."""
    seen: list[Any] = []
    batch = ScriptBatch(client, ECHO, seen.append)
    replies = await asyncio.gather(*(batch(str(n)) for n in range(20)))
    assert replies == [str(n) for n in range(20)]
    assert sorted(seen, key=int) == replies
    assert await client.get("calls") == "20"


async def test_a_cancelled_callers_reply_still_reaches_on_reply(client: aioredis.Redis) -> None:
    """A caller cancelled after its call was queued: the script still runs and on_reply gets the reply."""
    seen: list[Any] = []
    batch = ScriptBatch(client, ECHO, seen.append)
    caller = asyncio.create_task(batch("lost"))
    await asyncio.sleep(0)  # the call is queued
    caller.cancel()
    await batch.wait_sent()
    assert caller.cancelled()
    assert seen == ["lost"]


async def test_an_error_reply_goes_to_its_caller_only(client: aioredis.Redis) -> None:
    """A script's error reply is raised to its own caller; the other calls of the batch succeed."""
    seen: list[Any] = []
    batch = ScriptBatch(client, ECHO, seen.append)
    replies = await asyncio.gather(batch("a"), batch("bad"), batch("b"), return_exceptions=True)
    assert list(replies[0::2]) == ["a", "b"]
    assert isinstance(replies[1], ResponseError)
    assert "NOPE" in str(replies[1])
    assert seen == ["a", "b"]


async def test_a_server_that_lost_its_scripts_is_given_them_again(client: aioredis.Redis) -> None:
    """After SCRIPT FLUSH (or a restart) the calls that met NOSCRIPT are sent again, once."""
    batch = ScriptBatch(client, ECHO, lambda _reply: None)
    assert await batch("1") == "1"
    await client.script_flush()
    assert list(await asyncio.gather(batch("2"), batch("3"))) == ["2", "3"]
    assert await client.get("calls") == "3"


async def test_a_failed_connection_fails_every_caller_of_the_batch() -> None:
    """No server: every caller of the batch gets the connection error, and on_reply sees nothing."""
    seen: list[Any] = []
    unreachable = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=5)
    try:
        batch = ScriptBatch(unreachable, ECHO, seen.append)
        replies = await asyncio.gather(batch("a"), batch("b"), return_exceptions=True)
    finally:
        await unreachable.aclose()
    assert all(isinstance(reply, RedisConnectionError) for reply in replies)
    assert seen == []


async def test_a_connection_the_server_closed_is_opened_again(client: aioredis.Redis, redis_url: str) -> None:
    """The batch's connection killed between batches: a later call runs on a new connection."""
    batch = ScriptBatch(client, ECHO, lambda _reply: None)
    assert await batch("1") == "1"
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await admin.client_kill_filter(_type="normal", skipme=True) >= 1
    finally:
        await admin.aclose()
    with contextlib.suppress(RedisConnectionError):  # without a Retry on the client, one call fails
        await batch("2")
    assert await batch("3") == "3"


async def test_close_gives_the_connection_back_to_the_pool(redis_url: str) -> None:
    """The batch holds one connection of the client's pool until closed; then the pool has it again."""
    single = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=1)
    try:
        batch = ScriptBatch(single, ECHO, lambda _reply: None)
        assert await batch("1") == "1"
        with pytest.raises(RedisConnectionError):
            await single.ping()  # the pool's only connection is the batch's
        await batch.close()
        assert await single.ping()
    finally:
        await single.aclose()
