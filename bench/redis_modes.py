"""Benchmark ``redis``: the text and document pipelines with the queue and state in Redis, by layout.

The workloads are benchmarks 1 and 2's (``bench/text.py``: 400 chats x 10 texts; ``bench/documents.py``:
20 chats x 4 MiB, greeted before the clock starts), run by five layouts of ``tgs3bot`` processes
(``bench/redis_procs.py``): ``run`` with SQLite and no Redis (the baseline), ``run`` with Redis,
and ``poll`` beside 1, 2 and 4 ``work``. Each process has the default 8 workers. Rounds alternate
the layouts; every Redis run starts on a flushed server. The clock is the other benchmarks':
from the injection of the updates to the fake's record of the last expected reply.

CPU is summed over all of a layout's processes (user + system, from /proc), beside redis-server's
and the bench process's (the fake Bot API and moto's S3 server): on a shared machine CPU per update
is steadier than throughput.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes import updates

from bench import documents, text
from bench.harness import S3, ReplyCounter, fresh_telegram, run_dir
from bench.redis_procs import CpuClock, Layout, RedisServer, running_layout
from bench.report import median, table

LAYOUTS = (
    Layout("in-process (run, SQLite)", ("run",), redis=False),
    Layout("redis: run", ("run",), redis=True),
    Layout("redis: poll + 1 work", ("poll", "work"), redis=True),
    Layout("redis: poll + 2 work", ("poll", "work", "work"), redis=True),
    Layout("redis: poll + 4 work", ("poll", "work", "work", "work", "work"), redis=True),
)
BASELINE = LAYOUTS[0].name
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Run:
    """One timed run: wall seconds; CPU seconds of the bot's processes, redis-server, the bench."""

    seconds: float
    bot_cpu_s: float
    redis_cpu_s: float
    bench_cpu_s: float
    redis_commands: int


