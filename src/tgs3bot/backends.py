"""Which state, queue and locks a process uses: SQLite and memory in one process, or Redis.

Without TGS3BOT_REDIS_URL the bot is one process: the state and the queue's journal share the
SQLite file, and the key locks are in memory. With it, the queue, the state, the key locks and the
poller lease live in Redis, so any number of processes (``tgs3bot run``, ``poll``, ``work``) share
them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from tgs3bot.config import Settings
from tgs3bot.context import KeyLocks
from tgs3bot.interfaces import Journal, KeyLocking, PollerLeasing, StateStore, UpdateQueue
from tgs3bot.queues import ChatQueue
from tgs3bot.queues.journal import MemoryJournal
from tgs3bot.state import SqliteState
from tgs3bot.state.sqlite_journal import SqliteJournal


@dataclass(frozen=True, slots=True)
class Backends:
    """The shared parts of one process; ``leases`` (one per platform) where several pollers may run
    (Redis)."""

    state: StateStore
    queue: UpdateQueue
    key_locks: KeyLocking
    leases: Mapping[str, PollerLeasing] = field(default_factory=dict)


async def open_backends(
    stack: AsyncExitStack,
    settings: Settings,
    *,
    state: StateStore | None = None,
    queue: UpdateQueue | None = None,
) -> Backends:
    """Open the state and the queue (the queue restores what an earlier run left) on ``stack``."""
    if settings.redis_url is not None:
        return await _open_redis(stack, settings, settings.redis_url.get_secret_value())
    # SqliteState raises StartupError itself when the file cannot be opened.
    state = await stack.enter_async_context(state or SqliteState(settings.state_path))
    queue = await stack.enter_async_context(queue or ChatQueue(settings.queue_size, _journal(state)))
    return Backends(state=state, queue=queue, key_locks=KeyLocks())


async def _open_redis(stack: AsyncExitStack, settings: Settings, url: str) -> Backends:
    # Imported here: a bot without Redis never loads the client.
    from tgs3bot.lease import PollerLease
    from tgs3bot.queues.redis import RedisQueue
    from tgs3bot.redis_locks import RedisKeyLocks
    from tgs3bot.state.redis import RedisState

    state = await stack.enter_async_context(RedisState(url))
    token = secrets.token_hex(16)  # this process's pollers' token: the queue's fence compares it
    leases = {
        name: PollerLease(state.client, lease_s=settings.redis_lease_s, platform=name, token=token)
        for name in settings.platforms
    }
    queue = RedisQueue(
        url,
        queue_size=settings.queue_size,
        claim_idle_s=settings.redis_claim_idle_s,
        lease_token=token,
        max_connections=settings.concurrent_workers + 8,
        platforms=settings.platforms,
    )
    await stack.enter_async_context(queue)
    state.held = queue.turns  # a held update's handled lookup and mark ride on the queue's round trips
    return Backends(state=state, queue=queue, key_locks=RedisKeyLocks(state.client), leases=leases)


def _journal(state: StateStore) -> Journal:
    """The queue's journal: in the SQLite state file, or in memory beside a memory state (tests)."""
    return SqliteJournal(state) if isinstance(state, SqliteState) else MemoryJournal()
