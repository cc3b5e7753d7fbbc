"""`python -m benchmarks [OPTIONS]`: the benchmarks, each printing its figures beside a
baseline measured in the same run (docs/benchmarks.md has the commands and the figures).

Without options: conversation quality and turn latency over scripted customers.
`--telegram` the whole bot against the Bot API double (with `--outage S`: Telegram away
for S seconds), `--load` customers at a human pace end to end, `--handoff N` the
hand-off to the staff group, `--followups` the scheduler, `--nlu` the classifier's
training, start-up, parse latency and memory.

Not part of the installed package: the benchmarks drive the bot with the tests' Bot API
double (tests/support/botapi), so they run from a checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from bot.cli import EXIT_USAGE, CliError
from bot.config import PROJECT_ROOT, ConfigError, Settings, load_settings
from bot.nlu.data import NluDataError
from bot.nlu.variants import VARIANTS


def _report(bench: Coroutine[Any, Any, str]) -> int:
    """Run a bench and print its report; its RuntimeError is a clear one-line error."""
    try:
        report = asyncio.run(bench)
    except RuntimeError as error:
        raise CliError(str(error)) from None
    print(report)
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.nlu:
        from benchmarks.nlu import run_bench as run_nlu_bench

        variants = args.variant or ["default", "tfidf"]
        unknown = [name for name in variants if name not in VARIANTS]
        if unknown:
            raise CliError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        print(run_nlu_bench(settings.nlu_data_dir, args.texts, variants))
        return 0
    if args.load:
        from benchmarks.load import run_load_bench

        try:
            count = 5000 if args.customers is None else int(args.customers)
        except ValueError:
            raise CliError(f"--load: --customers is a number, not {args.customers!r}") from None
        if count < 1 or args.minutes <= 0:
            raise CliError("--load needs --customers >= 1 and --minutes > 0")
        databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
        return _report(
            run_load_bench(
                settings,
                customers=count,
                minutes=args.minutes,
                databases=databases,
                seed=args.seed,
                timeout=args.timeout,
                baseline=not args.no_baseline,
                staff=not args.no_staff_group,
            )
        )
    if args.followups:
        from benchmarks.followups import run_followups_bench

        return _report(
            run_followups_bench(
                settings, scheduled=args.scheduled, due=args.due, burst=args.at_once
            )
        )
    if args.handoff:
        from benchmarks.handoff import run_handoff_bench

        return _report(run_handoff_bench(settings, customers=args.handoff, burst=args.burst))
    if args.telegram and args.outage:
        from benchmarks.telegram import run_outage_bench

        return _report(
            run_outage_bench(
                settings,
                rate=args.rate,
                seconds=args.seconds,
                chats=args.chats,
                outage=args.outage,
            )
        )
    if args.telegram:
        from benchmarks.telegram import run_telegram_bench

        return _report(
            run_telegram_bench(
                settings,
                updates=args.updates,
                rate=args.rate,
                seconds=args.seconds,
                chats=args.chats,
            )
        )

    from benchmarks.conversation import run_bench

    customers = Path(args.customers or PROJECT_ROOT / "tests" / "dialogue" / "customers.yml")
    if not customers.is_file():
        raise CliError(f"no such file: {customers}")
    print(asyncio.run(run_bench(settings, customers, max(1, args.rounds))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks; without options, conversation quality and turn latency.",
    )
    parser.add_argument(
        "--customers",
        help="scripted customers (YAML; default tests/dialogue/customers.yml); "
        "with --load: how many customers (default 5000)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="times each customer is played")
    parser.add_argument(
        "--telegram", action="store_true", help="the whole bot against the Bot API double"
    )
    parser.add_argument("--updates", type=int, default=500, help="--telegram: updates for CPU")
    parser.add_argument("--rate", type=float, default=300, help="--telegram: updates/s offered")
    parser.add_argument("--seconds", type=float, default=10, help="--telegram: sustained for")
    parser.add_argument("--chats", type=int, default=1000, help="--telegram: distinct chats")
    parser.add_argument(
        "--outage",
        type=float,
        default=0,
        help="--telegram: Telegram away this many seconds from a third of the way in; "
        "the same load without it first (lost, sent twice, backlog drain time)",
    )
    parser.add_argument(
        "--handoff",
        type=int,
        metavar="N",
        help="confirmation -> staff card for N customers one at a time (and a burst)",
    )
    parser.add_argument(
        "--burst", type=int, default=10, help="--handoff: customers confirming at once (0: none)"
    )
    parser.add_argument(
        "--followups", action="store_true", help="the follow-up scheduler (many jobs, a burst)"
    )
    parser.add_argument("--scheduled", type=int, default=100_000, help="--followups: jobs stored")
    parser.add_argument("--due", type=int, default=2_000, help="--followups: of which due soon")
    parser.add_argument(
        "--at-once", type=int, default=10_000, help="--followups: surveys due together (0: none)"
    )
    parser.add_argument(
        "--load",
        action="store_true",
        help="customers arriving at random at a human pace, end to end (docs/benchmarks.md)",
    )
    parser.add_argument("--minutes", type=float, default=10, help="--load: arrivals spread over")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql", "both"],
        default="sqlite",
        help="--load: the bot's database (postgresql: a throwaway local server)",
    )
    parser.add_argument("--seed", type=int, default=7, help="--load: customers and their pace")
    parser.add_argument(
        "--timeout", type=float, default=60, help="--load: seconds a customer waits for a reply"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="--load: skip the echo-bot baseline"
    )
    parser.add_argument(
        "--no-staff-group",
        action="store_true",
        help="--load: no staff group (tickets stay in the database; a diagnostic)",
    )
    parser.add_argument(
        "--nlu",
        action="store_true",
        help="the classifier: training (cold, cached), start-up, parse latency, memory",
    )
    parser.add_argument(
        "--texts", type=int, default=400, help="--nlu: how many short and long texts to parse"
    )
    parser.add_argument(
        "--variant", action="append", help="--nlu: model variants to measure (repeatable)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args, load_settings())
    except (ConfigError, CliError, NluDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
