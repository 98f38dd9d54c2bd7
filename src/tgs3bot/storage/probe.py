"""Does the store honour ``If-None-Match: *``? Asked once at start, by writing a probe object twice.

Why it matters: a save of a file under one part is a ``PutObject`` with ``If-None-Match: *``, and
the existing object's owner is looked at only when the store refuses that put (412). A store that
ignores the header (an old MinIO, several S3-compatible services) accepts the put and silently
replaces the file there, in an open bot another user's. That ``PutObject`` is the bot's only
conditional write: a big file's multipart upload, and a rename's ``CopyObject``, are preceded by a
``HeadObject`` of the name in every mode, so the probe covers exactly the path that relies on it.

The probe writes a small object under a fresh random key (``.tgs3bot-probe/<uuid4>``) with
``If-None-Match: *``, the way a save does, then writes it again the same way:

- the second write is refused (412 ``PreconditionFailed``): the store honours the header;
- it is accepted: the store ignores the header; saves fall back to checking first, with a warning;
- anything else (``AccessDenied`` on the prefix, a network error, a store that rejects the header
  with 400 or 501): the bot cannot tell, warns, and checks first too. Checking first is right on
  every store and costs one ``HeadObject`` per small save; failing the start would turn a bucket
  policy detail into a crash loop, and trusting an untested store could overwrite files. An
  operator who knows the store sets ``TGS3BOT_S3_CONDITIONAL_WRITES`` and no probe is made.

The object is deleted afterwards, also when the probe fails: on a versioned bucket the versions
the probe made are deleted, so no delete marker or old version is left either.
"""

from __future__ import annotations

import io
import uuid
from typing import TYPE_CHECKING

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from tgs3bot.config import ConditionalWrites
from tgs3bot.storage.s3errors import PRECONDITION_FAILED, error_code

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = structlog.get_logger(__name__)

PROBE_PREFIX = ".tgs3bot-probe/"
PROBE_BODY = b"tgs3bot start-up probe: does this store honour If-None-Match? Deleted at once.\n"
FALLBACK = "falling back to checking first: a HeadObject of the name before each save, under the name's lock"


async def settle_conditional_writes(client: S3Client, bucket: str, setting: ConditionalWrites) -> bool:
    """Whether saves may rely on ``If-None-Match: *``: the operator's word, or else the probe's."""
    if setting != "auto":
        log.info("s3_write_mode", conditional_writes=setting, source="TGS3BOT_S3_CONDITIONAL_WRITES")
        return setting
    honoured = await Probe(client, bucket).run()
    log.info("s3_write_mode", conditional_writes=honoured, source="probe")
    return honoured


class Probe:
    """One probe object: written twice with ``If-None-Match: *``, then deleted."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.bucket = bucket
        self.key = f"{PROBE_PREFIX}{uuid.uuid4()}"
        self._written = False  # something may be under the key: delete it
        self._versions: list[str] = []  # versions the writes made, on a versioned bucket

    async def run(self) -> bool:
        """True if the store refused the second write; False if it took it or the probe failed."""
        try:
            return await self._write_twice()
        finally:
            await self._remove()

    async def _write_twice(self) -> bool:
        for attempt in ("first", "second"):
            try:
                await self._put()
            except ClientError as exc:
                if attempt == "second" and error_code(exc) in PRECONDITION_FAILED:
                    return True
                self._cannot_tell(attempt, error_code(exc))
                return False
            except BotoCoreError as exc:
                self._cannot_tell(attempt, f"{type(exc).__name__}: {exc}")
                return False
        log.warning(
            "s3_conditional_writes_ignored",
            bucket=self.bucket,
            reason="the store accepted a second write with If-None-Match: * to the same key, "
            "so it would let one user's file replace another's",
            fallback=FALLBACK,
        )
        return False

    async def _put(self) -> None:
        try:
            answer = await self._client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=io.BytesIO(PROBE_BODY),
                IfNoneMatch="*",
                ContentType="text/plain",
            )
        except BotoCoreError:
            self._written = True  # the store may have taken it before the connection broke
            raise
        self._written = True
        version = answer.get("VersionId")
        if version and version != "null":
            self._versions.append(version)

    def _cannot_tell(self, attempt: str, error: str) -> None:
        log.warning(
            "s3_conditional_writes_probe_failed",
            bucket=self.bucket,
            key=self.key,
            write=attempt,
            error=error,
            reason="could not tell whether the store honours If-None-Match; "
            "set TGS3BOT_S3_CONDITIONAL_WRITES=true or false to skip the probe",
            fallback=FALLBACK,
        )

    async def _remove(self) -> None:
        """Delete what the probe wrote: each version it made, or the key on an unversioned bucket."""
        if not self._written:
            return
        try:
            if self._versions:
                for version in self._versions:
                    await self._client.delete_object(Bucket=self.bucket, Key=self.key, VersionId=version)
            else:
                await self._client.delete_object(Bucket=self.bucket, Key=self.key)
        except (ClientError, BotoCoreError) as exc:
            log.warning("s3_probe_object_left", bucket=self.bucket, key=self.key, error=str(exc))
