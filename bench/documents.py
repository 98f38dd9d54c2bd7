"""Benchmark 2, the document pipeline: 20 chats send one 4 MiB document each at once; time until all saved.

The baseline is ``bench/raw_copy.py``: the same getFile + streamed downloads + aioboto3
``put_object`` for the same updates, 8 at a time, nothing else. Both are processes that already
poll the fake when the clock starts (so start-up is excluded from both); the clock starts at the
injection of the 20 document updates and stops when the fake records the 20th
``[document has been saved]`` (tgs3bot's reply; the raw script sends one per finished upload).
tgs3bot's chats are greeted before the clock starts. Rounds alternate tgs3bot and the raw copy.

Benchmark 4 (scaling) reuses ``run_once`` with ``TGS3BOT_CONCURRENT_WORKERS`` = 1 … 16.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram

from bench.harness import (
    BENCH_DIR,
    S3,
    Contestant,
    ContestantFactory,
    MiB,
    ReplyCounter,
    base_env,
    fresh_telegram,
    run_dir,
    running,
    tgs3bot,
)
from bench.report import cpu_seconds, median, table

SAVED = "[document has been saved]"


def raw_copy(concurrency: int = 8) -> ContestantFactory:
    """The raw copy script with ``concurrency`` copies at a time."""

    def make(url: str, s3: S3, _workdir: Path) -> Contestant:
        script = str(BENCH_DIR / "raw_copy.py")
        argv = [sys.executable, script, url, TOKEN, s3.endpoint, s3.bucket, str(concurrency)]
        return Contestant("raw copy", argv, base_env())

    return make


@dataclass(frozen=True)
class Run:
    """One timed run: wall seconds, the contestant's CPU seconds, and this process's (the fake Bot
    API and moto's S3 server, which share one GIL here) CPU seconds."""

    seconds: float
    cpu_s: float
    servers_cpu_s: float


async def greet(telegram: FakeTelegram, chats: list[int]) -> None:
    """Send each chat's first message and wait for the greetings (untimed)."""
    counter = ReplyCounter(telegram, "[greeting]")
    telegram.add_updates([updates.message(chat, text="/start") for chat in chats])
    await counter.wait(len(chats), timeout_s=60)


async def run_once(make: ContestantFactory, s3: S3, workdir: Path, content: bytes, chats: int) -> Run:
    """One contestant, one run: ``chats`` documents of ``content`` at once; every object is checked."""
    async with fresh_telegram() as telegram:
        rundir = run_dir(workdir, "docs")
        contestant = make(telegram.base_url, s3, rundir)
        ids = list(range(1, chats + 1))
        docs = [telegram.add_file(content, file_name=f"doc-{chat}.bin") for chat in ids]
        batch = [updates.message(chat, document=doc) for chat, doc in zip(ids, docs, strict=True)]
        async with running(contestant, telegram, rundir) as process:
            if contestant.greets:
                await greet(telegram, ids)
            counter = ReplyCounter(telegram, SAVED)
            cpu_before, servers_before = cpu_seconds(process.pid), time.process_time()
            started = time.monotonic()
            telegram.add_updates(batch)
            finished = await counter.wait(chats, timeout_s=300)
            cpu, servers_cpu = cpu_seconds(process.pid) - cpu_before, time.process_time() - servers_before
    await check_saved(s3, chats, len(content))
    await s3.empty_bucket()
    return Run(finished - started, cpu, servers_cpu)


async def check_saved(s3: S3, count: int, size: int) -> None:
    """The bucket holds ``count`` objects of ``size`` bytes."""
    listing = await s3.client.list_objects_v2(Bucket=s3.bucket)
    sizes = [o["Size"] for o in listing.get("Contents", [])]
    if sizes != [size] * count:
        raise AssertionError(f"expected {count} objects of {size} bytes, found sizes {sizes}")


def random_content(size_mib: int) -> bytes:
    """Random bytes (nothing compresses), the same for every document."""
    return os.urandom(size_mib * MiB)


async def run(
    s3: S3,
    workdir: Path,
    *,
    rounds: int,
    chats: int = 20,
    size_mib: int = 4,
    extra: dict[str, ContestantFactory] | None = None,
) -> dict[str, list[Run]]:
    """``rounds`` rounds of tgs3bot, the raw copy (and ``extra``)."""
    content = random_content(size_mib)
    contestants = {"tgs3bot": tgs3bot(), "raw copy": raw_copy()} | (extra or {})
    results: dict[str, list[Run]] = {name: [] for name in contestants}
    for n in range(1, rounds + 1):
        for name, make in contestants.items():
            result = await run_once(make, s3, workdir, content, chats)
            results[name].append(result)
            rate = chats * size_mib / result.seconds
            cpu = result.cpu_s
            print(
                f"  round {n}  {name:<22} {result.seconds:6.2f} s {rate:6.1f} MiB/s  cpu {cpu:5.2f} s",
                flush=True,
            )
    return results


def report(results: dict[str, list[Run]], chats: int = 20, size_mib: int = 4) -> str:
    """Medians, throughput, CPU, and tgs3bot's time as a multiple of the raw copy's (target <= 1.10)."""
    raw = median([r.seconds for r in results["raw copy"]])
    rows = []
    for name, runs in results.items():
        seconds = median([r.seconds for r in runs])
        rows.append(
            (
                name,
                f"{seconds:.2f}",
                f"{chats / seconds:.1f}",
                f"{chats * size_mib / seconds:.0f}",
                f"{seconds / raw:.2f}",
                f"{1000 * median([r.cpu_s for r in runs]) / chats:.1f}",
                f"{median([r.servers_cpu_s / r.seconds for r in runs]):.2f}",
                ", ".join(f"{r.seconds:.2f}" for r in runs),
            )
        )
    header = (
        "contestant",
        "median s",
        "documents/s",
        "MiB/s",
        "time x raw copy",
        "CPU ms/document",
        "servers' CPU s per s",
        "runs (s)",
    )
    ratio = median([r.seconds for r in results["tgs3bot"]]) / raw
    met = "met" if ratio <= 1.10 else "MISSED"
    verdict = f"- tgs3bot / raw copy = {ratio:.2f} x the time (target <= 1.10): {met}"
    return table(header, rows) + "\n\n" + verdict
