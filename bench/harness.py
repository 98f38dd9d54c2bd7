"""What every benchmark needs: moto's S3 server, the fake Bot API, and contestants as real processes.

The bench process hosts both servers (moto in a thread, the fake on the event loop); each
contestant (``tgs3bot run``, the aiogram bot, the raw loops) is its own subprocess, so all of them
share the machine's cores with the servers in the same way.

Waits are event-driven: the fake wakes its waiters on every recorded call, and ``ReplyCounter``
counts only the calls recorded since its last look, so waiting for the 4000th reply costs O(n).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aioboto3
from moto.server import ThreadedMotoServer
from tests.fakes.telegram import TOKEN, DownloadFaults, FakeFile, FakeTelegram

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TGS3BOT = str(Path(sys.executable).parent / "tgs3bot")
MiB = 1024 * 1024
STOP_TIMEOUT_S = 15.0


# -- the servers --------------------------------------------------------------------------------


@dataclass
class S3:
    """moto's S3 server and a client of it, with one bucket."""

    endpoint: str
    client: Any
    bucket: str

    async def empty_bucket(self) -> None:
        """Delete every object, so moto does not keep the previous run's bytes in memory."""
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


@asynccontextmanager
async def moto_s3() -> AsyncIterator[S3]:
    """moto's S3 server on a free port of 127.0.0.1 (a thread of this process) with a fresh bucket."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(AWS_ENV)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        async with aioboto3.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1") as client:
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            await client.create_bucket(Bucket=bucket)
            yield S3(endpoint, client, bucket)
    finally:
        moto.stop()


def add_local_file(telegram: FakeTelegram, path: Path, *, file_name: str, mime_type: str) -> dict[str, Any]:
    """Register a file of a local Bot API server: getFile answers its absolute path on disk.

    The fake has no local mode; its ``files`` registry is public, so the bench adds the entry itself
    (a file id of its own prefix, so ``add_file``'s numbering never collides with it).
    """
    n = len(telegram.files) + 1
    file_id, unique_id = f"LOCALbench{n:04d}", f"AgADlocal{n:04d}"
    size = path.stat().st_size
    document: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique_id, "file_name": file_name}
    document |= {"mime_type": mime_type, "file_size": size}
    telegram.files[file_id] = FakeFile(
        file_id, unique_id, str(path.resolve()), b"", document, too_big=False, faults=DownloadFaults()
    )
    return dict(document)


# -- waiting on the fake ------------------------------------------------------------------------


class ReplyCounter:
    """Counts successful sendMessage calls whose text contains a marker, looking at each call once."""

    def __init__(self, telegram: FakeTelegram, marker: str = "", *, since: int | None = None) -> None:
        self.telegram = telegram
        self.marker = marker
        self._cursor = len(telegram.calls) if since is None else since
        self.count = 0
        self.last_at: float | None = None  # time.monotonic() of the latest counted reply

    def _scan(self) -> None:
        calls = self.telegram.calls
        while self._cursor < len(calls):
            call = calls[self._cursor]
            self._cursor += 1
            if call.method == "sendMessage" and call.ok and self.marker in str(call.params.get("text", "")):
                self.count += 1
                self.last_at = call.at

    async def wait(self, count: int, *, timeout_s: float) -> float:
        """Wait until ``count`` replies are counted; return the monotonic time of the last one."""

        def enough() -> bool:
            self._scan()
            return self.count >= count

        # The fake's broadcast signal fires on every recorded call (tests/fakes/wire.Signal).
        if not await self.telegram._signal.wait_until(enough, timeout_s):
            raise TimeoutError(
                f"{self.count} of {count} replies with {self.marker!r} after {timeout_s:.0f} s"
            )
        assert self.last_at is not None
        return self.last_at


async def wait_polling(telegram: FakeTelegram, process: asyncio.subprocess.Process, timeout_s: float) -> None:
    """Wait until the contestant's first getUpdates arrives (failing fast if the process died)."""
    waiter = asyncio.ensure_future(
        telegram.wait_for_call(lambda c: c.method == "getUpdates", timeout=timeout_s)
    )
    exited = asyncio.ensure_future(process.wait())
    try:
        await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            raise RuntimeError(f"the contestant exited with {process.returncode} before polling")
        waiter.result()
    finally:
        for task in (waiter, exited):
            task.cancel()
        await asyncio.gather(waiter, exited, return_exceptions=True)


# -- contestant processes -----------------------------------------------------------------------


def base_env() -> dict[str, str]:
    """This environment without any TGS3BOT_ setting, with moto's credentials and the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGS3BOT_")}
    env.update(AWS_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def tgs3bot_env(telegram_url: str, s3: S3, workdir: Path, **settings: str) -> dict[str, str]:
    """The environment of ``tgs3bot run`` against the fake and moto; ``settings`` are TGS3BOT_ names."""
    env = base_env()
    env.update(
        TGS3BOT_TELEGRAM_TOKEN=TOKEN,
        TGS3BOT_TELEGRAM_API_URL=telegram_url,
        TGS3BOT_S3_BUCKET=s3.bucket,
        TGS3BOT_S3_ENDPOINT_URL=s3.endpoint,
        TGS3BOT_S3_REGION="us-east-1",
        TGS3BOT_LOG_LEVEL="WARNING",
        TGS3BOT_LOG_FORMAT="json",
        TGS3BOT_STATE_PATH=str(workdir / "state.sqlite3"),
    )
    env.update({f"TGS3BOT_{k.upper()}": v for k, v in settings.items()})
    return env


@dataclass
class Contestant:
    """A process to benchmark: its command line and environment (the fake's URL is filled in later)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    greets: bool = False  # answers a chat's first message with a greeting (tgs3bot does)


ContestantFactory = Callable[[str, S3, Path], Contestant]


def tgs3bot(variants: str = "", *, src: Path | None = None, **settings: str) -> ContestantFactory:
    """``tgs3bot run`` (with ``variants``: through ``bench/variants.py``) and TGS3BOT_ ``settings``.

    ``src``: import the package from that copy of ``src/`` (first on PYTHONPATH) instead of this
    tree's. Each run gets its own directory, so its state file starts empty. The name shows what
    differs: ``tgs3bot``, ``tgs3bot@INFO``, ``tgs3bot+memstate``, ``tgs3bot workers=4``,
    ``tgs3bot@old-src``.
    """
    name = "tgs3bot" + (f"@{src.name}" if src else "") + (f"+{variants}" if variants else "")
    if settings.get("log_level", "WARNING") != "WARNING":
        name += f"@{settings['log_level']}"
    extra = " ".join(f"{k}={v}" for k, v in settings.items() if k != "log_level")
    name += f" {extra}" if extra else ""

    def make(url: str, s3: S3, workdir: Path) -> Contestant:
        env = tgs3bot_env(url, s3, workdir, **settings)
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join((str(src), env["PYTHONPATH"]))
        if variants:
            argv = [sys.executable, str(BENCH_DIR / "variants.py"), variants, "run"]
        else:
            argv = [TGS3BOT, "run"]
        return Contestant(name, argv, env, greets=True)

    return make


@asynccontextmanager
async def running(
    contestant: Contestant, telegram: FakeTelegram, workdir: Path, *, start_timeout_s: float = 60
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start the contestant, yield once it polls the fake, then SIGTERM it (SIGKILL if it hangs)."""
    gc.collect()  # the bench process's garbage is collected now, not while a contestant is timed
    log_path = workdir / (re.sub(r"[^\w.+@=-]+", "_", contestant.name)[:80] + ".log")
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *contestant.argv, env=dict(contestant.env), cwd=workdir, stdout=log, stderr=log
        )
        try:
            await wait_polling(telegram, process, start_timeout_s)
            yield process
        except BaseException:
            tail = log_path.read_text(errors="replace")[-3000:]
            print(f"--- {contestant.name} log tail ({log_path}) ---\n{tail}", file=sys.stderr)
            raise
        finally:
            await stop(process)


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, wait, SIGKILL if it does not exit."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def run_dir(workdir: Path, name: str) -> Path:
    """A new directory for one contestant run (its state file, its log), never shared with another run."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))


@asynccontextmanager
async def fresh_telegram() -> AsyncIterator[FakeTelegram]:
    """A new fake Bot API for one contestant run (so its call list starts empty)."""
    async with FakeTelegram() as telegram:
        yield telegram


# -- the old one-shot rig (bench/memory.py's original interface) --------------------------------


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
    async with moto_s3() as s3, fresh_telegram() as telegram:
        bot = tgs3bot(**cast(dict[str, Any], settings))(telegram.base_url, s3, workdir)
        async with running(bot, telegram, workdir) as process:
            yield Rig(telegram, s3.client, s3.bucket, process)
