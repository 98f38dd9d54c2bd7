"""Downloading a VK doc: streamed in chunks from its URL, within the bot's download limit.

A doc's URL grants access to it, so logs name the doc by ``file_unique_id``, never by URL, and the
reasons given to the user are fixed phrases, never an error's own text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import structlog

from tgs3bot import replies
from tgs3bot.errors import FileUnavailable, TransferError
from tgs3bot.events import Document
from tgs3bot.utils import human_size

log = structlog.get_logger(__name__)

MiB = 1024 * 1024
DEFAULT_DOWNLOAD_LIMIT = 200 * MiB  # VK's own limit on a document's size
CHUNK_SIZE = 256 * 1024
# A download may stall between chunks for this long before it counts as broken.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)

FILE_WITHOUT_LINK = "VK gave no download link for the file"
DOWNLOAD_NOT_STARTED = replies.download_not_started("VK")
DOWNLOAD_BROKE_OFF = replies.download_broke_off("VK")


def file_too_big(limit: int) -> str:
    """The reason for a file over the download limit (``limit`` in bytes)."""
    return f"the file is bigger than the bot downloads from VK ({human_size(limit)})"


@asynccontextmanager
async def open_doc(
    http: aiohttp.ClientSession, document: Document, limit: int
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Stream a doc; ``FileUnavailable`` over ``limit`` or for an HTTP error, ``TransferError`` if broken.

    Over the limit by its declared size, its Content-Length or the bytes that actually come: a
    size VK got wrong never lets more than ``limit`` bytes through.
    """
    if document.file_size is not None and document.file_size > limit:
        raise FileUnavailable(file_too_big(limit))
    if not document.file_id.startswith(("https://", "http://")):
        raise FileUnavailable(FILE_WITHOUT_LINK)
    try:
        response = await http.get(document.file_id, timeout=DOWNLOAD_TIMEOUT)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("download_failed", doc=document.file_unique_id, error=type(exc).__name__)
        raise TransferError(DOWNLOAD_NOT_STARTED) from None
    try:
        if response.status != 200:  # an error page must never be stored as the file
            raise FileUnavailable(replies.download_failed(response.status, "VK"))
        if response.content_length is not None and response.content_length > limit:
            raise FileUnavailable(file_too_big(limit))
        yield _bounded(response.content.iter_chunked(CHUNK_SIZE), limit, document.file_unique_id)
    finally:
        response.release()


async def _bounded(chunks: AsyncIterator[bytes], limit: int, doc: str) -> AsyncIterator[bytes]:
    """The chunks, cut off past ``limit``; a broken download becomes ``TransferError``."""
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise FileUnavailable(file_too_big(limit))
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("download_broke_off", doc=doc, received=received, error=type(exc).__name__)
        raise TransferError(DOWNLOAD_BROKE_OFF) from None
