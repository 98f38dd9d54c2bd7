"""The S3 bucket through aioboto3: documents are streamed in, never held whole in memory.

Small files (under one part) go up with one ``put_object``; larger ones as a multipart upload
(``storage.multipart``), holding about ``part_size * (max_parts_in_flight + 1)`` bytes whatever
the file's size. Part buffers are kept between uploads (``PartBuffers``, at most ``pooled_bytes``).
No failure leaves a partial object behind.

A key that is taken is the caller's decision (``ReplaceCheck``), made in one of two ways:

- conditional writes (the store honours ``If-None-Match``, see ``storage.probe``): a small file is
  put with ``If-None-Match: *`` and the existing object is looked at only on the store's 412;
- checking first (a store that ignores the header, or ``TGS3BOT_S3_CONDITIONAL_WRITES=false``): a
  ``HeadObject`` of the name, then an unconditional put. Big files are always checked first, so a
  refusal does not wait for their download.

Checking first is safe because every save holds the name's lock from the check to the end of the
write (``handlers.saving``: ``context.KeyLocks`` in one process, ``redis_locks.RedisKeyLocks``
across the processes sharing a Redis), and renames take the same lock: no save or rename by this
bot can come between the check and the write. What stays racy is any writer that does not take
that lock: another program writing to the bucket, another deployment of the bot on the same
bucket with its own state, or a Redis lock that expired because Redis was out of reach for longer
than its timeout (logged as ``key_lock_lost``). With conditional writes, a small file is safe from
those too; a big one never is, as its multipart upload is not conditional.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from tgs3bot.config import ConditionalWrites, MiB
from tgs3bot.errors import StartupError, TransferError
from tgs3bot.storage.base import ObjectInfo, ReplaceCheck, SaveResult, ShareLink, StoredObject
from tgs3bot.storage.copies import copy_object
from tgs3bot.storage.links import SIGNING_CONFIG, presign_download
from tgs3bot.storage.multipart import check_size, multipart_upload
from tgs3bot.storage.parts import PartBuffers, PartReader
from tgs3bot.storage.probe import settle_conditional_writes
from tgs3bot.storage.s3errors import (
    PRECONDITION_FAILED,
    error_code,
    raise_unless_missing,
    storage_reason,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


DEFAULT_PART_SIZE = 8 * MiB  # S3's minimum is 5 MiB; 2000 MB / 8 MiB stays far below 10,000 parts
S3_CONFIG = AioConfig(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=10,
    read_timeout=60,
    # Flexible checksums by default break some S3-compatible stores; send them only where required.
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


class S3Storage:
    """The bucket the documents go into (see ``interfaces.ObjectStore``)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_parts_in_flight: int = 2,
        conditional_writes: ConditionalWrites = True,
        pooled_bytes: int = 32 * MiB,
        public_url: str | None = None,
        link_ttl_s: int = 24 * 3600,
    ) -> None:
        self.bucket = bucket
        self._endpoint_url = endpoint_url
        self._region = region
        self.part_size = part_size
        self.max_parts_in_flight = max_parts_in_flight
        self._conditional_setting = conditional_writes
        # "auto" checks first until ``check_conditional_writes`` has probed the store.
        self.conditional_writes = conditional_writes is True
        self.buffers = PartBuffers(max_bytes=pooled_bytes)
        self._stack = AsyncExitStack()
        self._client: S3Client | None = None
        self._public_url = public_url  # where share links point (storage.links); None: the endpoint
        self.link_ttl_s = link_ttl_s
        self._signer: S3Client | None = None

    async def __aenter__(self) -> S3Storage:
        session = aioboto3.Session(region_name=self._region)
        client_cm = session.client("s3", endpoint_url=self._endpoint_url, config=S3_CONFIG)
        self._client = await self._stack.enter_async_context(client_cm)
        signer_cm = session.client(
            "s3", endpoint_url=self._public_url or self._endpoint_url, config=S3_CONFIG.merge(SIGNING_CONFIG)
        )
        self._signer = await self._stack.enter_async_context(signer_cm)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise RuntimeError("S3Storage is used outside its `async with`")
        return self._client

    async def check_bucket(self) -> None:
        """Fail start-up with a clear message when the bucket is missing or forbidden."""
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket"):
                raise StartupError(f"the S3 bucket {self.bucket!r} does not exist") from None
            if code in ("403", "AccessDenied"):
                raise StartupError(f"access to the S3 bucket {self.bucket!r} is forbidden") from None
            raise StartupError(f"the S3 bucket {self.bucket!r} cannot be used ({code})") from None
        except BotoCoreError as exc:
            raise StartupError(f"the S3 bucket {self.bucket!r} cannot be reached: {exc}") from None

    async def check_conditional_writes(self) -> bool:
        """Settle whether saves rely on ``If-None-Match: *`` (probing the store for "auto"); at start."""
        self.conditional_writes = await settle_conditional_writes(
            self.client, self.bucket, self._conditional_setting
        )
        return self.conditional_writes

    async def head(self, key: str) -> StoredObject | None:
        """The object under ``key``, or None."""
        try:
            answer = await self.client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise_unless_missing(exc)
            return None
        return StoredObject(
            key=key,
            size=answer["ContentLength"],
            metadata=answer.get("Metadata", {}),
            content_type=answer.get("ContentType", "application/octet-stream"),
        )

    async def rename(self, old_key: str, new_key: str, *, content_disposition: str) -> bool:
        """Move an object by server-side copy and delete; False if ``old_key`` is gone.

        The copy replaces the Content-Disposition (it names the file) and keeps the type and the
        metadata. If the old object cannot be deleted, the copy is removed again, so a failed
        rename never leaves the file twice.
        """
        old = await self.head(old_key)
        if old is None:
            return False
        try:
            await self.client.copy_object(
                Bucket=self.bucket,
                Key=new_key,
                CopySource={"Bucket": self.bucket, "Key": old_key},
                MetadataDirective="REPLACE",
                ContentType=old.content_type,
                ContentDisposition=content_disposition,
                Metadata=dict(old.metadata),
            )
            try:
                await self.client.delete_object(Bucket=self.bucket, Key=old_key)
            except (ClientError, BotoCoreError):
                await self.client.delete_object(Bucket=self.bucket, Key=new_key)
                raise
        except (ClientError, BotoCoreError) as exc:
            raise TransferError(storage_reason(exc)) from exc
        return True

    async def copy(
        self, source: StoredObject, key: str, info: ObjectInfo, *, may_replace: ReplaceCheck
    ) -> SaveResult | None:
        """Copy ``source`` to ``key`` server-side, written with ``info`` (``storage.copies``)."""
        return await copy_object(self, source, key, info, may_replace)

    async def share_link(self, key: str) -> ShareLink:
        """A presigned GET link for ``key``, valid for ``link_ttl_s`` (``storage.links``)."""
        if self._signer is None:
            raise RuntimeError("S3Storage is used outside its `async with`")
        return await presign_download(self._signer, self.bucket, key, self.link_ttl_s)

    async def save(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        info: ObjectInfo,
        expected_size: int | None,
        *,
        may_replace: ReplaceCheck,
    ) -> SaveResult:
        """Stream ``chunks`` into ``key``; on any failure nothing is left behind.

        If ``key`` is taken, ``may_replace(existing)`` decides: a ``TransferError`` it raises
        refuses the save and keeps the existing object. When ``conditional_writes`` (the store
        honours ``If-None-Match``), a file under one part is put with ``If-None-Match: *``, so the
        common case, a new name, costs one request; the existing object is looked at only when S3
        answers 412. Otherwise, and for bigger files (so a refusal does not wait for the whole
        transfer), the name is checked first: the caller holds the name's lock (module docstring).
        """
        reader = PartReader(chunks, self.part_size, expected_size, self.buffers)
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": info.content_type,
            "ContentDisposition": info.content_disposition,
            "Metadata": dict(info.metadata),
        }
        # A stream longer than expected_size fails in the reader, so this one ends within one part.
        conditional = self.conditional_writes and expected_size is not None and expected_size < self.part_size
        try:
            existing = None if conditional else await self.head(key)
            if existing is not None:
                may_replace(existing)
            replaced = await self._write(args, reader, expected_size, may_replace if conditional else None)
        except (ClientError, BotoCoreError) as exc:
            raise TransferError(storage_reason(exc)) from exc
        return SaveResult(size=reader.total, replaced=existing is not None or replaced)

    async def _write(
        self,
        args: dict[str, Any],
        reader: PartReader,
        expected_size: int | None,
        conditional: ReplaceCheck | None,
    ) -> bool:
        """One put for a stream that ends within a part, else a multipart upload; True if it replaced.

        ``conditional``: put with ``If-None-Match: *`` and ask it about an object found there.
        """
        first = await reader.read()
        if not reader.ended:
            reader.push_back(first)  # not None: the stream has not ended
            del first  # the multipart upload takes it from the reader; do not hold a second reference
            await multipart_upload(self.client, args, reader, expected_size, self.max_parts_in_flight)
            return False
        check_size(reader.total, expected_size)
        body = first or io.BytesIO()
        replaced = False
        if conditional is not None:
            replaced = await self._put_unless_refused(args, body, conditional) is not None
        else:
            await self.client.put_object(Body=body, **args)
        reader.release(body)
        return replaced

    async def _put_unless_refused(
        self, args: dict[str, Any], body: io.BytesIO, may_replace: ReplaceCheck
    ) -> StoredObject | None:
        """Put ``body`` if the key is free; if it is taken, ask ``may_replace`` and put over it.

        Returns the object that was replaced, if any.
        """
        try:
            await self.client.put_object(Body=body, IfNoneMatch="*", **args)
        except ClientError as exc:
            if error_code(exc) not in PRECONDITION_FAILED:
                raise
        else:
            return None
        existing = await self.head(args["Key"])
        if existing is not None:
            may_replace(existing)
        body.seek(0)
        await self.client.put_object(Body=body, **args)
        return existing
