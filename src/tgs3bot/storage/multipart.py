"""Multipart uploads: parts go up while the next one is read, and a failure leaves nothing behind.

At most ``max_parts_in_flight`` parts upload at once, so one transfer holds about
``part_size * (max_parts_in_flight + 1)`` bytes whatever the file's size. Any failure (S3, a
broken or short download, cancellation) aborts the upload, so no parts are left behind.

The upload is unconditional: ``S3Storage.save`` checks the name before a big file's download
starts, under the name's lock (a refusal then does not wait for the transfer).
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from tgs3bot import metrics
from tgs3bot.errors import TransferError
from tgs3bot.storage.parts import PartReader

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = structlog.get_logger(__name__)


def check_size(received: int, expected: int | None) -> None:
    """Refuse a download that ended short of the size Telegram gave."""
    if expected is not None and received != expected:
        raise TransferError(f"the download from Telegram ended after {received} of {expected} bytes")


async def multipart_upload(
    client: S3Client,
    args: dict[str, Any],
    reader: PartReader,
    expected_size: int | None,
    max_parts_in_flight: int,
) -> None:
    """Upload ``reader``'s parts as one object (``args``: Bucket, Key and the object's headers)."""
    upload = await client.create_multipart_upload(**args)
    upload_id = upload["UploadId"]
    in_flight: set[asyncio.Task[dict[str, Any]]] = set()
    try:
        parts: list[asyncio.Task[dict[str, Any]]] = []
        part = await reader.read()
        while part is not None:
            if len(in_flight) >= max_parts_in_flight:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # raise the first failure now rather than after the download
            task = asyncio.create_task(_upload_part(client, args, upload_id, len(parts) + 1, part, reader))
            parts.append(task)
            in_flight.add(task)
            part = await reader.read()
        check_size(reader.total, expected_size)
        etags = [await task for task in parts]
        await client.complete_multipart_upload(
            Bucket=args["Bucket"],
            Key=args["Key"],
            UploadId=upload_id,
            MultipartUpload={"Parts": etags},  # type: ignore[typeddict-item]
        )
    except BaseException:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        # Shielded: even a shutdown that cancels this transfer must not leave the parts behind.
        await asyncio.shield(_abort(client, args["Bucket"], args["Key"], upload_id))
        raise


async def _upload_part(
    client: S3Client, args: dict[str, Any], upload_id: str, number: int, body: io.BytesIO, reader: PartReader
) -> dict[str, Any]:
    answer = await client.upload_part(
        Bucket=args["Bucket"], Key=args["Key"], UploadId=upload_id, PartNumber=number, Body=body
    )
    reader.release(body)
    return {"PartNumber": number, "ETag": answer["ETag"]}


async def _abort(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (ClientError, BotoCoreError) as exc:
        metrics.s3_error(exc)
        log.exception("multipart_abort_failed", key=key, upload_id=upload_id)
    else:
        log.info("multipart_aborted", key=key)
