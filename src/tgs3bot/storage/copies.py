"""Server-side copies for the same file sent again (``handlers.again``): no download, no upload.

``CopyObject`` with ``MetadataDirective=REPLACE`` writes the new key with exactly the type,
disposition and metadata a fresh save would write (owner, name, file_unique_id…), not the
source's. The name is checked first (``HeadObject``), as a save on a store without conditional
writes does: the caller holds the key's lock (``storage.s3``'s docstring says what that covers).
A source that is gone by the time of the copy (``NoSuchKey``) is not an error: the caller
downloads the file instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tgs3bot.storage.base import ObjectInfo, ReplaceCheck, SaveResult, StoredObject
from tgs3bot.storage.s3errors import raise_unless_missing

if TYPE_CHECKING:
    from tgs3bot.storage.s3 import S3Storage


async def copy_object(
    storage: S3Storage, source: StoredObject, key: str, info: ObjectInfo, may_replace: ReplaceCheck
) -> SaveResult | None:
    """Copy ``source`` to ``key`` with ``info``; None if the source is gone. See the module."""
    existing = await storage.head(key)
    if existing is not None:
        may_replace(existing)  # raises TransferError to keep it
    try:
        await storage.client.copy_object(
            Bucket=storage.bucket,
            Key=key,
            CopySource={"Bucket": storage.bucket, "Key": source.key},
            MetadataDirective="REPLACE",
            ContentType=info.content_type,
            ContentDisposition=info.content_disposition,
            Metadata=dict(info.metadata),
        )
    except (ClientError, BotoCoreError) as exc:
        raise_unless_missing(exc)
        return None
    return SaveResult(size=source.size, replaced=existing is not None)
