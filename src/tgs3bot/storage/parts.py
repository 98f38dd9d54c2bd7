"""Part buffers and the reader that cuts a download into upload parts (see ``storage.s3``)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import TypeVar

from tgs3bot.errors import TransferError


class PartBuffers:
    """Part buffers kept between uploads, so a part is written into memory already faulted in.

    The first touch of a fresh 4 MiB buffer (page faults, then the copy) was 9 % of the bot's time
    in the document benchmark. Buffers come in power-of-two sizes from ``MIN_POOLED`` up to the part
    size; a part of ``n`` bytes uses the size ``2**ceil(log2 n)`` (or the smallest bigger one free),
    so it mostly fills more than half of its buffer and ``BytesIO.truncate`` keeps the capacity. At
    most ``max_bytes`` are kept; parts under ``min_pooled`` bytes are not pooled.
    """

    def __init__(self, max_bytes: int, min_pooled: int = 256 * 1024) -> None:
        self.max_bytes = max_bytes
        self.min_pooled = min_pooled
        self.kept = 0  # bytes held in self._free
        self._free: dict[int, list[_PooledPart]] = {}

    def take(self, length: int | None) -> io.BytesIO:
        """A buffer positioned at 0 that holds ``length`` bytes without growing (unknown: grows)."""
        if length is None or length < self.min_pooled:
            return _presized(length, io.BytesIO())
        capacity = 1 << (length - 1).bit_length()
        # The smallest free class that holds it (a bigger one rather than a fresh allocation).
        fitting = [size for size, free in self._free.items() if size >= capacity and free]
        if not fitting:
            return _presized(capacity, _PooledPart(capacity))
        part = self._free[min(fitting)].pop()
        self.kept -= part.capacity
        part.seek(0)
        return part

    def give(self, part: io.BytesIO) -> None:
        """Take back a buffer that nothing reads any more; kept if it is pooled and there is room."""
        if isinstance(part, _PooledPart) and part.capacity and self.kept + part.capacity <= self.max_bytes:
            self._free.setdefault(part.capacity, []).append(part)
            self.kept += part.capacity


class _PooledPart(io.BytesIO):
    """A part buffer of the pool: a ``BytesIO`` (as aiohttp and botocore read it) of a size class."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity  # 0: no longer of any class (see trimmed)

    def trimmed(self, length: int) -> None:
        """Cut to ``length`` bytes; a buffer cut to half its size or less leaves its class.

        CPython's ``truncate`` reallocates such a buffer, so it is not pooled again.
        """
        self.truncate(length)
        if 2 * length <= self.capacity:
            self.capacity = 0


_Buffer = TypeVar("_Buffer", bound=io.BytesIO)


def _presized(length: int | None, part: _Buffer) -> _Buffer:
    if length:
        # One allocation of the final size, instead of a realloc (and a copy) per chunk.
        part.seek(length - 1)
        part.write(b"\0")
        part.seek(0)
    return part


class PartReader:
    """Cuts a stream of chunks into parts of exactly ``part_size`` bytes (the last may be short).

    Each part is an ``io.BytesIO`` that the chunks are written into and that is then uploaded as
    it is: aiohttp sends a file-like body in small pieces, where a ``bytes`` body would be sliced
    and buffered whole by the transport (two more copies of every part in flight, measured).

    Buffers come from ``buffers`` (sized once: the file's size is known) and go back with
    ``release`` once uploaded, to be filled again: a multipart upload uses at most
    ``max_parts_in_flight + 1`` buffers whatever the file's size. Buffers made afresh for every part
    cost page faults, and glibc serves them from its heap once it has freed a big one (its mmap
    threshold rises), where they grew the 300 MiB save's footprint from ~24 to ~40 MiB.

    A stream longer than ``expected_size`` fails at once with ``TransferError``.
    """

    def __init__(
        self, chunks: AsyncIterator[bytes], part_size: int, expected_size: int | None, buffers: PartBuffers
    ) -> None:
        self._chunks = chunks
        self._buffers = buffers
        self._part_size = part_size
        self._expected_size = expected_size
        self._leftover = memoryview(b"")
        self._pushed_back: io.BytesIO | None = None
        self.ended = False
        self.total = 0

    async def read(self) -> io.BytesIO | None:
        """The next part, positioned at its start; None once the stream is used up."""
        if self._pushed_back is not None:
            part, self._pushed_back = self._pushed_back, None
            return part
        length = None
        if self._expected_size is not None:  # what is left to hand out, at most one part
            handed_out = self.total - len(self._leftover)
            length = min(self._part_size, max(self._expected_size - handed_out, 1))
        part = self._buffers.take(length)
        filled = 0
        while filled < self._part_size:
            if not self._leftover:
                try:
                    chunk = await anext(self._chunks)
                except StopAsyncIteration:
                    self.ended = True
                    break
                self.total += len(chunk)
                if self._expected_size is not None and self.total > self._expected_size:
                    raise TransferError(
                        f"the download from Telegram ran past the file's size ({self._expected_size} bytes)"
                    )
                self._leftover = memoryview(chunk)
            take = min(len(self._leftover), self._part_size - filled)
            part.write(self._leftover[:take])
            self._leftover = self._leftover[take:]
            filled += take
        if not filled:
            return None
        if isinstance(part, _PooledPart):
            part.trimmed(filled)
        else:
            part.truncate(filled)  # a short last part
        part.seek(0)
        return part

    def push_back(self, part: io.BytesIO | None) -> None:
        """Make ``part`` the next one ``read`` returns."""
        self._pushed_back = part

    def release(self, part: io.BytesIO) -> None:
        """Hand back an uploaded part's buffer to be filled again."""
        self._buffers.give(part)
