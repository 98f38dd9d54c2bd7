"""Benchmark 4, scaling: documents/s as ``TGS3BOT_CONCURRENT_WORKERS`` goes 1, 2, 4, 8, 16.

The document pipeline's workload (``bench/documents.py``) with 16 chats x 4 MiB at once, one bot
process per setting, next to the raw copy with the same number of concurrent copies. On this
2-core machine the bot, the fake and moto share the cores, so the curve flattens where the CPU
runs out, not where tgs3bot's design does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import documents
from bench.harness import S3, tgs3bot
from bench.report import median, table

WORKERS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Point:
    """The median seconds of tgs3bot and of the raw copy at one concurrency."""

    workers: int
    tgs3bot_s: list[float]
    raw_s: list[float]


async def run(
    s3: S3,
    workdir: Path,
    *,
    rounds: int,
    chats: int = 16,
    size_mib: int = 4,
    workers: tuple[int, ...] = WORKERS,
) -> list[Point]:
    """For each concurrency, ``rounds`` x (tgs3bot, raw copy)."""
    content = documents.random_content(size_mib)
    points = []
    for n in workers:
        bot, raw = [], []
        for _ in range(rounds):
            bot.append(
                (
                    await documents.run_once(tgs3bot(concurrent_workers=str(n)), s3, workdir, content, chats)
                ).seconds
            )
            raw.append((await documents.run_once(documents.raw_copy(n), s3, workdir, content, chats)).seconds)
        points.append(Point(n, bot, raw))
        print(f"  workers={n:<3} tgs3bot {median(bot):5.2f} s   raw copy {median(raw):5.2f} s", flush=True)
    return points


def report(points: list[Point], chats: int = 16) -> str:
    """documents/s per concurrency, and tgs3bot's time as a multiple of the raw copy's."""
    rows = [
        (
            p.workers,
            f"{chats / median(p.tgs3bot_s):.1f}",
            f"{chats / median(p.raw_s):.1f}",
            f"{median(p.tgs3bot_s) / median(p.raw_s):.2f}",
            ", ".join(f"{s:.2f}" for s in p.tgs3bot_s),
        )
        for p in points
    ]
    header = ("workers", "tgs3bot documents/s", "raw copy documents/s", "time × raw copy", "tgs3bot runs (s)")
    return table(header, rows)
