"""The document pipeline's baseline: the same downloads and aioboto3 uploads as tgs3bot, nothing else.

It long-polls the fake like a bot (so its start-up is over before the clock starts, as tgs3bot's
is), and for every document in the updates: getFile, a streamed download (aiohttp, 256 KiB
chunks, as tgs3bot reads) joined into one buffer (a single copy), one ``put_object`` (a 4 MiB
file is under one 8 MiB part, which is also what tgs3bot does) with the same checksum settings as
tgs3bot, and one sendMessage ``[document has been saved]`` as the finish line the bench waits
for. 8 copies run at once.

Run as ``python bench/raw_copy.py BASE_URL TOKEN S3_ENDPOINT BUCKET [CONCURRENCY]``; SIGTERM ends it.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from typing import Any

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig

CHUNK_SIZE = 256 * 1024
POLL_TIMEOUT_S = 60
S3_CONFIG = AioConfig(
    request_checksum_calculation="when_required", response_checksum_validation="when_required"
)


async def copy(
    http: aiohttp.ClientSession, s3: Any, base_url: str, token: str, bucket: str, update: Any
) -> None:
    """getFile, download, put_object, then the finish-line message."""
    message = update["message"]
    document = message["document"]
    api = f"{base_url}/bot{token}"
    async with http.post(f"{api}/getFile", data={"file_id": document["file_id"]}) as response:
        file_path = json.loads(await response.read())["result"]["file_path"]
    chunks = []
    async with http.get(f"{base_url}/file/bot{token}/{file_path}") as response:
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(CHUNK_SIZE):
            chunks.append(chunk)
    body = io.BytesIO(b"".join(chunks))  # one copy; BytesIO shares the joined bytes
    del chunks
    await s3.put_object(
        Bucket=bucket, Key=document["file_name"], Body=body, ContentType=document["mime_type"]
    )
    data = {"chat_id": message["chat"]["id"], "text": f"[document has been saved] {document['file_name']}"}
    async with http.post(f"{api}/sendMessage", data=data) as response:
        await response.read()


async def work(
    http: aiohttp.ClientSession, s3: Any, args: tuple[str, str, str], queue: asyncio.Queue[Any]
) -> None:
    """Copy queued documents forever."""
    base_url, token, bucket = args
    while True:
        await copy(http, s3, base_url, token, bucket, await queue.get())


async def main(base_url: str, token: str, endpoint: str, bucket: str, concurrency: int = 8) -> None:
    """Poll; copy every document of every update; until killed."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    session = aioboto3.Session()
    poll_timeout = aiohttp.ClientTimeout(total=POLL_TIMEOUT_S + 15)
    async with (
        aiohttp.ClientSession() as http,
        session.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=S3_CONFIG) as s3,
    ):
        await s3.head_bucket(Bucket=bucket)  # the connection pool warms up before the clock, as tgs3bot's
        args = (base_url, token, bucket)
        tasks = [asyncio.create_task(work(http, s3, args, queue)) for _ in range(concurrency)]
        offset = 0
        while True:
            params = {"timeout": POLL_TIMEOUT_S, "offset": offset}
            async with http.post(f"{base_url}/bot{token}/getUpdates", data=params, timeout=poll_timeout) as r:
                body = json.loads(await r.read())
            for update in body["result"]:
                if "document" in update.get("message", {}):
                    queue.put_nowait(update)
                offset = update["update_id"] + 1
        del tasks  # unreachable: the loop ends with the process


if __name__ == "__main__":
    base_url, token, endpoint, bucket = sys.argv[1:5]
    asyncio.run(main(base_url, token, endpoint, bucket, *(int(a) for a in sys.argv[5:6])))
