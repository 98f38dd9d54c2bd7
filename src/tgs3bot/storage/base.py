"""The bucket's seam: ``ObjectStore`` and the data that crosses it (``S3Storage`` implements it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What the bucket knows about a saved object."""

    key: str
    size: int
    metadata: Mapping[str, str]
    content_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What is written along with an object's bytes."""

    content_type: str
    content_disposition: str
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What a save wrote: its size, and whether it replaced an object under the same key."""

    size: int
    replaced: bool


ReplaceCheck = Callable[[StoredObject], None]
"""Called with the object already under a key being saved; raises ``TransferError`` to keep it."""


class ObjectStore(Protocol):
    """The bucket, as the document handlers use it."""

    async def head(self, key: str) -> StoredObject | None:
        """The object under ``key``, or None if there is none."""
        ...

    async def rename(self, old_key: str, new_key: str, *, content_disposition: str) -> bool:
        """Move an object within the bucket (server-side); False if ``old_key`` is gone."""
        ...

    async def save(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        info: ObjectInfo,
        expected_size: int | None,
        *,
        may_replace: ReplaceCheck,
    ) -> SaveResult:
        """Stream ``chunks`` into ``key``; leaves nothing behind on failure.

        If ``key`` is taken, ``may_replace`` is called with the object there and may refuse.
        """
        ...

    async def copy(
        self, source: StoredObject, key: str, info: ObjectInfo, *, may_replace: ReplaceCheck
    ) -> SaveResult | None:
        """Copy ``source`` to ``key`` in the bucket (server-side), written with ``info``.

        As ``save``, ``may_replace`` decides about an object already under ``key``. None if
        ``source`` is gone by then.
        """
        ...

    async def share_link(self, key: str) -> ShareLink:
        """A download link for ``key`` that works until it expires (signed here: no request)."""
        ...


@dataclass(frozen=True, slots=True)
class ShareLink:
    """A presigned download link, and when it stops working (Unix time, seconds)."""

    url: str
    expires_at: float
    ttl_s: int  # how long it was signed for
