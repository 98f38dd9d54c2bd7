"""The worker runs each event with its own platform's Context, and never guesses for an unknown one."""

from __future__ import annotations

from typing import Any, cast

from structlog.testing import capture_logs

from tests.helpers import make_event
from tgs3bot.config import WorkerConfig
from tgs3bot.context import Context, Policy
from tgs3bot.interfaces import Platform
from tgs3bot.queues import ChatQueue
from tgs3bot.router import build_router
from tgs3bot.state import MemoryState
from tgs3bot.storage.base import ObjectStore
from tgs3bot.worker import Worker


class _Sent:
    """A platform that only records the texts it sends."""

    def __init__(self) -> None:
        self.texts: list[tuple[int, str]] = []

    async def send_text(self, chat_id: int, text: str, **_: Any) -> int:
        self.texts.append((chat_id, text))
        return len(self.texts)


def _worker(state: MemoryState, **platforms: _Sent) -> Worker:
    contexts = {
        name: Context(cast(Platform, sent), cast(ObjectStore, None), state, Policy())
        for name, sent in platforms.items()
    }
    return Worker(ChatQueue(10), build_router(), contexts, WorkerConfig(1))


async def test_each_event_is_answered_through_its_own_platform() -> None:
    """A VK event and a Telegram event of one chat and update id: each answered on its platform."""
    state, telegram, vk = MemoryState(), _Sent(), _Sent()
    worker = _worker(state, telegram=telegram, vk=vk)
    await worker.handle(make_event(1, chat_id=5, text="/start", platform="vk"))
    await worker.handle(make_event(1, chat_id=5, text="/start"))
    assert [text[:10] for _, text in vk.texts] == [text[:10] for _, text in telegram.texts] == ["[greeting]"]
    assert await state.is_handled("vk", 1) and await state.is_handled("telegram", 1)


async def test_an_event_of_a_platform_this_process_lacks_is_logged_not_handled() -> None:
    """A VK event reaching a Telegram-only worker (Redis, misconfigured) is an error line, not a guess."""
    state, telegram = MemoryState(), _Sent()
    with capture_logs() as logs:
        await _worker(state, telegram=telegram).handle(make_event(1, chat_id=5, platform="vk"))
    assert telegram.texts == [] and not await state.is_handled("vk", 1)
    [error] = [entry for entry in logs if entry["event"] == "update_of_unconfigured_platform"]
    assert error["log_level"] == "error" and error["served"] == ["telegram"]
    assert [e["outcome"] for e in logs if e["event"] == "update_handled"] == ["platform_not_configured"]
