"""Share links: presigned GET URLs for saved objects (SigV4, at most 7 days).

Signing is local (no request to the store): the URL carries the signature of a GET of the key,
valid for ``ttl_s`` seconds from now. It names the host of the client that signs it, which is why
``S3Storage`` signs with a client of its own: on ``TGS3BOT_S3_PUBLIC_URL`` when set (the store as
people reach it, say https://files.example.com, where the bot itself talks to http://minio:9000),
else on the endpoint the bot uses. SigV4 signs the ``Host`` header, so a proxy in front of the
store must pass the public host through unchanged.

The link asks the store to answer with ``Content-Disposition: attachment`` naming the file's
Unicode name (RFC 6266 ``filename*=UTF-8''…``, with an ASCII fallback), whatever the object's own
header says, so the browser saves it under the name the user knows.

A link signed with temporary credentials (an instance role, SSO, ``AWS_SESSION_TOKEN``) stops
working when those credentials expire, which may come before ``expires_at``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from tgs3bot.errors import TransferError
from tgs3bot.filenames import content_disposition
from tgs3bot.storage.base import ShareLink
from tgs3bot.storage.s3errors import storage_reason

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

# Presigned URLs must be SigV4 (the only signature S3 takes in every region today, and the one
# that bounds a link to 7 days); the client's own default may be another one for some endpoints.
SIGNING_CONFIG = AioConfig(signature_version="s3v4")


async def presign_download(client: S3Client, bucket: str, key: str, ttl_s: int) -> ShareLink:
    """A GET link for ``key`` valid for ``ttl_s`` seconds, saving the file under its Unicode name."""
    params = {"Bucket": bucket, "Key": key, "ResponseContentDisposition": content_disposition(key)}
    signed_at = time.time()
    try:
        url = await client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_s)
    except (ClientError, BotoCoreError) as exc:  # no credentials, say
        raise TransferError(storage_reason(exc)) from exc
    return ShareLink(url=url, expires_at=signed_at + ttl_s, ttl_s=ttl_s)
