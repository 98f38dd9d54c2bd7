"""The poller lease: of any number of ``tgs3bot poll`` processes, exactly one polls (SPEC §5).

One lease per platform (each is polled on its own; ``redis_client.lease_key``): the key
``{prefix}poller-lease`` for Telegram (its name before VK), ``{prefix}poller-lease:vk`` for VK,
holds the token of the poller that may poll, with a TTL of ``lease_s``. The holder renews it
every ``lease_s / 3`` (``keep``); if it dies, the key expires and a standby takes over within
``lease_s``. A standby waits without polling Redis in a loop: it blocks on the key's ``:free``
list (BLPOP), where ``release`` leaves a token so a standby takes over at once after a graceful
stop, with a timeout of the key's remaining TTL (capped at ``lease_s / 3``)
so it is awake when the key of a dead holder expires.

The token fences the queue: ``RedisQueue`` enqueues a platform's batch only while that
platform's lease holds the token it was given (one process's leases share one), so a poller that
lost its lease (paused, cut off) can take nothing into the queue. A new holder polls without an
offset: the platform hands it the first update not confirmed yet (VK: from the saved cursor),
and the queue drops any the old holder had already taken (``seen:{update}``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import NoReturn

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from tgs3bot.errors import LeaseLost
from tgs3bot.redis_client import BLOCK_CAP_S, TELEGRAM, lease_key

log = structlog.get_logger(__name__)

# KEYS: lease, ARGV: token, ms. -1 once the token holds the lease, else the ms it has left.
ACQUIRE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) or redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return -1
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then return tonumber(ARGV[2]) end
return left
"""
# KEYS: lease. ARGV: token, ms. 1 if the token held the lease and now holds it for ms more.
RENEW_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS: lease, free list. ARGV: token, ms. Deletes the lease if the token holds it, and wakes a
# standby (one token in the free list, expiring so a stale one does not linger).
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, 0)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""


class PollerLease:
    """The lease that lets one poller poll: ``await lease.acquire()``, then run ``lease.keep()``."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        lease_s: float = 15,
        prefix: str = "tgs3bot:",
        platform: str = TELEGRAM,
        token: str | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.lease_s = lease_s
        self.platform = platform
        # What RedisQueue's fence compares; one process's leases (a platform each) share it.
        self.token = token or secrets.token_hex(16)
        self._client = client
        self._key = prefix + lease_key(platform)
        self._free_key = self._key + ":free"
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._renew = client.register_script(RENEW_LUA)
        self._release = client.register_script(RELEASE_LUA)

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_s * 1000))

    async def try_acquire(self) -> bool:
        """Take the lease if it is free (or already ours); never waits."""
        return await self._try() < 0

    async def _try(self) -> int:
        """-1 once the lease is ours, else the milliseconds the holder has left."""
        return int(await self._acquire(keys=[self._key], args=[self.token, self._lease_ms]))

    async def acquire(self) -> None:
        """Wait until this poller holds the lease (a standby waits here while another polls)."""
        while (left_ms := await self._try()) >= 0:
            wait_s = min(self.lease_s / 3, left_ms / 1000 + 0.01, BLOCK_CAP_S)
            # Woken at once by a release; else when the holder's lease can have expired.
            await self._client.blpop([self._free_key], timeout=max(wait_s, 0.01))
        log.info("poller_lease_acquired", platform=self.platform, lease_s=self.lease_s)

    async def renew(self) -> bool:
        """Extend the lease by ``lease_s``; False if another poller holds it now (or nobody does)."""
        return bool(await self._renew(keys=[self._key], args=[self.token, self._lease_ms]))

    async def keep(self) -> NoReturn:
        """Renew the lease every ``lease_s / 3`` until cancelled; raise ``LeaseLost`` when it is lost.

        A renewal Redis does not answer is tried again; once the lease may have expired by the
        time of the next attempt (two thirds of ``lease_s`` after the last renewal), it is lost.
        """
        renewed_at = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if not await self.renew():
                    raise LeaseLost("another poller holds the poller lease")
                renewed_at = time.monotonic()
            except (RedisError, OSError) as exc:
                if time.monotonic() - renewed_at >= self.lease_s * 2 / 3:
                    raise LeaseLost(f"could not renew the poller lease: {exc}") from exc
                log.warning("poller_lease_renewal_failed", error=str(exc))

    async def release(self) -> bool:
        """Give the lease up (if this poller holds it) and wake a standby; True if it was ours."""
        return bool(await self._release(keys=[self._key, self._free_key], args=[self.token, self._lease_ms]))
