"""Benchmark 1, the text pipeline: 400 chats x 10 texts injected at once; time until all 4000 replies.

Three contestants, each its own process against a fresh fake Bot API (moto is shared; only
tgs3bot's start-up touches it): tgs3bot, a minimal aiogram bot on ``Dispatcher.start_polling``
(``bench/aiogram_bot.py``) and the ceiling, a raw aiohttp poller + 8 workers
(``bench/raw_bot.py``). All answer the same way (greeting first, then document-required), so each
sends 4000 replies. Rounds alternate the contestants; each figure is the median of the rounds.

The clock starts when the updates are injected (the contestant already polls) and stops at the
fake's record of the 4000th successful sendMessage.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes import updates
from tests.fakes.telegram import TOKEN, FakeTelegram

from bench.harness import (
    BENCH_DIR,
    S3,
    Contestant,
    ContestantFactory,
    ReplyCounter,
    base_env,
    fresh_telegram,
    run_dir,
    running,
    tgs3bot,
)
from bench.report import cpu_seconds, median, table


def aiogram_bot(url: str, _s3: S3, _workdir: Path) -> Contestant:
    """The minimal aiogram dispatcher bot."""
    return Contestant("aiogram", [sys.executable, str(BENCH_DIR / "aiogram_bot.py"), url, TOKEN], base_env())


def raw_bot(url: str, _s3: S3, _workdir: Path) -> Contestant:
    """The raw aiohttp ceiling."""
    return Contestant("raw", [sys.executable, str(BENCH_DIR / "raw_bot.py"), url, TOKEN, "8"], base_env())


@dataclass(frozen=True)
class Run:
    """One timed run: wall seconds, the contestant's CPU seconds and the bench process's (the fake's)."""

    seconds: float
    cpu_s: float
    fake_cpu_s: float


@dataclass
class Results:
    """Runs by contestant, in the order they ran."""

    updates: int
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def add(self, name: str, run: Run) -> None:
        self.runs.setdefault(name, []).append(run)

    def seconds(self, name: str) -> list[float]:
        return [r.seconds for r in self.runs[name]]

    def rate(self, name: str) -> float:
        """Median updates per second."""
        return self.updates / median(self.seconds(name))

    def cpu_ms_per_update(self, name: str) -> float:
        """Median CPU time of the contestant's process per update, in ms."""
        return 1000 * median([r.cpu_s for r in self.runs[name]]) / self.updates

    def fake_cpu_ms_per_update(self, name: str) -> float:
        """Median CPU time of the bench process (the fake Bot API, mostly) per update, in ms."""
        return 1000 * median([r.fake_cpu_s for r in self.runs[name]]) / self.updates


def workload(chats: int, per_chat: int) -> list[dict[str, object]]:
    """``per_chat`` texts from each of ``chats`` private chats, interleaved (message k of every chat, …)."""
    return [
        updates.message(chat, text="/start" if k == 0 else f"hello {k}")
        for k in range(per_chat)
        for chat in range(1, chats + 1)
    ]


async def run_once(
    make: ContestantFactory, s3: S3, workdir: Path, chats: int, per_chat: int, timeout_s: float
) -> Run:
    """One contestant, one run: start it, inject, wait for every reply, check them, stop it."""
    async with fresh_telegram() as telegram:
        rundir = run_dir(workdir, "run")
        contestant = make(telegram.base_url, s3, rundir)
        batch = workload(chats, per_chat)
        async with running(contestant, telegram, rundir) as process:
            counter = ReplyCounter(telegram)
            cpu_before, fake_before = cpu_seconds(process.pid), time.process_time()
            started = time.monotonic()
            telegram.add_updates(batch)
            finished = await counter.wait(chats * per_chat, timeout_s=timeout_s)
            cpu, fake_cpu = cpu_seconds(process.pid) - cpu_before, time.process_time() - fake_before
        check_replies(telegram, contestant.name, chats, per_chat)
    return Run(finished - started, cpu, fake_cpu)


def check_replies(telegram: FakeTelegram, name: str, chats: int, per_chat: int) -> None:
    """Every contestant must have sent one greeting per chat and document-required for the rest."""
    texts = [str(c.params.get("text", "")) for c in telegram.calls_of("sendMessage") if c.ok]
    greetings = sum("[greeting]" in t for t in texts)
    required = sum("[document is required]" in t for t in texts)
    if (greetings, required) != (chats, chats * (per_chat - 1)):
        raise AssertionError(f"{name}: {greetings} greetings and {required} document-required replies")


async def run(
    s3: S3,
    workdir: Path,
    *,
    rounds: int,
    chats: int = 400,
    per_chat: int = 10,
    info_run: bool = True,
    extra: dict[str, ContestantFactory] | None = None,
) -> Results:
    """``rounds`` rounds of tgs3bot, aiogram, raw, tgs3bot at INFO (the default level), and ``extra``."""
    contestants: dict[str, ContestantFactory] = {"tgs3bot": tgs3bot(), "aiogram": aiogram_bot, "raw": raw_bot}
    if info_run:
        contestants["tgs3bot@INFO"] = tgs3bot(log_level="INFO")
    contestants |= extra or {}
    results = Results(chats * per_chat)
    timeout_s = 300.0
    for n in range(1, rounds + 1):
        for name, make in contestants.items():
            result = await run_once(make, s3, workdir, chats, per_chat, timeout_s)
            results.add(name, result)
            _progress(f"round {n}", name, result, results.updates)
    return results


def _progress(when: str, name: str, run: Run, updates: int) -> None:
    print(
        f"  {when:<8} {name:<22} {run.seconds:6.2f} s {updates / run.seconds:6.0f} updates/s"
        f"  cpu {run.cpu_s:5.2f} s  fake cpu {run.fake_cpu_s:5.2f} s",
        flush=True,
    )


def report(results: Results) -> str:
    """The table: each contestant's median, its runs, and the ratios that the targets name."""
    raw = results.rate("raw")
    rows = []
    for name in results.runs:
        rate = results.rate(name)
        rows.append(
            (
                name,
                f"{median(results.seconds(name)):.2f}",
                f"{rate:.0f}",
                f"{rate / results.rate('aiogram'):.2f}",
                f"{rate / raw:.2f}",
                f"{results.cpu_ms_per_update(name):.3f}",
                f"{results.fake_cpu_ms_per_update(name):.3f}",
                ", ".join(f"{s:.2f}" for s in results.seconds(name)),
            )
        )
    header = (
        "contestant", "median s", "updates/s", "× aiogram", "× raw", "bot CPU ms/update",
        "fake CPU ms/update", "runs (s)",
    )  # fmt: skip
    return table(header, rows)


def verdict(results: Results) -> str:
    """The issue's targets, judged on this run's medians."""
    bot, aiogram, raw = results.rate("tgs3bot"), results.rate("aiogram"), results.rate("raw")
    vs_aiogram = "met" if bot >= 2 * aiogram else "MISSED"
    vs_raw = "met" if bot >= raw * 2 / 3 else "missed"
    lines = [
        f"- tgs3bot / aiogram = {bot / aiogram:.2f} x the throughput (target >= 2): {vs_aiogram}",
        f"- tgs3bot / raw = {bot / raw:.2f} x the throughput (aim: 2/3 = 0.67): {vs_raw}",
    ]
    if "tgs3bot@INFO" in results.runs:
        cpu = results.cpu_ms_per_update("tgs3bot@INFO") / results.cpu_ms_per_update("tgs3bot") - 1
        rate = results.rate("tgs3bot@INFO")
        lines.append(
            f"- at INFO, the default level (a JSON line per update): {rate / aiogram:.2f} x aiogram; "
            f"{100 * cpu:+.0f} % CPU per update over WARNING"
        )
    return "\n".join(lines)


async def _main() -> None:  # pragma: no cover (quick manual entry; `python -m bench` is the command)
    import tempfile

    from bench.harness import moto_s3

    with tempfile.TemporaryDirectory() as tmp:
        async with moto_s3() as s3:
            results = await run(s3, Path(tmp), rounds=1, info_run=False)
    print(report(results))


if __name__ == "__main__":
    asyncio.run(_main())
