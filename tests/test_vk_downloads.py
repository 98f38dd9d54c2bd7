"""VkPlatform's doc downloads against the fake VK API: streamed, bounded, broken ones refused."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.vk import FakeVk
from tests.vk_fixtures import MakePlatform, document_of, make_platform, platform, read_all, vk
from tgs3bot.errors import FileUnavailable, TransferError
from tgs3bot.events import Document
from tgs3bot.platforms import vk_files
from tgs3bot.platforms.vk import VkPlatform

__all__ = ["make_platform", "platform", "vk"]  # fixtures


async def test_download_streams_while_held(vk: FakeVk, platform: VkPlatform) -> None:
    """The first chunk arrives while the rest is held back: the file is streamed, not read whole."""
    hold = asyncio.Event()
    content = bytes(range(256)) * 1024
    document = await document_of(vk, platform, vk.add_doc(content, title="big.bin", hold=hold))
    async with platform.open_file(document) as chunks:
        first = await anext(chunks)
        assert content.startswith(first) and len(first) < len(content)
        hold.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert first + rest == content


async def test_doc_over_the_limit_is_not_downloaded(vk: FakeVk, make_platform: MakePlatform) -> None:
    """A doc whose size exceeds the limit is refused with a fixed reason, before any download."""
    platform = await make_platform(download_limit=1000)
    document = await document_of(vk, platform, vk.add_doc(b"x" * 1001, title="big.bin"))
    with pytest.raises(FileUnavailable) as caught:
        await read_all(platform, document)
    assert caught.value.reason == vk_files.file_too_big(1000)
    assert vk.docs[document.file_unique_id].downloads_started == 0


async def test_doc_bigger_than_it_said_is_cut_off(vk: FakeVk, make_platform: MakePlatform) -> None:
    """A download longer than the limit (the doc's size said less) is refused, not stored."""
    platform = await make_platform(download_limit=1000)
    document = await document_of(vk, platform, vk.add_doc(b"x" * 5000, title="liar.bin", size=10))
    with pytest.raises(FileUnavailable, match="bigger than the bot downloads"):
        await read_all(platform, document)


async def test_broken_download_is_a_transfer_error(vk: FakeVk, platform: VkPlatform) -> None:
    """A download cut short is a TransferError with a fixed reason (never the URL)."""
    document = await document_of(vk, platform, vk.add_doc(b"y" * 200_000, truncate_at=70_000))
    with pytest.raises(TransferError) as caught:
        await read_all(platform, document)
    assert caught.value.reason == vk_files.DOWNLOAD_BROKE_OFF


async def test_download_http_error_is_file_unavailable(vk: FakeVk, platform: VkPlatform) -> None:
    """An error page is never stored: HTTP 404 is FileUnavailable with the status."""
    document = await document_of(vk, platform, vk.add_doc(b"z", status=404))
    with pytest.raises(FileUnavailable, match=r"HTTP 404"):
        await read_all(platform, document)


async def test_download_that_cannot_start(vk: FakeVk, platform: VkPlatform) -> None:
    """A doc server that cannot be reached is a TransferError saying so."""
    document = await document_of(vk, platform, vk.add_doc(b"z"))
    await vk.stop()
    with pytest.raises(TransferError) as caught:
        await read_all(platform, document)
    assert caught.value.reason == vk_files.DOWNLOAD_NOT_STARTED


async def test_doc_without_a_link(platform: VkPlatform) -> None:
    """A doc VK gave no http(s) link for is refused with a fixed reason, nothing fetched."""
    document = Document(file_id="", file_unique_id="1_2", file_name="a", mime_type=None, file_size=1)
    with pytest.raises(FileUnavailable) as caught:
        await read_all(platform, document)
    assert caught.value.reason == vk_files.FILE_WITHOUT_LINK
