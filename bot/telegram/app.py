"""The Telegram front end, :class:`TelegramFrontEnd`: the customer side of the bot in
Telegram (long polling or webhook, :mod:`bot.telegram.runner`), on the engine.

Updates arrive through the inbox (:mod:`bot.telegram.intake`: stored before Telegram is
told they arrived, handled in order per chat, picked up again after a crash). Built in
layers by job, each using those below it: :mod:`bot.telegram.wiring` builds the
Application (PTB's ``AIORateLimiter``: Telegram's 30/s overall and 20/min per group,
retrying after a 429's ``retry_after``) and wires the desk, lanes and outboxes;
:mod:`bot.telegram.customers` takes a customer's message or press through the engine;
:mod:`bot.telegram.routes` sends each update to its handler (the table ``ROUTES``: private
messages and presses to the engine, the staff group to the desk, edits to the
transcript, other groups pointed to a private chat), each ``update_id`` once; here, the
start and the stop: the menus, the watch, and the follow-up scheduler's lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
)
from telegram.error import TelegramError
from telegram.ext import Application

from bot.followups.scheduler import Scheduler
from bot.telegram.followups import FollowUpKinds
from bot.telegram.intake import (
    DATABASE_DOWN,
    Leases,
    first_line,
)
from bot.telegram.routes import Routes
from bot.telegram.wiring import (
    COMMANDS,
    SCHEDULER_LEASE,
    STAFF_COMMANDS,
    STOP_GRACE,
)

log = logging.getLogger(__name__)


class TelegramFrontEnd(Routes):
    async def start(self, application: Application) -> None:
        for language, commands in COMMANDS.items():
            await application.bot.set_my_commands(
                [BotCommand(name, text) for name, text in commands],
                scope=BotCommandScopeAllPrivateChats(),
                language_code=language,
            )
        default = COMMANDS[self.settings.default_language]
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in default])
        staff_menu = (
            COMMANDS[self.settings.default_language][:2]
            + STAFF_COMMANDS[self.settings.default_language]
        )
        # The staff menu in each one's private chat; who has no such chat yet (never
        # pressed Start) is logged, shown in /healthz and reached in the staff group.
        await self.desk.check_reach(
            application.bot, [BotCommand(name, text) for name, text in staff_menu]
        )
        # Messages a previous run left waiting go first, in order, then the new ones.
        self.outbox.start(application.bot)
        self.staff_outbox.start(application.bot)
        self.lanes.start(application.bot)  # the lines for tickets' topics
        if self.settings.run_scheduler:
            self._lease_task = asyncio.create_task(self._hold_scheduler(application))

    async def _hold_scheduler(self, application: Application) -> None:
        """Exactly one process runs the scheduler and the watch, whatever RUN_SCHEDULER
        says elsewhere: the one holding the lease "scheduler". The others wait and take
        over when a holder stops renewing it (it stopped or died)."""
        leases = Leases(self.engine.db)
        renew = SCHEDULER_LEASE.total_seconds() / 3
        waiting_said = False
        while True:
            try:
                held = leases.acquire("scheduler", SCHEDULER_LEASE)
            except DATABASE_DOWN as error:
                log.warning("scheduler lease not renewed: %s", first_line(error))
                held = self.followups is not None  # keep going; the database is away
            if held and self.followups is None:
                self._start_scheduler(application)
                log.info("this process runs the scheduler (%s)", leases.holder)
            elif not held and self.followups is not None:
                log.error("scheduler lease lost to another process; scheduler stopped here")
                self._stop_scheduler()
            elif not held and not waiting_said:
                waiting_said = True
                log.info("another process runs the scheduler; this one stands by")
            await asyncio.sleep(renew)

    def _start_scheduler(self, application: Application) -> None:
        scheduler = Scheduler(self.settings.database_url)
        self.followups = FollowUpKinds(self.desk, application.bot, scheduler)
        scheduler.start(self.followups)
        if self.settings.supervisor_ids:
            scheduler.add_reports(
                self.settings.reports, self.settings.report_time, self.settings.tz
            )
        scheduler.add_retention(self.settings.retention_days, self.settings.tz)
        self.followups.recover()
        self.followups.sync()
        # The hand-off watch runs where the scheduler runs: in one process only.
        self._watch_task = asyncio.create_task(self._tick(application.bot))

    def _stop_scheduler(self) -> None:
        if self.followups is not None:
            self.followups.scheduler.shutdown()
            self.followups = None
        if self._watch_task is not None:
            self._watch_task.cancel()
            self._watch_task = None

    async def _tick(self, bot: Bot) -> None:
        """Every HANDOFF_TICK: the waiting tickets and promises, and new follow-up rows
        (written by any process) get their scheduler jobs."""
        interval = self.settings.handoff_tick.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                if self.settings.staff_chat_id is not None:
                    self.lanes.sweep(bot)
                    await self.watch.tick(bot, datetime.now(UTC))
                if self.followups is not None:
                    self.followups.sync()
            except TelegramError as error:
                log.error("hand-off watch: %s", error)
            except DATABASE_DOWN as error:  # the next tick tries again
                log.warning("hand-off watch: %s", first_line(error))

    async def stop(self, application: Application) -> None:
        await self.lanes.stop(STOP_GRACE)
        await self.outbox.stop(STOP_GRACE)
        await self.staff_outbox.stop(STOP_GRACE)
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        watch = self._watch_task
        self._stop_scheduler()
        if watch is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if self.settings.run_scheduler:
            with contextlib.suppress(*DATABASE_DOWN):
                Leases(self.engine.db).release("scheduler")  # the next one need not wait
        await self.engine.close()
