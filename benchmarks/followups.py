"""`python -m benchmarks --followups`: the scheduler with many follow-ups.

Run from a checkout (the Bot API double lives in tests/botapi). `python -m bot run`
is started as a process against the double, its database seeded beforehand.

1. Scheduled: `--scheduled` follow-ups in the job store, of which `--due` fall due
   over 20 seconds after the bot starts and the rest in the next 30 days. Figures:
   writing the jobs, the bot's start-up time and memory, and lateness (when each
   fired minus when it was due, p50 / p99). Baseline in the same run: the same `--due`
   follow-ups with nothing else in the store.
2. At once: `--burst` satisfaction surveys due at the same moment (as after an
   outage), to as many customers, against the double with Telegram's limits (30
   messages/s overall). Figures: send rate against that limit, 429s seen, lost.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.telegram import _rss_mib, _start
from bot.config import Settings

WINDOW = 20.0
"""Seconds over which the due follow-ups of part 1 fall due."""
START_MARGIN = 25.0
"""Seconds after seeding before the first one is due (the bot starts meanwhile)."""


def _seed(url: str, *, customers: int, closed: bool) -> tuple[list[int], list[int]]:
    """Customers with a conversation and a ticket each: (conversation ids, ticket ids)."""
    from bot.store import Conversation, Customer, Database, Ticket

    db = Database(url)
    db.upgrade()
    now = datetime.now(UTC)
    conversations, tickets = [], []
    with db.session() as session:
        people = [
            Customer(telegram_id=60_000 + i, name=f"c{i}", language="en") for i in range(customers)
        ]
        session.add_all(people)
        session.flush()
        talks = [
            Conversation(
                customer_id=person.id or 0,
                chat_id=person.telegram_id,
                language="en",
                status="closed" if closed else "handed_off",
                stage="closed" if closed else "handed_off",
            )
            for person in people
        ]
        session.add_all(talks)
        session.flush()
        cases = [
            Ticket(
                conversation_id=talk.id or 0,
                customer_id=talk.customer_id,
                status="resolved" if closed else "assigned",
                first_contact_at=now,
                resolved_at=now if closed else None,
            )
            for talk in talks
        ]
        session.add_all(cases)
        session.commit()
        conversations = [talk.id or 0 for talk in talks]
        tickets = [case.id or 0 for case in cases]
    db.dispose()
    return conversations, tickets


async def _write_jobs(url: str, rows: list[tuple[str, int, int, datetime]]) -> float:
    """Follow-up rows and their scheduler jobs, as the bot would have written them over
    time; returns the seconds it took."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.followups.scheduler import fire
    from bot.store import Database, FollowUp

    db = Database(url)
    with db.session() as session:
        made = [
            FollowUp(
                kind=kind,
                conversation_id=conversation,
                ticket_id=ticket,
                due_at=due,
                scheduled=True,
            )
            for kind, conversation, ticket, due in rows
        ]
        session.add_all(made)
        session.commit()
        ids = [(row.id or 0, row.due_at) for row in made]
    db.dispose()
    began = time.perf_counter()
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        job_defaults={"misfire_grace_time": None, "coalesce": True},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    for row_id, due in ids:
        scheduler.add_job(
            fire, "date", run_date=due, args=[row_id], id=f"fu:{row_id}", replace_existing=True
        )
    scheduler.shutdown(wait=False)
    return time.perf_counter() - began


def _done(url: str, kind: str) -> list[Any]:
    from sqlmodel import select

    from bot.store import Database, FollowUp

    db = Database(url)
    with db.session() as session:
        rows = session.exec(
            select(FollowUp).where(FollowUp.kind == kind, FollowUp.status == "done")
        ).all()
    db.dispose()
    return list(rows)


def _env(settings: Settings, double: Any, url: str, limits: bool) -> dict[str, str]:
    from tests.support.botapi.double import TOKEN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=double.base_url,
        DATABASE_URL=url,
        NLU_CACHE_DIR=str(settings.nlu_cache_dir),
        HANDOFF_TICK="1s",
        LOG_LEVEL="WARNING",
        QUIET_HOURS="",
    )
    if not limits:
        env["TELEGRAM_MAX_RATE"] = "0"
    return env


