"""The journal's cost (#8: at most 10 % of the text throughput): tgs3bot against itself with the
queue's journal in memory (the ``memjournal`` variant), and nothing else in the rounds.

The text benchmark runs its contestants in a fixed order; here the order rotates every round, and
each round's contestants run back to back, so a round's ratio compares runs made under the same
load. The verdict uses the median of those per-round ratios; the medians of the times are shown
too. ``--against SRC`` adds another tree (e.g. the bot before a change to the journal).
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.harness import S3, ContestantFactory, tgs3bot
from bench.report import median, table
from bench.text import Results, run_once

BOT, BASELINE = "tgs3bot", "tgs3bot+memjournal"
LIMIT = 0.10  # the bound on the journal's cost
CHATS, PER_CHAT, TIMEOUT_S = 400, 10, 300.0  # the text benchmark's workload


async def run(
    s3: S3, workdir: Path, *, rounds: int, extra: dict[str, ContestantFactory] | None = None
) -> Results:
    """``rounds`` rounds of tgs3bot, the memory-journal variant and ``extra``, in rotating order."""
    contestants = {BOT: tgs3bot(), BASELINE: tgs3bot("memjournal")} | (extra or {})
    names = list(contestants)
    results = Results(CHATS * PER_CHAT)
    for n in range(rounds):
        order = names[n % len(names) :] + names[: n % len(names)]
        for name in order:
            result = await run_once(contestants[name], s3, workdir, CHATS, PER_CHAT, TIMEOUT_S)
            results.add(name, result)
            print(
                f"  round {n + 1:<2} {name:<28} {result.seconds:6.2f} s  cpu {result.cpu_s:5.2f} s",
                flush=True,
            )
    return results


def cost(results: Results, name: str = BOT) -> list[float]:
    """Per round: how much longer ``name`` took than the memory journal (0.1 = 10 % longer)."""
    return [a / b - 1 for a, b in zip(results.seconds(name), results.seconds(BASELINE), strict=True)]


def report(results: Results) -> str:
    """Each contestant's medians, and its per-round cost against the memory journal."""
    rows = []
    for name in results.runs:
        costs = "" if name == BASELINE else ", ".join(f"{100 * c:+.0f}" for c in cost(results, name))
        rows.append(
            (
                name,
                f"{median(results.seconds(name)):.2f}",
                f"{results.rate(name):.0f}",
                f"{results.cpu_ms_per_update(name):.3f}",
                ", ".join(f"{s:.2f}" for s in results.seconds(name)),
                costs,
            )
        )
    header = ("contestant", "median s", "updates/s", "bot CPU ms/update", "runs (s)", "% longer, per round")
    return table(header, rows)


def verdict(results: Results) -> str:
    """The issue's bound, judged on the median of the per-round ratios, with how sure that median is."""
    costs = cost(results)
    time_cost = median(costs)
    low, high = median_interval(costs)
    cpu_cost = results.cpu_ms_per_update(BOT) / results.cpu_ms_per_update(BASELINE) - 1
    met = "met" if time_cost <= LIMIT else "MISSED"
    return (
        f"- the journal costs {100 * time_cost:+.1f} % of the time (median of the rounds' ratios; "
        f"95 % bootstrap interval {100 * low:+.1f} to {100 * high:+.1f} %) and {100 * cpu_cost:+.1f} % "
        f"of the CPU per update (target <= {100 * LIMIT:.0f} %): {met}"
    )


def median_interval(values: list[float], *, draws: int = 2000, seed: int = 1) -> tuple[float, float]:
    """A 95 % bootstrap interval of the median: rounds spread by tens of percent on this machine, so
    one median says little without it (bench/README.md, "The journal's cost, a fifth look")."""
    pick = random.Random(seed)  # the same rounds give the same interval
    medians = sorted(median(pick.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]
