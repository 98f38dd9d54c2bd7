"""The autouse guard in ``conftest``: no test reaches the real Telegram or VK, only the fakes."""

from __future__ import annotations

import socket

import pytest
from pydantic import SecretStr

from tests.conftest import is_real_platform_host
from tests.fakes.vk import GROUP_ID, TOKEN
from tgs3bot.platforms.vk import VkPlatform
from tgs3bot.state.memory import MemoryState

REAL_HOSTS = ["api.telegram.org", "vk.com", "api.vk.com", "API.VK.COM.", b"api.vk.com", "sun9-1.userapi.com"]


@pytest.mark.parametrize("host", REAL_HOSTS)
def test_resolving_a_real_platform_host_fails_the_test(host: str | bytes) -> None:
    """getaddrinfo of Telegram's, VK's or VK's storage hosts raises instead of resolving."""
    with pytest.raises(AssertionError, match="a test tried to reach"):
        socket.getaddrinfo(host, 443)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "notvk.com", "vk.community", None])
def test_other_hosts_are_not_real_platform_hosts(host: object) -> None:
    """Loopback and look-alike names pass the guard (only exact domains and their subdomains stop)."""
    assert not is_real_platform_host(host)


async def test_a_vk_platform_left_on_its_default_api_fails_the_test() -> None:
    """VkPlatform defaults to https://api.vk.com/method: starting one without the fake's URL fails."""
    platform = VkPlatform(SecretStr(TOKEN), GROUP_ID, cursors=MemoryState())
    try:
        with pytest.raises(AssertionError, match=r"reach api\.vk\.com"):
            await platform.start()
    finally:
        await platform.close()
