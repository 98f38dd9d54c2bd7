"""The platforms the settings name, built and started: the one place that knows every client.

Each client is imported only when configured, so a Telegram-only bot never loads VK's client and
a VK-only bot never imports aiogram.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path, PurePosixPath

from tgs3bot.config import BackoffConfig, Settings
from tgs3bot.context import Policy
from tgs3bot.interfaces import Platform, StateStore
from tgs3bot.localfiles import LocalFiles


class LateCursors:
    """The state's poll cursors, for a platform built before the state is open (VK's ``ts``).

    Platforms start (and check their tokens) before the state and the queue are opened, as the
    start order in ``app`` says; the first poll, which is the first use, comes after ``state``
    is set.
    """

    def __init__(self) -> None:
        self.state: StateStore | None = None

    def _open(self) -> StateStore:
        if self.state is None:
            raise RuntimeError("a poll cursor is used before the state is open")
        return self.state

    async def get_cursor(self, platform: str) -> str | None:
        """The state's ``get_cursor``."""
        return await self._open().get_cursor(platform)

    async def set_cursor(self, platform: str, value: str) -> None:
        """The state's ``set_cursor``."""
        await self._open().set_cursor(platform, value)


async def open_platforms(
    stack: AsyncExitStack, settings: Settings, *, backoff: BackoffConfig, cursors: LateCursors
) -> list[Platform]:
    """Build every configured platform's client (closed by ``stack``) and run its start checks."""
    platforms: list[Platform] = []
    if settings.telegram_token is not None:
        from tgs3bot.platforms.telegram import TelegramPlatform

        platforms.append(
            TelegramPlatform(
                settings.telegram_token.get_secret_value(),
                api_url=settings.telegram_api_url,
                local_files=_local_files(settings),
                proxy=settings.telegram_proxy,
                backoff=backoff,
            )
        )
    if settings.vk_token is not None and settings.vk_group_id is not None:
        from tgs3bot.platforms.vk import VkPlatform

        vk = VkPlatform(
            settings.vk_token,
            settings.vk_group_id,
            cursors=cursors,
            api_url=settings.vk_api_url,
            backoff=backoff,
        )
        platforms.append(vk)
    for platform in platforms:
        stack.push_async_callback(platform.close)
        await platform.start()
    return platforms


def policy_for(settings: Settings, platform: str) -> Policy:
    """The rules for one platform's events: the one allowlist, and that platform's limits."""
    if platform == "vk":
        from tgs3bot.platforms.vk_events import MAX_BUTTONS  # the VK client's own limits
        from tgs3bot.platforms.vk_files import DEFAULT_DOWNLOAD_LIMIT

        return Policy(
            settings.allowed,
            download_limit=DEFAULT_DOWNLOAD_LIMIT,
            platform_title="VK",
            max_buttons=MAX_BUTTONS,
        )
    return Policy(settings.allowed, download_limit=settings.download_limit, platform_title="Telegram")


def _local_files(settings: Settings) -> LocalFiles | None:
    if not settings.telegram_local_mode:
        return None
    server_dir = PurePosixPath(settings.telegram_local_server_dir)
    return LocalFiles(server_dir=server_dir, bot_dir=settings.telegram_local_dir or Path(server_dir))
