"""Small helpers shared by the layers."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import structlog

from tgs3bot.errors import FatalPollingError

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger(__name__)


def log_exceptions(func: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Wrap a background coroutine function so that an exception ending it is logged, then re-raised.

    Without this, an exception in a task nobody awaits yet is only seen when the task is collected,
    and the bot looks alive while doing nothing. Cancellation is the normal way to stop and is not
    logged; nor is ``FatalPollingError``, an expected end that the CLI reports in one line.
    """

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await func(*args, **kwargs)
        except (asyncio.CancelledError, FatalPollingError):
            raise
        except Exception:
            log.exception("background_task_failed", task=func.__qualname__)
            raise

    return wrapper


def human_size(size: int) -> str:
    """``1536`` → ``'1.5 KiB'``: binary units, as the README promises (MiB throughout)."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def human_duration(seconds: int) -> str:
    """``86400`` → ``'1 day'``, ``5400`` → ``'90 minutes'``: the largest unit that divides it."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