@dataclass
class Results:
    """One workload's runs by layout, and whatever looked wrong in them (exit codes, log lines)."""

    workload: str
    items: int  # updates or documents per run
    unit: str  # "updates" or "documents"
    runs: dict[str, list[Run]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def seconds(self, name: str) -> float:
        return median([r.seconds for r in self.runs[name]])

    def ms_per_item(self, name: str, cpu: Callable[[Run], float]) -> float:
        return 1000 * median([cpu(r) for r in self.runs[name]]) / self.items


async def text_once(layout: Layout, s3: S3, workdir: Path, redis: RedisServer, problems: list[str]) -> Run:
    """400 chats x 10 texts at once; every greeting and document-required reply is checked."""
    chats, per_chat = 400, 10
    async with fresh_telegram() as telegram:
        rundir = run_dir(workdir, "redis-text")
        async with running_layout(layout, telegram, s3, rundir, redis) as group:
            counter = ReplyCounter(telegram)
            await redis.reset_stats()
            clock = CpuClock(group.pids, redis.pid)
            started = time.monotonic()
            telegram.add_updates(text.workload(chats, per_chat))
            finished = await counter.wait(chats * per_chat, timeout_s=TIMEOUT_S)
            cpu = clock.read()
            commands = await redis.commands()
        problems += group.problems
        text.check_replies(telegram, layout.name, chats, per_chat)
    return Run(finished - started, cpu.bot_s, cpu.redis_s, cpu.bench_s, commands)


async def docs_once(layout: Layout, s3: S3, workdir: Path, redis: RedisServer, problems: list[str]) -> Run:
    """20 chats (greeted first, untimed) send a 4 MiB document each at once; the bucket is checked."""
    chats, content = 20, _content()
    async with fresh_telegram() as telegram:
        rundir = run_dir(workdir, "redis-docs")
        ids = list(range(1, chats + 1))
        docs = [telegram.add_file(content, file_name=f"doc-{chat}.bin") for chat in ids]
        batch = [updates.message(chat, document=doc) for chat, doc in zip(ids, docs, strict=True)]
        async with running_layout(layout, telegram, s3, rundir, redis) as group:
            await documents.greet(telegram, ids)
            counter = ReplyCounter(telegram, documents.SAVED)
            await redis.reset_stats()
            clock = CpuClock(group.pids, redis.pid)
            started = time.monotonic()
            telegram.add_updates(batch)
            finished = await counter.wait(chats, timeout_s=TIMEOUT_S)
            cpu = clock.read()
            commands = await redis.commands()
        problems += group.problems
    await documents.check_saved(s3, chats, len(content))
    await s3.empty_bucket()
    return Run(finished - started, cpu.bot_s, cpu.redis_s, cpu.bench_s, commands)


@functools.cache
def _content() -> bytes:
    """The 4 MiB of random bytes every document carries (made once)."""
    return documents.random_content(4)


RunOnce = Callable[[Layout, S3, Path, RedisServer, list[str]], Awaitable[Run]]
WORKLOADS: dict[str, tuple[str, int, str, RunOnce]] = {
    "text": ("text, 400 chats x 10 texts", 4000, "updates", text_once),
    "docs": ("documents, 20 chats x 4 MiB", 20, "documents", docs_once),
}


async def run(s3: S3, workdir: Path, redis: RedisServer, *, workload: str, rounds: int) -> Results:
    """``rounds`` rounds of every layout, alternating, for one workload (``text`` or ``docs``)."""
    title, items, unit, once = WORKLOADS[workload]
    results = Results(title, items, unit)
    for n in range(1, rounds + 1):
        for layout in LAYOUTS:
            result = await once(layout, s3, workdir, redis, results.problems)
            results.runs.setdefault(layout.name, []).append(result)
            _progress(n, layout.name, result, items, unit)
    return results


def _progress(n: int, name: str, run: Run, items: int, unit: str) -> None:
    print(
        f"  round {n}  {name:<26} {run.seconds:6.2f} s {items / run.seconds:7.1f} {unit}/s"
        f"  bot cpu {run.bot_cpu_s:5.2f} s  redis cpu {run.redis_cpu_s:5.2f} s",
        flush=True,
    )


def report(results: Results) -> str:
    """Per layout: median seconds, throughput, time and CPU against in-process, CPU per item, runs."""
    base_s = results.seconds(BASELINE)
    base_cpu = results.ms_per_item(BASELINE, lambda r: r.bot_cpu_s)
    unit, fine = results.unit[:-1], results.items >= 1000  # texts: more digits; documents: fewer
    rows = []
    for layout in LAYOUTS:
        name = layout.name
        bot_cpu = results.ms_per_item(name, lambda r: r.bot_cpu_s)
        commands = median([r.redis_commands for r in results.runs[name]]) / results.items
        rows.append(
            (
                name,
                len(layout.roles),
                f"{results.seconds(name):.2f}",
                f"{results.items / results.seconds(name):.{0 if fine else 1}f}",
                f"{results.seconds(name) / base_s:.2f}",
                f"{bot_cpu:.{3 if fine else 1}f}",
                f"{bot_cpu / base_cpu:.2f}",
                f"{results.ms_per_item(name, lambda r: r.redis_cpu_s):.{3 if fine else 1}f}",
                f"{commands:.1f}" if layout.redis else "-",
                f"{results.ms_per_item(name, lambda r: r.bench_cpu_s):.{3 if fine else 1}f}",
                ", ".join(f"{r.seconds:.2f}" for r in results.runs[name]),
            )
        )
    header = (
        "layout", "processes", "median s", f"{results.unit}/s", "time × in-process",
        f"bot CPU ms/{unit}", "bot CPU × in-process", f"redis CPU ms/{unit}", f"Redis commands/{unit}",
        f"bench CPU ms/{unit}", "runs (s)",
    )  # fmt: skip
    return table(header, rows)


def verdict(results: Results) -> str:
    """The issue's target for text (Redis with one process within 1.5 x the in-process time)."""
    ratio = results.seconds("redis: run") / results.seconds(BASELINE)
    met = "met" if ratio <= 1.5 else "MISSED"
    return f"- redis: run / in-process = {ratio:.2f} x the time (target for text: <= 1.5): {met}"


def problems(results: Results) -> str:
    """Non-zero exits and log lines of the bot's processes (they run at WARNING), or that there were none."""
    if not results.problems:
        return "- every process exited 0 and logged nothing at WARNING or above"
    return "\n".join(f"- {p}" for p in results.problems)
