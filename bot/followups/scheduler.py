"""The follow-up scheduler: APScheduler 3 on a persistent SQLAlchemy job store.

Rows in `followup` are the truth; a job `fu:<id>` is the clock. Any process may write
a row (a turn, an agent's /promise, a close); the process that runs the scheduler
(`RUN_SCHEDULER`, exactly one) picks new rows up (`sync`, every `HANDOFF_TICK` and
after each update) and adds their jobs with `replace_existing`, so a restart never
duplicates one. `misfire_grace_time=None`: a job missed while the bot was down runs
when it is back. The job function is module-level and takes the row's id; it reads
everything else from the database, so a job survives restarts and pickling.

What each kind does is in :mod:`bot.telegram.followups`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session, col, select

from bot.store import FollowUp
from bot.store.db import normalize_url

log = logging.getLogger(__name__)
EARLY = timedelta(seconds=1)
"""A job that fires this much before its row's due time was moved: it waits again."""


class Jobs(Protocol):
    """What the scheduler's jobs run (bot/telegram/followups.py: FollowUpKinds)."""

    async def fire(self, follow_up_id: int) -> None: ...

    async def report(self, period: str) -> None: ...

    def expire_transcripts(self) -> None: ...


_running: Jobs | None = None
"""The process's running jobs. APScheduler's persistent job store keeps each job as the
import path of a module-level function ("bot.followups.scheduler:fire") and its
arguments, so the functions find what to run here rather than in the job."""


async def fire(follow_up_id: int) -> None:
    """The job: do what the follow-up says, if it is still pending."""
    if _running is None:
        log.warning("follow-up %s fired with no scheduler running", follow_up_id)
        return
    try:
        await _running.fire(follow_up_id)
    except asyncio.CancelledError:
        # The bot is stopping (say while the send waits for Telegram's rate limit). The
        # row is still pending, so the next start schedules it again: no traceback.
        log.info("follow-up %s interrupted by the stop; it fires after the restart", follow_up_id)


async def report(period: str) -> None:
    """The scheduled report job: the period's report to the supervisors."""
    if _running is None:
        log.warning("report %s due with no scheduler running", period)
        return
    await _running.report(period)


async def retention() -> None:
    """The nightly job: handled raw updates and, with RETENTION_DAYS, old transcripts."""
    if _running is not None:
        _running.expire_transcripts()


CRON: dict[str, dict[str, str | int]] = {
    "day": {},
    "week": {"day_of_week": "mon"},
    "month": {"day": 1},
}


class Scheduler:
    """APScheduler with the project's database as its job store."""

    def __init__(self, database_url: str) -> None:
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=normalize_url(database_url))},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )

    def start(self, kinds: Jobs) -> None:
        global _running
        _running = kinds
        self.scheduler.start()

    def shutdown(self) -> None:
        global _running
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        _running = None

    def add_reports(self, periods: list[str], at: str, timezone: object) -> None:
        """Cron jobs report:<period>; periods no longer configured are removed."""
        hour, minute = (int(part) for part in at.split(":"))
        for period, days in CRON.items():
            job_id = f"report:{period}"
            if period not in periods:
                if self.scheduler.get_job(job_id) is not None:
                    self.scheduler.remove_job(job_id)
                continue
            self.scheduler.add_job(
                report,
                "cron",
                args=[period],
                id=job_id,
                replace_existing=True,
                hour=hour,
                minute=minute,
                timezone=timezone,
                **days,
            )

    def add_retention(self, days: int | None, timezone: object) -> None:
        """The nightly clean-up at 03:30 local: handled raw updates always, transcripts
        too when RETENTION_DAYS is set (FollowUpKinds.expire_transcripts)."""
        self.scheduler.add_job(
            retention,
            "cron",
            id="retention",
            replace_existing=True,
            hour=3,
            minute=30,
            timezone=timezone,
        )

    def add(self, follow_up_id: int, when: datetime) -> None:
        self.scheduler.add_job(
            fire,
            "date",
            run_date=when,
            args=[follow_up_id],
            id=f"fu:{follow_up_id}",
            replace_existing=True,
        )

    def sync(self, session: Session) -> int:
        """Jobs for the pending rows that have none yet; how many were added."""
        rows = session.exec(
            select(FollowUp).where(FollowUp.status == "pending", col(FollowUp.scheduled).is_(False))
        ).all()
        for row in rows:
            assert row.id is not None
            self.add(row.id, row.due_at)
            row.scheduled = True
            session.add(row)
        if rows:  # runs after every update: nothing to write, no commit
            session.commit()
        return len(rows)

    def recover(self, session: Session) -> int:
        """Pending rows whose job is gone: the job store drops a one-off job as it starts
        it, so one running when the process stopped or died would never fire. Called when
        this process starts the scheduler; how many were scheduled again."""
        jobs = {job.id for job in self.scheduler.get_jobs()}
        rows = session.exec(
            select(FollowUp).where(FollowUp.status == "pending", col(FollowUp.scheduled))
        ).all()
        lost = [row for row in rows if f"fu:{row.id}" not in jobs]
        for row in lost:
            assert row.id is not None
            self.add(row.id, row.due_at)
        if lost:
            log.warning("%s follow-up(s) were running when the bot stopped; due again", len(lost))
        return len(lost)

    def later(self, session: Session, row: FollowUp, when: datetime) -> None:
        """Move a pending follow-up (quiet hours, a busy customer, a retry)."""
        assert row.id is not None
        row.due_at, row.scheduled = when, True
        session.add(row)
        session.commit()
        self.add(row.id, when)

    @staticmethod
    def early(row: FollowUp, now: datetime) -> bool:
        return row.due_at - now > EARLY
