"""`python -m bot <command>`: the one entry point for operators and developers.

Errors an operator can fix (configuration, data, files) are one line on stderr and
exit status 2; stdout carries only results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import PROJECT_ROOT, ConfigError, Settings, load_settings
from bot.nlu.data import NluDataError
from bot.nlu.labels import Parse

EXIT_USAGE = 2


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def _print_json(result: object) -> None:
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")


def _read_lines(source: str) -> list[str]:
    if source == "-":
        return sys.stdin.read().splitlines()
    path = Path(source)
    if not path.is_file():
        raise CliError(f"no such file: {source}")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def cmd_nlu_parse(args: argparse.Namespace, settings: Settings) -> int:
    from bot.nlu import NluService

    if args.file is None and args.text is None:
        raise CliError("give a text to parse, or --file F (one text per line, '-' for stdin)")
    texts = _read_lines(args.file) if args.file is not None else [args.text]
    service = NluService(settings)

    async def parse_all() -> list[Parse]:
        try:
            return await service.parse_many(texts)
        finally:
            await service.close()

    for result in asyncio.run(parse_all()):
        _print_json(result)
    return 0


def _check_variants(names: list[str]) -> None:
    from bot.nlu.variants import VARIANTS

    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise CliError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")


def cmd_nlu_test(args: argparse.Namespace, settings: Settings) -> int:
    from bot.nlu.data import load_training_data
    from bot.nlu.evaluate import (
        cross_validate,
        evaluate_holdout,
        format_summary,
        load_holdout,
        write_results,
    )
    from bot.nlu.model import TriageModel, embedding_cache
    from bot.nlu.variants import VARIANTS

    _check_variants([args.variant])
    config = VARIANTS[args.variant]
    data = load_training_data(settings.nlu_data_dir)
    embeddings = embedding_cache(settings.nlu_cache_dir, config)
    out = Path(args.out)
    summaries = []
    if args.folds > 1:
        started = time.perf_counter()
        cv = cross_validate(
            data,
            config,
            folds=args.folds,
            progress=lambda line: print(line, file=sys.stderr),
            embeddings=embeddings,
        )
        write_results(cv, out / "cross_validation")
        took = time.perf_counter() - started
        summaries.append(format_summary(f"{args.folds}-fold cross-validation ({took:.0f} s)", cv))
    holdout = load_holdout(Path(args.holdout))
    if holdout:
        model = TriageModel.train(
            data, config, default_language=settings.default_language, embeddings=embeddings
        )
        results = evaluate_holdout(model, holdout)
        write_results(results, out / "holdout")
        summaries.append(format_summary(f"held-out set ({args.holdout})", results))
    print(f"variant: {args.variant}; results written to {out}/")
    print("\n\n".join(summaries))
    return 0


def cmd_nlu_eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.nlu import NluService
    from bot.nlu.realeval import (
        TicketFileError,
        evaluate_tickets,
        format_eval,
        read_tickets,
        summarise,
        write_eval,
    )

    files = [Path(name) for name in args.files]
    try:
        tickets = read_tickets(files)
    except TicketFileError as error:
        raise CliError(str(error)) from None
    model = None
    parser = f"Rasa NLU at {settings.rasa_nlu_url}" if settings.rasa_nlu_url else "embedded model"
    if args.variant != "default":
        from bot.nlu.model import load_or_train
        from bot.nlu.variants import VARIANTS

        _check_variants([args.variant])
        model = load_or_train(
            settings.nlu_data_dir,
            settings.nlu_cache_dir,
            VARIANTS[args.variant],
            default_language=settings.default_language,
        )
        parser = f"embedded model, variant {args.variant}"
    service = NluService(settings, model=model)

    async def parse_all() -> list[Parse]:
        try:
            return await service.parse_many([ticket.text for ticket in tickets])
        finally:
            await service.close()

    results = evaluate_tickets(tickets, asyncio.run(parse_all()))
    summary = summarise(results, files, parser)
    out = Path(args.out)
    write_eval(results, summary, out)
    print(format_eval(summary, out))
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.telegram_bot_token:
        raise CliError(
            "TELEGRAM_BOT_TOKEN is not set: put the token from @BotFather in the environment "
            "or .env. To try the bot without one, be the customer in the terminal: "
            ".venv/bin/python -m bot chat --lang en --name Anna"
        )
    from bot.telegram.runner import run

    run(settings)
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.telegram_bot_token:
        raise CliError(
            "TELEGRAM_BOT_TOKEN is not set: the scheduler sends follow-ups through the bot"
        )
    from bot.telegram.runner import run

    run(settings.model_copy(update={"run_scheduler": True}), intake=False)
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.chat import DEFAULT_NAMES, chat, terminal_user

    name = args.name or (DEFAULT_NAMES[args.lang] if args.lang else None)
    user_id = terminal_user(args.name, args.user)
    return asyncio.run(
        chat(settings, name=name, language=args.lang, user_id=user_id, fresh=args.fresh)
    )


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    import datetime as dt
    import os

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.reports import (
        PERIODS,
        build_report,
        period_ending,
        render_charts,
        render_csv,
        render_markdown,
        write_charts,
    )
    from bot.store import Database

    if args.period not in PERIODS:
        given = f", not {args.period!r}" if args.period else ""
        raise CliError(f"--period must be day, week or month{given}")
    if args.format not in ("md", "csv", "png"):
        raise CliError(f"--format must be md, csv or png, not {args.format!r}")
    try:
        until = dt.date.fromisoformat(args.until) if args.until else None
    except ValueError:
        raise CliError(f"--until must be a date like 2026-11-23, not {args.until!r}") from None
    out = Path(args.out)
    if args.format == "png" and not (out.is_dir() and os.access(out, os.W_OK | os.X_OK)):
        raise CliError(f"--out {args.out} is not a writable folder")
    url = make_url(settings.database_url)
    local_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if local_file and not Path(url.database or "").is_file():
        raise CliError(f"no database at {url.database} (DATABASE_URL)")
    today = dt.datetime.now(settings.tz).date()
    period = period_ending(args.period, until or today, settings.timezone)
    db = Database(settings.database_url)
    try:
        report = build_report(db, period)
    except SQLAlchemyError as error:
        raise CliError(f"cannot read the database: {str(error).splitlines()[0]}") from None
    finally:
        db.dispose()
    language = settings.default_language
    if args.format == "md":
        sys.stdout.write(render_markdown(report, language))
    elif args.format == "csv":
        sys.stdout.write(render_csv(report))
    else:
        paths = write_charts(render_charts(report, language), report, out)
        if not paths:
            print(f"no complaints in {period.span()}: no charts written", file=sys.stderr)
        for path in paths:
            print(path)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store import Database
    from bot.store.migrate import MigrationError

    db = Database(settings.database_url)
    try:
        revision = db.upgrade()
    except (SQLAlchemyError, MigrationError) as error:
        raise CliError(f"cannot migrate the database: {str(error).splitlines()[0]}") from None
    finally:
        db.dispose()
    print(f"database at revision {revision}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the Telegram bot")
    run.set_defaults(handler=cmd_run)

    scheduler = commands.add_parser(
        "scheduler",
        help="run only the follow-ups, reports and hand-off watch (beside webhook workers)",
    )
    scheduler.set_defaults(handler=cmd_scheduler)

    chat = commands.add_parser("chat", help="talk to the bot in the terminal, as a customer")
    chat.add_argument("--lang", choices=["zh", "en"], help="the customer's language")
    chat.add_argument(
        "--name", help="the customer's name; each name is its own customer (its own history)"
    )
    chat.add_argument(
        "--user", type=int, help="the customer's number: a distinct customer per number"
    )
    chat.add_argument(
        "--fresh", action="store_true", help="start a new conversation (close the open one)"
    )
    chat.set_defaults(handler=cmd_chat)

    report = commands.add_parser(
        "report", help="complaints, SLA breaches and satisfaction of the last day/week/month"
    )
    report.add_argument("--period", help="day, week or month (the whole days before --until)")
    report.add_argument("--format", default="md", help="md (default), csv or png")
    report.add_argument("--out", default=".", help="png: the folder for the charts")
    report.add_argument("--until", help="the day after the period, YYYY-MM-DD (default: today)")
    report.set_defaults(handler=cmd_report)

    migrate = commands.add_parser(
        "migrate", help="bring the database (DATABASE_URL) to the current schema"
    )
    migrate.set_defaults(handler=cmd_migrate)

    nlu = commands.add_parser("nlu", help="the triage classifier")
    nlu_commands = nlu.add_subparsers(dest="nlu_command", required=True)

    parse = nlu_commands.add_parser("parse", help="print the parse of a text as JSON")
    parse.add_argument("text", nargs="?", help="the text to parse")
    parse.add_argument("--file", help="parse one text per line of this file ('-' for stdin)")
    parse.set_defaults(handler=cmd_nlu_parse)

    test = nlu_commands.add_parser("test", help="cross-validate and score the held-out set")
    test.add_argument("--folds", type=int, default=5, help="folds (1 skips cross-validation)")
    test.add_argument("--out", default="nlu_results", help="results folder")
    test.add_argument(
        "--holdout", default=str(PROJECT_ROOT / "tests" / "nlu" / "holdout"), help="held-out folder"
    )
    test.add_argument("--variant", default="default", help="model variant (see docs/nlu.md)")
    test.set_defaults(handler=cmd_nlu_test)

    nlu_eval = nlu_commands.add_parser(
        "eval",
        help="score the classifier on your own labelled tickets (JSONL)",
        description="Score the classifier on labelled tickets: one JSON object per line with "
        '"text" and at least one of "is_complaint" (true/false), "complaint_type" and '
        '"motive" ("unspecified" allowed, never scored), or "signals" (the signals the text must '
        'raise, [] for none: scored as false alarms and recall); optional "id", "source" (default '
        '<file>:<line>) and "lang" (zh/en; default: detected). Prints macro-F1, per-label '
        "precision/recall/F1 and the top confusions per language and axis; the motive score "
        "counts only motives with at least 8 rows in that language. Any bad line (not JSON, "
        "no text, an unknown label) stops the run with exit status 2 before anything is "
        "scored, so that a typo in a label cannot quietly change the figures.",
    )
    nlu_eval.add_argument("files", nargs="+", metavar="FILE.jsonl", help="labelled tickets")
    nlu_eval.add_argument(
        "--out",
        default="nlu_results/eval",
        help="results folder (default nlu_results/eval): summary.json, "
        "<lang>_<axis>_report.json, <lang>_<axis>_errors.jsonl",
    )
    nlu_eval.add_argument(
        "--variant",
        default="default",
        help="score another model variant instead (trained and cached; see docs/nlu.md)",
    )
    nlu_eval.set_defaults(handler=cmd_nlu_eval)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        return int(args.handler(args, settings))
    except (ConfigError, CliError, NluDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