async def _scheduled(
    settings: Settings, folder: Path, name: str, *, due: int, far: int
) -> dict[str, float]:
    from tests.support.botapi.double import BotApiDouble

    url = f"sqlite:///{folder / (name + '.db')}"
    conversations, tickets = _seed(url, customers=1, closed=False)
    later = datetime.now(UTC) + timedelta(days=1)
    written = await _write_jobs(
        url,
        [
            ("first_contact", conversations[0], tickets[0], later + timedelta(days=29 * i / far))
            for i in range(far)
        ],
    )
    # the ones due soon are written last, so their times count from the bot's start
    soon = datetime.now(UTC) + timedelta(seconds=START_MARGIN)
    written += await _write_jobs(
        url,
        [
            (
                "first_contact",
                conversations[0],
                tickets[0],
                soon + timedelta(seconds=WINDOW * i / due),
            )
            for i in range(due)
        ],
    )
    double = BotApiDouble(per_chat_rate=1e6, per_chat_burst=1e6, global_rate=1e6)
    await double.start()
    began = time.perf_counter()
    process = await _start(
        double,
        [sys.executable, "-m", "bot", "run"],
        _env(settings, double, url, limits=False),
        folder / f"{name}.log",
    )
    started = time.perf_counter() - began
    try:
        await double.wait_for(lambda: len(_done(url, "first_contact")) >= due, 300, "all due")
        rss = _rss_mib(process.popen.pid)
    finally:
        await process.stop()
        await double.stop()
    late = sorted(
        (row.last_attempt_at - row.due_at).total_seconds() for row in _done(url, "first_contact")
    )
    return {
        "written": written,
        "jobs": due + far,
        "start": started,
        "rss": rss,
        "p50": statistics.median(late),
        "p99": late[int(0.99 * (len(late) - 1))],
        "fired": len(late),
    }


async def _burst(settings: Settings, folder: Path, count: int) -> dict[str, float]:
    from tests.support.botapi.double import BotApiDouble

    url = f"sqlite:///{folder / 'burst.db'}"
    conversations, tickets = _seed(url, customers=count, closed=True)
    due = datetime.now(UTC) - timedelta(seconds=1)
    await _write_jobs(
        url,
        [("survey", c, t, due) for c, t in zip(conversations, tickets, strict=True)],
    )
    double = BotApiDouble()  # Telegram's limits: 30 messages/s overall
    for index in range(count):
        double.add_user(60_000 + index, f"c{index}", "en")
    await double.start()
    process = await _start(
        double,
        [sys.executable, "-m", "bot", "run"],
        _env(settings, double, url, limits=True),
        folder / "burst.log",
    )

    def delivered() -> list[dict[str, Any]]:
        return [m for m in double.outbox if "Is the problem solved" in m.get("text", "")]

    try:
        await double.wait_for(lambda: len(delivered()) >= count, 3600, "every survey")
    finally:
        await process.stop()
        await double.stop()
    sent = delivered()
    times = sorted(m["sent_at"] for m in sent)
    span = times[-1] - times[0] if len(times) > 1 else 1.0
    chats = {m["chat"]["id"] for m in sent}
    return {
        "count": count,
        "delivered": len(sent),
        "distinct": len(chats),
        "rate": (len(sent) - 1) / span,
        "429": sum(1 for _, code, _ in double.errors if code == 429),
    }


async def run_followups_bench(settings: Settings, *, scheduled: int, due: int, burst: int) -> str:
    try:
        import tests.support.botapi.double  # noqa: F401
    except ImportError as error:
        raise RuntimeError("run the follow-up bench from a checkout (needs tests/)") from error
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    folder = Path(tempfile.mkdtemp(prefix="followups-bench-"))
    lines = ["Follow-up bench", ""]
    base = await _scheduled(settings, folder, "baseline", due=due, far=0)
    full = await _scheduled(settings, folder, "full", due=due, far=scheduled - due)
    lines += [
        f"scheduled: {due} due over {WINDOW:.0f} s",
        "                         jobs in store   write s   start s   RSS MiB   late p50 ms"
        "   late p99 ms",
    ]
    for label, run in (("baseline", base), (f"{scheduled:,} scheduled", full)):
        lines.append(
            f"  {label:22} {run['jobs']:13,.0f} {run['written']:9.1f} {run['start']:9.1f}"
            f" {run['rss']:9.0f} {1000 * run['p50']:13.0f} {1000 * run['p99']:13.0f}"
        )
    if burst:
        at_once = await _burst(settings, folder, burst)
        lines += [
            "",
            f"at once: {burst:,} surveys due together, Telegram's 30 messages/s",
            f"  delivered                {at_once['delivered']:,.0f} of {burst:,}"
            f" ({at_once['distinct']:,.0f} customers, {burst - at_once['distinct']:,.0f} lost)",
            f"  send rate                {at_once['rate']:.1f}/s"
            f" ({100 * at_once['rate'] / 30:.0f}% of the limit)",
            f"  429s answered by the double {at_once['429']:,.0f}",
        ]
    print(f"logs and databases: {folder}", file=sys.stderr)
    return "\n".join(lines)
