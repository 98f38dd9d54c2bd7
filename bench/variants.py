"""What-if variants of tgs3bot: the real ``tgs3bot run`` with one cost changed by a patch at start-up.

They exist to measure what a proposed change to ``src/`` would gain before anyone makes it (the
bench never edits ``src/``). Run as ``python bench/variants.py NAME[,NAME…] run``; each NAME is a
key of ``VARIANTS``:

- ``memstate``: ``MemoryState`` instead of the SQLite file (the upper bound of any state fix);
- ``keepgenerics``: strong references to the ``Response[...]`` classes aiogram's ``check_response``
  builds per call (pydantic caches them only weakly, and rebuilds them after a GC);
- ``slimreply``: sendMessage answers parsed into a model holding only ``message_id`` (not a full
  ``Message``), the one field tgs3bot reads;
- ``presized``: each upload part's ``BytesIO`` sized once to its final length (the size is known);
- ``nohead``: no ``head_object`` before a save (measurement only: it drops the name-taken check);
- ``mallopt``: glibc's mmap threshold fixed at 1 MiB (``mallopt(M_MMAP_THRESHOLD, …)``) at start;
- ``uvloop``: uvloop's event loop (if installed).

Earlier variants (SQLite reads from memory, batched handled marks, a dialog cache, a level filter
before structlog's processors, orjson for aiogram's session) were measured here and are now in
``src/``; bench/README.md keeps their figures.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _state(factory: Callable[[Path], Any]) -> Callable[[], None]:
    def apply() -> None:
        import tgs3bot.app

        setattr(tgs3bot.app, "SqliteState", factory)  # noqa: B010 (a patch mypy need not check)

    return apply


def _memstate() -> None:
    from tgs3bot.state import MemoryState

    _state(lambda _path: MemoryState())()


def _slimreply() -> None:
    from aiogram.methods import SendMessage
    from aiogram.types import TelegramObject

    import tgs3bot.telegram

    class SentMessage(TelegramObject):
        """The part of a sent Message that tgs3bot reads."""

        message_id: int

    class SendMessageSlim(SendMessage):
        __returning__ = SentMessage  # type: ignore[assignment]

    setattr(tgs3bot.telegram, "SendMessage", SendMessageSlim)  # noqa: B010


KEPT_GENERICS: list[type] = []


def _keepgenerics() -> None:
    from aiogram.methods.base import Response
    from aiogram.types import File, Message, Update, User

    # aiogram's check_response builds Response[T] on every call; pydantic caches it weakly, so after a
    # GC cycle the class (its whole schema) is built again. Strong references keep the cache warm.
    KEPT_GENERICS.extend(
        [Response[Message], Response[list[Update]], Response[bool], Response[User], Response[File]]
    )


def _presized() -> None:
    import contextvars
    import io

    from tgs3bot.storage import S3Storage, _PartReader

    expected: contextvars.ContextVar[int | None] = contextvars.ContextVar("expected", default=None)
    save = S3Storage.save
    plain_read = _PartReader.read

    async def sized_save(self: S3Storage, key: str, chunks: Any, info: Any, expected_size: int | None) -> int:
        token = expected.set(expected_size)
        try:
            return await save(self, key, chunks, info, expected_size)
        finally:
            expected.reset(token)

    async def read(self: _PartReader) -> io.BytesIO | None:
        # Size the part's buffer once (the file's size is known up front), so the chunk writes
        # never grow it: no realloc copies, no transient second buffer. Unknown size: as before.
        size = expected.get()
        if self._pushed_back is not None or size is None:
            return await plain_read(self)
        handed_out = self.total - len(self._leftover)
        length = min(self._part_size, size - handed_out)
        if length <= 0:
            return await plain_read(self)
        part = io.BytesIO()
        part.seek(length - 1)
        part.write(b"\0")  # one allocation of the exact size
        part.seek(0)
        filled = 0
        while filled < self._part_size:
            if not self._leftover:
                try:
                    chunk = await anext(self._chunks)
                except StopAsyncIteration:
                    self.ended = True
                    break
                self.total += len(chunk)
                self._leftover = memoryview(chunk)
            take = min(len(self._leftover), self._part_size - filled)
            part.write(self._leftover[:take])
            self._leftover = self._leftover[take:]
            filled += take
        part.truncate(filled)  # a short download leaves no padding behind
        part.seek(0)
        return part if filled else None

    S3Storage.save = sized_save  # type: ignore[method-assign]
    _PartReader.read = read  # type: ignore[method-assign]


def _nohead() -> None:
    from tgs3bot.storage import S3Storage

    async def head(self: S3Storage, key: str) -> None:
        return None  # measurement only: skips the "name taken" check, so it would overwrite anything

    S3Storage.head = head  # type: ignore[method-assign]


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def _mallopt() -> None:
    import ctypes

    # glibc raises its mmap threshold each time a big block is freed (up to 32 MiB), so after the
    # first 8 MiB part is freed the next ones come from the heap, grow by copies and stay resident.
    # A fixed threshold keeps every block over 1 MiB in its own mapping, returned when freed.
    ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1024 * 1024)


def _uvloop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


VARIANTS: dict[str, Callable[[], None]] = {
    "memstate": _memstate,
    "slimreply": _slimreply,
    "keepgenerics": _keepgenerics,
    "presized": _presized,
    "nohead": _nohead,
    "mallopt": _mallopt,
    "uvloop": _uvloop,
}


def available(name: str) -> bool:
    """Whether a variant's extra package (uvloop) is installed."""
    module = {"uvloop": "uvloop"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    for variant in sys.argv[1].split(","):
        VARIANTS[variant]()
    from tgs3bot.cli import main

    sys.exit(main(sys.argv[2:]))
