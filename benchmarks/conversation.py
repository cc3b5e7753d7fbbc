"""`python -m benchmarks`: conversation quality and turn speed on the scripted customers.

Everything in-process on a fresh SQLite file (WAL): real NLU, actions through
ActionExecutor, every message stored. The baseline in the same run is the NLU parse
alone of the same customer texts, so the figure the dialogue adds is visible.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.quality import Played, figures, load_customers, play
from bot.config import Settings
from bot.dialogue.engine import Engine
from bot.nlu import NluService
from bot.store import Database

LANGUAGES = ("zh", "en")


def _row(label: str, *cells: str) -> str:
    return f"  {label:<40}" + "".join(f"{cell:>16}" for cell in cells)


def _of(count: int, total: int) -> str:
    return f"{count}/{total}" if total else "-"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run_bench(settings: Settings, customers_file: Path, rounds: int) -> str:
    customers = load_customers(customers_file)
    nlu = NluService(settings)
    started = time.perf_counter()
    nlu.model  # noqa: B018 - load or train before timing
    load_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        db.upgrade()
        engine = Engine(settings, db=db, nlu=nlu)
        runs: list[Played] = []
        started = time.perf_counter()
        for round_ in range(rounds):
            for index, customer in enumerate(customers):
                runs.append(await play(engine, customer, user_id=100_000 * (round_ + 1) + index))
        sequential = time.perf_counter() - started

        started = time.perf_counter()
        concurrent = await asyncio.gather(
            *(play(engine, c, user_id=900_000 + i) for i, c in enumerate(customers))
        )
        concurrent_seconds = time.perf_counter() - started
        await engine.close()
        db.dispose()

    texts = [said for run in runs[: len(customers)] for said, _ in run.exchanges if said]
    parse_times = []
    for text in texts * rounds:
        began = time.perf_counter()
        await nlu.parse(text)
        parse_times.append(time.perf_counter() - began)

    result = figures(runs)
    turn_times = [x for run in runs for x in run.latencies]
    typed_times = [x for run in runs for x, t in zip(run.latencies, run.typed, strict=True) if t]
    button_times = [
        x for run in runs for x, t in zip(run.latencies, run.typed, strict=True) if not t
    ]
    concurrent_turns = sum(len(run.latencies) for run in concurrent)
    api_calls = [result["api_calls_by_language"][lang] for lang in LANGUAGES]
    lines = [
        f"scripted customers: {len(customers)} x {rounds} rounds, {len(turn_times)} turns "
        f"(model ready in {load_seconds:.1f} s)",
        "",
        "quality",
        "  empathy before the first fact question  "
        f"{result['empathy_before_first_fact_question']:.0%}",
        "",
        "listening (per language)                      zh              en",
        _row(
            "facts asked again",
            *(str(result["facts_reasked_by_language"][lang]) for lang in LANGUAGES),
        ),
        _row(
            "junk answers stored",
            *(_of(*result["junk_stored_by_language"][lang]) for lang in LANGUAGES),
        ),
        _row(
            "corrections applied",
            *(_of(*result["corrections_applied_by_language"][lang]) for lang in LANGUAGES),
        ),
        _row(
            "empathy naming the customer's words",
            *(_of(*result["empathy_named_by_language"][lang]) for lang in LANGUAGES),
        ),
        _row(
            "questions while waiting answered",
            *(_of(*result["waiting_answered_by_language"][lang]) for lang in LANGUAGES),
        ),
        _row(
            "Bot API calls per complaint, mean",
            *(f"{statistics.mean(calls):.1f}" if calls else "-" for calls in api_calls),
        ),
        _row("  max", *(str(max(calls)) if calls else "-" for calls in api_calls)),
        "",
        f"  read-backs complete                     {result['summaries_complete']:.0%}",
        f"  handed off                              {result['handed_off']}/{len(runs)}",
        f"  complaint type as scripted              {result['type_as_scripted']:.0%}",
        "",
        "speed                                  p50 ms   p99 ms   per second",
        f"  baseline: NLU parse alone          {1000 * statistics.median(parse_times):7.1f}  "
        f"{1000 * _percentile(parse_times, 0.99):7.1f}   "
        f"{len(parse_times) / sum(parse_times):8.0f}",
        f"  turn (parse+policy+actions+SQLite) {1000 * statistics.median(turn_times):7.1f}  "
        f"{1000 * _percentile(turn_times, 0.99):7.1f}   {len(turn_times) / sequential:8.0f}",
        f"    of which typed text              {1000 * statistics.median(typed_times):7.1f}  "
        f"{1000 * _percentile(typed_times, 0.99):7.1f}",
        f"    of which button presses          {1000 * statistics.median(button_times):7.1f}  "
        f"{1000 * _percentile(button_times, 0.99):7.1f}",
        f"  turns, {len(customers)} customers at once       "
        f"{'':16}   {concurrent_turns / concurrent_seconds:8.0f}",
    ]
    return "\n".join(lines)
