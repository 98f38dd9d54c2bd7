"""The file side of the fake Bot API: files a test registers, getFile, and downloads that misbehave
on demand (slow, held, cut short, an error page). ``FakeTelegram`` mixes it in."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from aiohttp import web

from .wire import ApiError, Json, Signal, end_download, error_body

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # the cloud Bot API's getFile limit


@dataclass
class DownloadFaults:
    """How the download route misbehaves for one file (all off by default)."""

    chunk_size: int = 64 * 1024
    delay_s_per_chunk: float = 0.0
    bytes_per_s: float | None = None
    truncate_at: int | None = None
    status: int | None = None
    hold: asyncio.Event | None = None


@dataclass
class FakeFile:
    """A file registered with ``add_file`` and how often it was downloaded."""

    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    document: Json
    too_big: bool
    faults: DownloadFaults
    downloads_started: int = 0
    downloads_completed: int = 0


class FileRoutes:
    """``add_file`` and the getFile method and download route of ``FakeTelegram``."""

    token: str
    files: dict[str, FakeFile]
    _signal: Signal

    def add_file(
        self,
        content: bytes,
        *,
        file_name: str | None = "file.bin",
        mime_type: str | None = "application/octet-stream",
        file_size: int | Literal["auto"] | None = "auto",
        too_big: bool | None = None,
        chunk_size: int = 64 * 1024,
        delay_s_per_chunk: float = 0.0,
        bytes_per_s: float | None = None,
        truncate_at: int | None = None,
        status: int | None = None,
        hold: asyncio.Event | None = None,
    ) -> Json:
        """Register a file and return the ``document`` dict to put into a message.

        ``too_big=None`` means: too big when the declared size exceeds 20 MiB.
        """
        n = len(self.files) + 1
        file_id, unique_id = f"BQACAgIAAxkBAAI{n:04d}", f"AgAD{n:04d}"
        size = len(content) if file_size == "auto" else file_size
        named = {"file_name": file_name, "mime_type": mime_type, "file_size": size}
        document = {"file_id": file_id, "file_unique_id": unique_id} | {
            k: v for k, v in named.items() if v is not None
        }
        faults = DownloadFaults(chunk_size, delay_s_per_chunk, bytes_per_s, truncate_at, status, hold)
        big = (size or 0) > MAX_DOWNLOAD_SIZE if too_big is None else too_big
        path = f"documents/file_{n}{PurePosixPath(file_name or '').suffix}"
        self.files[file_id] = FakeFile(file_id, unique_id, path, content, document, big, faults)
        return dict(document)

    def set_download_faults(self, file_id: str, **changes: Any) -> None:
        """Change a file's ``DownloadFaults`` fields (e.g. ``truncate_at=10``, ``hold=None``)."""
        file = self.files[file_id]
        file.faults = dataclasses.replace(file.faults, **changes)

    def _get_file(self, params: dict[str, Any]) -> Json:
        """getFile."""
        file = self.files.get(str(params.get("file_id", "")))
        if file is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if file.too_big:
            raise ApiError(400, "Bad Request: file is too big")
        keys = ("file_id", "file_unique_id", "file_size")
        return {k: file.document[k] for k in keys if k in file.document} | {"file_path": file.file_path}

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """Route ``/file/bot{token}/{path}``: stream the bytes, misbehaving as configured."""
        path = request.match_info["path"]
        file = next((f for f in self.files.values() if f.file_path == path), None)
        if request.match_info["token"] != self.token or file is None:
            return web.json_response(error_body(404, "Not Found"), status=404)
        file.downloads_started += 1
        self._signal.fire()
        faults = file.faults
        if faults.status is not None:
            page = f"<html><body><h1>{faults.status} Error</h1></body></html>"
            return web.Response(status=faults.status, text=page, content_type="text/html")
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(file.content)
        await response.prepare(request)
        await self._stream(response, file.content[: faults.truncate_at], faults)
        if await end_download(request, response, len(file.content), faults.truncate_at):
            file.downloads_completed += 1
            self._signal.fire()
        return response

    @staticmethod
    async def _stream(response: web.StreamResponse, data: bytes, faults: DownloadFaults) -> None:
        """Write ``data`` in chunks, throttled, pausing after the first chunk while held."""
        for start in range(0, len(data), faults.chunk_size):
            chunk = data[start : start + faults.chunk_size]
            await response.write(chunk)
            if start == 0 and faults.hold is not None:
                await faults.hold.wait()
            delay = faults.delay_s_per_chunk
            if faults.bytes_per_s:
                delay += len(chunk) / faults.bytes_per_s
            if delay > 0:
                await asyncio.sleep(delay)
