"""What every benchmark needs: moto's S3 server, the fake Bot API, and the bot as a real process."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioboto3
from moto.server import ThreadedMotoServer
from tests.fakes.telegram import TOKEN, FakeTelegram

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from /proc (VmRSS: now; VmHWM: the peak so far), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for pid {pid}")


@dataclass
class Rig:
    """The running servers and the bot process."""

    telegram: FakeTelegram
    s3: Any
    bucket: str
    process: asyncio.subprocess.Process


@asynccontextmanager
async def rig(workdir: Path, **settings: str) -> AsyncIterator[Rig]:
    """Start moto, the fake Bot API and ``tgs3bot run``; yield once the bot polls; stop it all."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(AWS_ENV)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    session = aioboto3.Session()
    try:
        async with (
            FakeTelegram() as telegram,
            session.client("s3", endpoint_url=endpoint, region_name="us-east-1") as s3,
        ):
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            await s3.create_bucket(Bucket=bucket)
            env = {k: v for k, v in os.environ.items() if not k.startswith("TGS3BOT_")}
            env.update(
                TGS3BOT_TELEGRAM_TOKEN=TOKEN,
                TGS3BOT_TELEGRAM_API_URL=telegram.base_url,
                TGS3BOT_S3_BUCKET=bucket,
                TGS3BOT_S3_ENDPOINT_URL=endpoint,
                TGS3BOT_S3_REGION="us-east-1",
                TGS3BOT_LOG_LEVEL="WARNING",
                **{f"TGS3BOT_{k.upper()}": v for k, v in settings.items()},
            )
            log = (workdir / "bot.log").open("wb")
            process = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "tgs3bot"),
                "run",
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=log,
            )
            try:
                await telegram.wait_for_call(lambda c: c.method == "getUpdates", timeout=60)
                yield Rig(telegram, s3, bucket, process)
            finally:
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
                log.close()
    finally:
        moto.stop()
