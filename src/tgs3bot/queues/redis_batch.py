"""Calls of one Lua script sent together, as a pipeline: how ``queues.redis`` sends ``done``.

A Redis command costs the bot a write and a read on its socket, ~0.1 ms of CPU on the benchmark's
machine, half of it the write (``bench/README.md``). Workers often finish together (their Bot API
answers come back in one turn of the event loop), and more finish while a batch is on the wire:
their ``done`` calls go out as one pipeline, one write and one read for all, as a database's group
commit does. One batch is in flight at a time, so a call waits at most for the one before it; the
pipeline is not a transaction, and each call is its own script run, atomic as before.

The batches go out on a connection of their own, taken from the client's pool for as long as the
batch lives, with the connection's own calls (pack, send, read) rather than through redis-py's
``Pipeline``: one batch is in flight at a time, so one connection is all it needs, and the
``Pipeline`` object's bookkeeping (a pool checkout, the command stack, its instrumentation) cost
~50 µs of CPU per batch, about 40 % of a one-call batch (``bench/README.md``). Failures are
handled as a pipeline's are: the connection is dropped on any error but an error reply (redis-py
does that in ``send_packed_command`` and ``read_response``) and the client's ``Retry`` sends the
batch again on a connection error.

A reply is handed to ``on_reply`` even if its caller was cancelled meanwhile (a turn the script
took for this process must not be lost with the caller).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

Call = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class ScriptBatch:
    """``await batch(*argv)`` runs the script with that ARGV, in the next pipeline to go out."""

    def __init__(self, client: aioredis.Redis, source: str, on_reply: Callable[[Any], None]) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)
        self._on_reply = on_reply
        self._pending: list[Call] = []
        self._flusher: asyncio.Task[None] | None = None
        self._connection: AbstractConnection | None = None  # taken from the pool at the first batch

    async def __call__(self, *argv: Any) -> Any:
        """The script's reply (its error reply raised as ``ResponseError``)."""
        return await self.submit(*argv)

    def submit(self, *argv: Any) -> asyncio.Future[Any]:
        """Queue a call for the next pipeline; the future of its reply (or its error)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((argv, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="queue-script-batch")
        return future

    async def wait_sent(self) -> None:
        """Return once every call made so far has its reply (before the client closes)."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def close(self) -> None:
        """Wait for the calls made so far, then give the connection back to the client's pool."""
        await self.wait_sent()
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._client.connection_pool.release(connection)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._send(batch)
        finally:
            self._flusher = None

    async def _send(self, batch: list[Call]) -> None:
        try:
            replies = await self._pipeline([argv for argv, _ in batch])
        except Exception as exc:  # noqa: BLE001 (a failed connection: handed to every caller of the batch)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if not isinstance(reply, Exception):
                self._on_reply(reply)
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _pipeline(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        """The replies, in order; a server that lost its scripts (restart, SCRIPT FLUSH) is given
        the script again and the calls it refused are sent again."""
        replies = await self._run(calls)
        refused = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if refused:
            await self._client.script_load(self._source)
            for n, reply in zip(refused, await self._run([calls[n] for n in refused]), strict=True):
                replies[n] = reply
        return replies

    async def _run(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        if self._connection is None:
            self._connection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        connection = self._connection
        replies: list[Any] = await connection.retry.call_with_retry(
            lambda: self._exchange(connection, calls), lambda _error: connection.disconnect()
        )
        return replies

    async def _exchange(self, connection: AbstractConnection, calls: list[tuple[Any, ...]]) -> list[Any]:
        """Send the calls in one write and read every reply (an error reply as its exception)."""
        await connection.send_packed_command(
            connection.pack_commands([("EVALSHA", self._sha, 0, *argv) for argv in calls])
        )
        replies: list[Any] = []
        for _ in calls:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies
