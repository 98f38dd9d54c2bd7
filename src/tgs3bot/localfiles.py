"""Files of a local Bot API server (``telegram-bot-api --local``), read straight from its disk.

In local mode getFile answers an absolute path on the server's disk (up to 2000 MB). The bot
reads it where it sees that directory — the same host, or a shared volume mounted elsewhere —
and only inside it: a path outside the directory, or a symlink that leads out of it, is refused
and never uploaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tgs3bot.errors import FileUnavailable

READ_CHUNK_SIZE = 1024 * 1024  # one thread hop per MiB read


@dataclass(frozen=True, slots=True)
class LocalFiles:
    """Where the server keeps its files (``server_dir``) and where the bot sees them (``bot_dir``)."""

    server_dir: PurePosixPath
    bot_dir: Path

    def resolve(self, file_path: str) -> Path:
        """The bot's path of a getFile ``file_path``; ``FileUnavailable`` for anything outside."""
        path = PurePosixPath(file_path)
        if not path.is_absolute():
            path = self.server_dir / path
        try:
            relative = path.relative_to(self.server_dir)
        except ValueError:
            raise FileUnavailable("the local Bot API server named a file outside its directory") from None
        if ".." in relative.parts:
            raise FileUnavailable("the local Bot API server named a file outside its directory")
        root = self.bot_dir.resolve()
        try:
            local = (root / relative).resolve(strict=True)  # follows symlinks, so they are checked too
        except OSError:
            raise FileUnavailable("the local Bot API server's file is not readable here") from None
        if not local.is_relative_to(root) or not local.is_file():
            raise FileUnavailable("the local Bot API server named a file outside its directory")
        return local


async def read_chunks(path: Path) -> AsyncIterator[bytes]:
    """Stream a file from disk without blocking the event loop."""
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, READ_CHUNK_SIZE):
            yield chunk
