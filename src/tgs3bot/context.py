"""What every handler gets besides the event: the bot's collaborators and its policy."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from tgs3bot.events import UserKey
from tgs3bot.interfaces import KeyLocking, Platform, StateStore
from tgs3bot.storage.base import ObjectStore


class KeyLocks:
    """One lock per object key, so that two saves under one name never race (check, then write)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: Counter[str] = Counter()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the key's lock; the lock is forgotten once nobody holds or waits for it."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key], self._locks[key]


@dataclass(frozen=True, slots=True)
class Policy:
    """The operator's rules: who may use the bot, and the limits its platform sets (file size, buttons).

    ``allowed_users`` holds (platform, user id) pairs from every platform's allowlist: one bot is
    open (no allowlist set anywhere) or closed (only those listed, on each platform).
    """

    allowed_users: frozenset[UserKey] = frozenset()
    download_limit: int = 20 * 1024 * 1024
    platform_title: str = "Telegram"  # who sets ``download_limit``, as the refusal names it
    max_buttons: int | None = None  # buttons the platform shows under one message (VK: 10); None: plenty

    @property
    def open_bot(self) -> bool:
        """True when anyone may use the bot."""
        return not self.allowed_users

    def allows(self, user: UserKey) -> bool:
        """Whether the user may use the bot."""
        return self.open_bot or user in self.allowed_users


@dataclass(frozen=True, slots=True)
class Context:
    """The collaborators a handler may use; built once by ``app`` and shared by all workers."""

    platform: Platform
    storage: ObjectStore
    state: StateStore
    policy: Policy
    key_locks: KeyLocking = field(default_factory=KeyLocks)
