"""Benchmark 3, memory of the whole bot process while it saves documents: idle RSS, peak RSS, growth.

Each case is one bot process. Idle RSS (VmRSS) is read once the bot polls and has greeted the
chats; then the kernel's peak counter is reset to the current RSS (``5`` into
``/proc/PID/clear_refs``), so the peak read after the saves (VmHWM) is the transfers' own and not
start-up's. The issue's target: saving a 300 MiB file may grow the bot at most 40 MiB over idle.

- ``local``: one 300 MiB file in local Bot API server mode (``TGS3BOT_TELEGRAM_LOCAL_MODE``): getFile
  answers an absolute path in a directory the bot reads from disk (random bytes, so nothing
  compresses), uploaded as a multipart upload of 8 MiB parts;
- ``http``: ``parallel`` chats each sending one ``size`` MiB document at once, downloaded from the fake.

Standalone: ``python -m bench.memory [--sizes-mib 15 60] [--parallel 1] [--local-mib 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fakes import updates
from tests.fakes.telegram import FakeTelegram

from bench.harness import (
    S3,
    ContestantFactory,
    MiB,
    ReplyCounter,
    add_local_file,
    fresh_telegram,
    moto_s3,
    run_dir,
    running,
    tgs3bot,
    tgs3bot_env,
)
from bench.report import reset_peak_rss, rss_kib, table

SAVED = "[document has been saved]"
TARGET_GROWTH_MIB = 40


@dataclass(frozen=True)
class Memory:
    """One case's figures (KiB) and how long its saves took."""

    case: str
    idle_kib: int
    peak_kib: int
    seconds: float
    peak_since_idle: bool  # False: the peak counter could not be reset, so it includes start-up

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.idle_kib) / 1024


def write_random_file(path: Path, size_mib: int) -> None:
    """``size_mib`` MiB of random bytes, written 8 MiB at a time (the bench never holds it whole)."""
    with path.open("wb") as out:
        for _ in range(0, size_mib, 8):
            out.write(os.urandom(min(8, size_mib) * MiB))
        out.truncate(size_mib * MiB)


async def _saves(
    telegram: FakeTelegram, pid: int, chats: list[int], documents: list[dict[str, object]]
) -> tuple[int, int, float, bool]:
    """Greet, read idle, reset the peak, send the documents, wait for every save; the figures."""
    greeted = ReplyCounter(telegram, "[greeting]")
    telegram.add_updates([updates.message(c, text="/start") for c in chats])
    await greeted.wait(len(chats), timeout_s=60)
    await asyncio.sleep(0.5)  # the greeting's garbage settles
    idle = rss_kib(pid)
    reset = reset_peak_rss(pid)
    saved = ReplyCounter(telegram, SAVED)
    started = time.monotonic()
    telegram.add_updates([updates.message(c, document=d) for c, d in zip(chats, documents, strict=True)])
    finished = await saved.wait(len(chats), timeout_s=900)
    return idle, rss_kib(pid, "VmHWM"), finished - started, reset


async def local_file(
    s3: S3, workdir: Path, size_mib: int = 300, bot: ContestantFactory | None = None, label: str = "tgs3bot"
) -> Memory:
    """One ``size_mib`` MiB file saved in local Bot API server mode."""
    rundir = run_dir(workdir, "local")
    server_dir = rundir / "telegram-bot-api"
    server_dir.mkdir()
    path = server_dir / "documents" / f"file_{size_mib}.bin"
    path.parent.mkdir()
    write_random_file(path, size_mib)
    settings = {"telegram_local_mode": "true", "telegram_local_server_dir": str(server_dir)}
    make = bot or tgs3bot()
    try:
        async with fresh_telegram() as telegram:
            doc = add_local_file(telegram, path, file_name=f"big-{size_mib}.bin", mime_type="application/zip")
            contestant = make(telegram.base_url, s3, rundir)
            contestant.env = dict(contestant.env) | tgs3bot_env(telegram.base_url, s3, rundir, **settings)
            async with running(contestant, telegram, rundir) as process:
                idle, peak, seconds, reset = await _saves(telegram, process.pid, [1], [doc])
        head = await s3.client.head_object(Bucket=s3.bucket, Key=f"big-{size_mib}.bin")
        if head["ContentLength"] != size_mib * MiB:
            raise AssertionError(f"saved {head['ContentLength']} bytes of {size_mib * MiB}")
    finally:
        path.unlink(missing_ok=True)
        await s3.empty_bucket()
    return Memory(f"{label}: 1 × {size_mib} MiB, local mode", idle, peak, seconds, reset)


async def http_documents(s3: S3, workdir: Path, size_mib: int, parallel: int) -> Memory:
    """``parallel`` chats each sending one ``size_mib`` MiB document at once (downloaded over HTTP)."""
    rundir = run_dir(workdir, "http")
    content = os.urandom(size_mib * MiB)
    try:
        async with fresh_telegram() as telegram:
            chats = list(range(1, parallel + 1))
            docs: list[dict[str, object]] = [
                telegram.add_file(content, file_name=f"file-{c}.bin") for c in chats
            ]
            async with running(tgs3bot()(telegram.base_url, s3, rundir), telegram, rundir) as bot:
                idle, peak, seconds, reset = await _saves(telegram, bot.pid, chats, docs)
    finally:
        await s3.empty_bucket()
    return Memory(f"tgs3bot: {parallel} × {size_mib} MiB at once", idle, peak, seconds, reset)


def report(results: list[Memory]) -> str:
    """Idle, peak and growth per case, with the 300 MiB target where it applies."""
    rows = []
    for m in results:
        target = ""
        if "local" in m.case:
            verdict = "met" if m.growth_mib <= TARGET_GROWTH_MIB else "MISSED"
            target = f"≤ {TARGET_GROWTH_MIB} MiB: {verdict}"
        rows.append(
            (
                m.case,
                f"{m.idle_kib / 1024:.1f}",
                f"{m.peak_kib / 1024:.1f}",
                f"{m.growth_mib:.1f}" + ("" if m.peak_since_idle else " (peak incl. start-up)"),
                f"{m.seconds:.2f}",
                target,
            )
        )
    header = ("case", "idle RSS MiB", "peak RSS MiB", "growth MiB", "save s", "target")
    return table(header, rows)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[15], help="sizes of the HTTP documents")
    parser.add_argument(
        "--parallel", type=int, default=1, help="chats sending one HTTP document each at once"
    )
    parser.add_argument("--local-mib", type=int, default=0, help="also save one file this big in local mode")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        async with moto_s3() as s3:
            for size in args.sizes_mib:
                results.append(await http_documents(s3, Path(tmp), size, args.parallel))
            if args.local_mib:
                results.append(await local_file(s3, Path(tmp), args.local_mib))
    print(report(results))


if __name__ == "__main__":
    asyncio.run(main())
