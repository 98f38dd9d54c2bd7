"""Key locks in Redis: two processes never save the same S3 key at once (SPEC §5).

The same interface as ``context.KeyLocks`` (``async with locks.hold(key): ...``), for when several
worker processes share a bucket. Each hold is a redis-py ``Lock`` (SET NX PX with a random token,
released by compare-and-delete) on ``{prefix}key-lock:{key}``. Its timeout bounds how long a dead
process can keep a key; a heartbeat extends it every third of the timeout while the holder is
alive, so a transfer longer than the timeout keeps its lock.

Waiting for a held key polls (redis-py's ``Lock.acquire`` tries again every ``poll_s``): Redis has
no blocking primitive for a lock, and two saves of one key at the same moment are rare, so a short
poll costs less than a wake-up list per key that would need its own cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import structlog
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

log = structlog.get_logger(__name__)


class RedisKeyLocks:
    """One lock per object key, shared by every process on the Redis server."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str = "tgs3bot:", timeout_s: float = 30, poll_s: float = 0.1
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._client = client
        self._prefix = prefix
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def _lock(self, key: str) -> Lock:
        return Lock(
            self._client,
            f"{self._prefix}key-lock:{key}",
            timeout=self.timeout_s,
            sleep=self.poll_s,
            thread_local=False,  # one Lock per hold, used by one task: nothing to share
        )

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the key's lock (waiting while another process or task holds it)."""
        lock = self._lock(key)
        await lock.acquire()
        heartbeat = asyncio.create_task(self._keep(lock, key), name=f"key-lock-heartbeat:{key}")
        try:
            yield
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            try:
                await lock.release()
            except LockError:  # it expired (the heartbeat could not reach Redis): nothing to free
                log.warning("key_lock_expired", key=key)

    async def _keep(self, lock: Lock, key: str) -> None:
        """Reset the lock's timeout every third of it, until cancelled or the lock is lost."""
        while True:
            await asyncio.sleep(self.timeout_s / 3)
            try:
                await lock.reacquire()
            except LockError:
                log.warning("key_lock_lost", key=key)
                return
            except (RedisError, OSError) as exc:  # try again; the lock lasts a while yet
                log.warning("key_lock_heartbeat_failed", key=key, error=str(exc))
