"""The VK platform tests' fixtures: the fake VK API, VkPlatforms on it, and a few helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from tests.fakes.vk import GROUP_ID, TOKEN, FakeVk
from tgs3bot.config import BackoffConfig
from tgs3bot.events import Document
from tgs3bot.platforms.vk import VkPlatform
from tgs3bot.state.memory import MemoryState

FAST = BackoffConfig(initial_s=0.01, max_s=0.05, send_attempts=4)
USER = 501
MakePlatform = Callable[..., Awaitable[VkPlatform]]


@pytest.fixture
async def vk() -> AsyncIterator[FakeVk]:
    """The fake VK API, on a free loopback port."""
    async with FakeVk() as fake:
        yield fake


@pytest.fixture
async def make_platform(vk: FakeVk) -> AsyncIterator[MakePlatform]:
    """Build (and by default start) VkPlatforms on the fake; closed after the test."""
    made: list[VkPlatform] = []

    async def make(
        *, start: bool = True, state: MemoryState | None = None, token: str = TOKEN, **kwargs: Any
    ) -> VkPlatform:
        kwargs.setdefault("api_url", vk.api_url)
        kwargs.setdefault("backoff", FAST)
        platform = VkPlatform(SecretStr(token), GROUP_ID, cursors=state or MemoryState(), **kwargs)
        made.append(platform)
        if start:
            await platform.start()
        return platform

    yield make
    for platform in made:
        await platform.close()


@pytest.fixture
async def platform(make_platform: MakePlatform) -> VkPlatform:
    """A started VkPlatform."""
    return await make_platform()


async def document_of(vk: FakeVk, platform: VkPlatform, attachment: dict[str, Any]) -> Document:
    """The document of a message carrying ``attachment``, as the platform maps it."""
    vk.send_message(USER, attachments=[attachment])
    (event,) = (await platform.get_updates(None, timeout_s=0)).events
    assert event.document is not None
    return event.document


async def read_all(platform: VkPlatform, document: Document) -> bytes:
    """Every byte ``open_file`` streams."""
    async with platform.open_file(document) as chunks:
        return b"".join([chunk async for chunk in chunks])
