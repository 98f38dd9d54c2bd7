"""The Redis client every Redis part of the bot uses: connected, checked, and safe to cancel."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tgs3bot.errors import StartupError
from tgs3bot.events import Event

MIN_SERVER_VERSION = (6, 2)  # XAUTOCLAIM is 6.2; BLPOP takes fractions of a second since 6.0
CONNECT_TIMEOUT_S = 10.0
TELEGRAM = "telegram"  # the platform whose ids are written bare
BLOCK_CAP_S = 2.0  # the longest blocking read (BLPOP, XREADGROUP BLOCK) any caller makes


def redacted(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def text(value: bytes | str) -> str:
    """A reply as ``str`` whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def scoped(platform: str, number: int) -> str:
    """A platform's chat, user or update id as it appears in key names and members (SPEC §6).

    Telegram's ids are bare, as they were before VK (a running bot's keys stay where they are);
    another platform's carry its name, ``vk:123``, so they never meet Telegram's ``123``.
    """
    return str(number) if platform == TELEGRAM else f"{platform}:{number}"


def event_keys(event: Event) -> tuple[str, str]:
    """The event's update and chat, ``scoped``: what the queue's key names use."""
    return scoped(event.platform, event.update_id), scoped(event.platform, event.chat_id)


def lease_key(platform: str) -> str:
    """The name of the platform's poller lease, without the prefix (``lease.PollerLease``)."""
    return "poller-lease" if platform == TELEGRAM else f"poller-lease:{platform}"


def unscoped(value: str) -> tuple[str, int]:
    """(platform, id) from what ``scoped`` wrote."""
    platform, _, number = value.rpartition(":")
    return (platform or TELEGRAM, int(number))


async def open_client(url: str, **options: Any) -> aioredis.Redis:
    """A client for ``url`` that has answered a PING from a server new enough (StartupError if not)."""
    options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT_S)
    # No socket timeout (redis-py 8 defaults to 5 s): with one, redis-py wraps every send in
    # asyncio.wait_for, which on Python 3.11 loses a cancellation that races the send's completion
    # (CPython gh-86296), so a cancelled worker would go on taking events. Blocking reads stay short
    # (``BLOCK_CAP_S``) and keepalive notices a dead peer instead.
    options.setdefault("socket_timeout", None)
    options.setdefault("socket_keepalive", True)
    try:
        client = aioredis.Redis.from_url(url, decode_responses=True, **options)
    except ValueError as exc:  # not a redis:// URL
        raise StartupError(f"bad Redis URL {redacted(url)}: {exc}") from exc
    try:
        await client.ping()
        info = await client.info("server")
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise StartupError(f"cannot reach Redis at {redacted(url)}: {exc}") from exc
    version = str(info.get("redis_version", "0"))
    if tuple(int(n) for n in version.split(".")[:2] if n.isdigit()) < MIN_SERVER_VERSION:
        await client.aclose()
        raise StartupError(f"Redis at {redacted(url)} is version {version}; the bot needs 6.2 or newer")
    return client
