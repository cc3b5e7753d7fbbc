"""`python -m bot run`: the bot in Telegram (long polling or webhook), on the engine.

Updates arrive through the inbox (:mod:`bot.telegram.intake`: stored before Telegram is
told they arrived, handled in order per chat, picked up again after a crash). One router
handles each: private messages and button presses go to the engine; media become
evidence; edits update the transcript; groups are pointed to a private chat. Each
``update_id`` is handled once, sending goes through PTB's ``AIORateLimiter`` (Telegram's
30/s overall and 20/min per group, retrying after a 429's ``retry_after``) and a
retry loop for network errors here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, CallbackContext, ContextTypes

from bot import logmask
from bot.config import Settings
from bot.dialogue import MAX_MERGED, Engine, Incoming, Reply, TurnResult
from bot.followups.scheduler import Scheduler
from bot.nlu import NluService
from bot.nlu.text import language_of_code
from bot.store import Database, ProcessedUpdate
from bot.store.models import InboundUpdate, utcnow
from bot.telegram.followups import FollowUpKinds
from bot.telegram.intake import (
    DATABASE_DOWN,
    MAX_ATTEMPTS,
    Dispatcher,
    Inbox,
    Leases,
    first_line,
)
from bot.telegram.lanes import StaffLanes
from bot.telegram.metrics import Metrics
from bot.telegram.outbox import Outbox, StaffRows
from bot.telegram.private import AgentChat
from bot.telegram.render import escape, keyboard
from bot.telegram.request import ON_SEND, AiohttpRequest, ReplyMark, retry_seconds
from bot.telegram.serve import ALLOWED_UPDATES, Intake
from bot.telegram.staff import StaffDesk
from bot.telegram.watch import WaitingWatch

log = logging.getLogger(__name__)
T = TypeVar("T")

SEND_ATTEMPTS = 5
WEBHOOK_CONNECTIONS = 40
"""Telegram's default number of webhook requests in flight at once."""
STOP_GRACE = 10.0
"""Seconds a stopping process gives the updates it is handling to finish."""
SCHEDULER_LEASE = timedelta(seconds=60)
CONNECTION_POOL = 32
BEHIND = 1.0
"""Seconds from a customer's update arriving to its replies having left (averaged over
the last few) above which the bot is behind — waiting for Telegram's 30 messages a
second, or with updates queueing in the inbox: it then spends no requests on extras —
the "✓ choice" edit of a pressed keyboard, "typing…" — so the replies themselves go
first. (A keyboard left in place still works: a second press is answered as expired.)
A press on the latest keyboard still continues its message (one edit instead of a new
message: no extra request)."""
ANSWER_WITHIN = timedelta(seconds=14)
"""How long after a press arrived its answerCallbackQuery is still worth sending:
Telegram refuses answers after about 15 seconds ("query is too old"), so a press that
waited longer in the inbox (the bot was behind, or down) is handled without one."""
MERGED: ContextVar[tuple[dict[str, Any], ...]] = ContextVar("merged", default=())
"""Messages typed right after the one being handled, joined to its turn (MERGE_WINDOW)."""
MAX_TEXT = 4096
"""Telegram's limit on a message's text, also for an edit."""
ARRIVED: ContextVar[datetime | None] = ContextVar("arrived", default=None)
"""When the update this task is handling was received (set by handle_stored)."""
TYPING_AFTER = 0.6
"""Seconds a reply may take before the customer sees "typing…"."""
COMMANDS = {
    "en": [
        ("start", "Start or continue"),
        ("help", "What I can do"),
        ("cancel", "Stop the current conversation"),
        ("lang", "中文 / English"),
        ("privacy", "What we keep and why"),
        ("forget", "Erase my data"),
    ],
    "zh": [
        ("start", "开始或继续"),
        ("help", "我能帮您做什么"),
        ("cancel", "结束当前对话"),
        ("lang", "切换 中文 / English"),
        ("privacy", "我们保存哪些信息"),
        ("forget", "删除我的信息"),
    ],
}
STAFF_COMMANDS = {
    "en": [
        ("queue", "Tickets waiting"),
        ("take", "Take the next ticket, or /take N"),
        ("mine", "My tickets and promises"),
        ("away", "Stop receiving transfers"),
        ("available", "Back at work"),
    ],
    "zh": [
        ("queue", "排队中的工单"),
        ("take", "接下一个工单，或 /take 编号"),
        ("mine", "我的工单和承诺"),
        ("away", "暂时离开，不接收转交"),
        ("available", "恢复在岗"),
    ],
}
MEDIA_KINDS = ("contact", "location", "voice", "video_note", "audio", "video", "sticker")


def file_url(base_url: str) -> str:
    """The file endpoint beside a Bot API base URL (…/bot -> …/file/bot)."""
    head, sep, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if sep else base_url.rstrip("/") + "/file/bot"


class TelegramFrontEnd:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.desk = StaffDesk(settings, engine)
        self.agents = AgentChat(self.desk)
        self.watch = WaitingWatch(self.desk)
        self._watch_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self.followups: FollowUpKinds | None = None
        self.inbox = Inbox(engine.db)
        self.metrics = Metrics(engine.db)
        self.lanes = StaffLanes(
            self.desk,
            Leases(engine.db),
            on_outcome=lambda outcome: self.metrics.posted.labels(outcome).inc(),
        )
        self.desk.posting = self.lanes.posts
        self.metrics.staff_queue.set_function(lambda: self.lanes.pending)
        self.outbox = Outbox(
            engine.db,
            # several processes share a chat's rows only on PostgreSQL (as the inbox)
            None if engine.db.url.startswith("sqlite") else Leases(engine.db),
            on_outcome=lambda outcome: self.metrics.sent.labels(outcome).inc(),
            on_failed=self.desk.not_delivered,
        )
        self.desk.outbox = self.outbox
        self.staff_outbox = Outbox(
            engine.db,
            None if engine.db.url.startswith("sqlite") else Leases(engine.db),
            rows=StaffRows(),
            on_outcome=lambda outcome: self.metrics.staff_sent.labels(outcome).inc(),
            on_failed=self.desk.staff_not_delivered,
            on_sent=self.desk.staff_sent,
            on_migrated=self.desk.migrated,
        )
        self.desk.staff_outbox = self.staff_outbox
        self.application: Application | None = None
        self._lag = 0.0
        """Seconds from a customer's update arriving to its replies having left, a moving
        average (see BEHIND)."""
        self._told_to_wait: set[int] = set()
        """Chats told "one moment" while the database is away (told once per outage)."""
        self.consumed: set[int] = set()
        """Stored updates handled as part of an earlier one's turn (merged lines): the
        dispatcher skips them."""

    def build(self) -> Application:
        assert self.settings.telegram_bot_token
        application = (
            Application.builder()
            .token(self.settings.telegram_bot_token)
            .base_url(self.settings.telegram_api_base_url)
            .base_file_url(file_url(self.settings.telegram_api_base_url))
            .rate_limiter(
                AIORateLimiter(
                    overall_max_rate=self.settings.telegram_max_rate,
                    # TELEGRAM_MAX_RATE=0 (benchmarks against a double) lifts both caps
                    group_max_rate=20 if self.settings.telegram_max_rate else 0,
                    max_retries=SEND_ATTEMPTS,
                )
            )
            # The inbox receives updates (bot.telegram.intake), not PTB's Updater: PTB
            # acknowledges an update before handling it and loses it in a crash.
            .updater(None)
            # PTB's HTTP layer on aiohttp: httpx/httpcore cost more CPU per call than
            # the NLU under load (docs/benchmarks.md). 32 connections keep requests flowing.
            .request(
                AiohttpRequest(
                    connection_pool_size=CONNECTION_POOL, on_flood=self.metrics.flood.inc
                )
            )
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
            .build()
        )
        self.application = application
        return application

    async def handle_stored(self, row: InboundUpdate) -> bool:
        """Handle one stored update (the dispatcher's handler): True when done with it,
        False to try again later (the database is away, or a fault to retry)."""
        assert self.application is not None
        data = json.loads(row.body)
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception as error:  # JSON that is not an Update PTB can read
            log.warning("update %s is not readable (%s); set aside", row.update_id, error)
            self.inbox.done(row.update_id, error=f"unreadable: {error}"[:500])
            self.metrics.updates.labels("unreadable").inc()
            return True
        if not _known_kind(data):
            log.info("update %s of a kind not handled (%s)", row.update_id, _kinds(data))
        context = CallbackContext.from_update(update, self.application)
        ARRIVED.set(row.received_at)
        merged = await self._gather(row, data)
        MERGED.set(tuple(json.loads(later.body) for later in merged))
        try:
            await self.on_update(update, context)
        except DATABASE_DOWN:
            await self.one_moment(data)
            return False
        except Exception as error:
            attempts = self.inbox.failed(row.update_id, repr(error))
            if attempts == 1:
                log.exception("update %s failed", row.update_id)
            if attempts < MAX_ATTEMPTS:
                return False
            log.error("update %s set aside after %d failed attempts", row.update_id, attempts)
            self.inbox.done(row.update_id, error=repr(error)[:500])
            self.metrics.updates.labels("set_aside").inc()
            return True
        self.inbox.done(row.update_id)
        for later in merged:
            self.inbox.done(later.update_id)
            self.consumed.add(later.update_id)
        self.metrics.updates.labels("handled").inc()
        if update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE:
            took = (utcnow() - row.received_at).total_seconds()
            self.metrics.latency.observe(took)
            self._lag = 0.8 * self._lag + 0.2 * took
        self._told_to_wait.discard(row.chat_key)
        return True

    async def _gather(self, row: InboundUpdate, data: dict[str, Any]) -> list[InboundUpdate]:
        """A customer telling their story in several quick messages is heard once: the
        lines that follow this one within MERGE_WINDOW of each other (plain text from the
        same person) join its turn. Waits for more only while the window is open — an
        update that waited in the inbox longer (the bot was behind) waits no further —
        and only where the bot listens to an account (Engine.gathers)."""
        window = self.settings.merge_window.total_seconds()
        user = _plain_text_from(data)
        if window <= 0 or user is None or not self.engine.gathers(user):
            return []
        while True:
            following: list[InboundUpdate] = []
            previous = row.received_at
            for later in self.inbox.pending(row.chat_key):
                if later.update_id <= row.update_id:
                    continue
                if _plain_text_from(json.loads(later.body)) != user:
                    break
                if (later.received_at - previous).total_seconds() > window:
                    break
                following.append(later)
                previous = later.received_at
            left = window - (utcnow() - previous).total_seconds()
            if left <= 0 or len(following) >= MAX_MERGED:
                return following[:MAX_MERGED]
            await asyncio.sleep(min(left, 0.2))

    async def one_moment(self, data: dict[str, Any]) -> None:
        """The database is away: a customer who wrote hears "one moment" (once), and
        their message is handled when it is back."""
        assert self.application is not None
        chat = data.get("message", {}).get("chat", {}) if isinstance(data, dict) else {}
        user = data.get("message", {}).get("from", {}) if isinstance(data, dict) else {}
        if chat.get("type") != "private" or chat.get("id") in self._told_to_wait:
            return
        self._told_to_wait.add(chat["id"])
        language = language_of_code(user.get("language_code"), self.settings.default_language)
        text = self.engine.responses.render("utter_one_moment", language, {})
        with contextlib.suppress(TelegramError):
            await self.application.bot.send_message(chat["id"], escape(text), parse_mode="HTML")

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

    # --- routing ---------------------------------------------------------------------

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Messages and presses carry their update_id into the engine's transaction, so
        a redelivered one is skipped there; the rest are recorded here."""
        try:
            await self._route(update, context)
        finally:
            if self.followups is not None:
                self.followups.sync()  # rows this update wrote get their jobs now

    async def _route(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if self.desk.owns(update):  # the staff group (the desk knows its id after an upgrade)
            if self._first_time(update.update_id):
                await self._on_staff(update, context)
                self._mark_done(update.update_id)
            return
        if update.callback_query is not None:
            await self._on_button(update, context)
        elif (
            update.message is not None
            and update.message.chat.type == ChatType.PRIVATE
            and self.agents.handles(update.message)
        ):
            if self._first_time(update.update_id):
                await self._on_agent(update.message, context)
                self._mark_done(update.update_id)
        elif update.message is not None and update.message.chat.type == ChatType.PRIVATE:
            await self._on_message(update, context)
        elif self._first_time(update.update_id):
            if update.edited_message is not None:
                self._on_edit(update.edited_message)
            elif update.message is not None:
                await self._on_group(update.message, context)
            self._mark_done(update.update_id)

    def _first_time(self, update_id: int) -> bool:
        with self.engine.db.session() as session:
            return session.get(ProcessedUpdate, update_id) is None

    def _mark_done(self, update_id: int) -> None:
        with self.engine.db.session() as session:
            session.add(ProcessedUpdate(update_id=update_id))
            with contextlib.suppress(IntegrityError):
                session.commit()

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None
        user = message.from_user
        if user is None:
            return
        media = _media(message)
        text = message.text if message.text is not None else (message.caption or "")
        merged = MERGED.get()
        lines = [text, *(later["message"]["text"] for later in merged)]
        incoming = Incoming(
            user_id=user.id,
            chat_id=message.chat.id,
            name=user.first_name,
            text="\n".join(lines),
            language_hint=user.language_code,
            message_ref=merged[-1]["message"]["message_id"] if merged else message.message_id,
            media=media,
            update_id=update.update_id,
            merged_updates=tuple(int(later["update_id"]) for later in merged),
        )
        async with self._typing(context, message.chat.id):
            result = await self.engine.handle(incoming)
        if result.duplicate and not (result.replies or result.ticket_id or result.staff_posts):
            log.info("update %s already handled; skipped", update.update_id)
            return
        await self._send_all(context, message.chat.id, result.replies)
        self._after_turn(context, result)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        arrived = ARRIVED.get()
        if arrived is None or utcnow() - arrived < ANSWER_WITHIN:
            try:
                await query.answer()
            except BadRequest:  # answered too late after all: Telegram says so, fine
                pass
            except TelegramError as error:  # it only stops the spinner: the press counts
                log.warning("press in chat %s not acknowledged: %s", query.from_user.id, error)
        keyboard_message = query.message if isinstance(query.message, Message) else None
        chat_id = keyboard_message.chat.id if keyboard_message else query.from_user.id
        label = _label(keyboard_message, query.data)
        incoming = Incoming(
            user_id=query.from_user.id,
            chat_id=chat_id,
            name=query.from_user.first_name,
            text=label or "",
            payload=query.data or "",
            language_hint=query.from_user.language_code,
            button_ref=keyboard_message.message_id if keyboard_message else None,
            update_id=update.update_id,
        )
        async with self._typing(context, chat_id):
            result = await self.engine.handle(incoming)
        if result.duplicate and not (result.replies or result.ticket_id or result.staff_posts):
            return
        replies = result.replies
        if keyboard_message is not None and not result.duplicate:
            continued = False
            if result.continues and replies and not self.outbox.busy(chat_id):
                with self.outbox.holding(chat_id):
                    continued = await self._continue(keyboard_message, label, replies[0])
            if not continued:
                await self._settle_keyboard(keyboard_message, label, replies)
        await self._send_all(context, chat_id, replies)
        self._after_turn(context, result)

    async def _continue(self, message: Message, label: str | None, reply: Reply) -> bool:
        """The pressed message shows the choice and becomes the next message (its text
        and keyboard): one Bot API call instead of an edit and a new message. False when
        it would be too long, the reply is not the chat's next message to go, or Telegram
        refuses the edit (then the outbox sends it as a message of its own)."""
        if not label or not message.text or reply.row_id is None:
            return False
        text = f"{message.text}\n\n✓ {label}\n\n{reply.text}"
        if len(text) > MAX_TEXT or self.outbox.first_waiting(message.chat.id) != reply.row_id:
            return False
        ON_SEND.set(ReplyMark(self.outbox.marking, reply.row_id))
        try:
            # An edit may be repeated: the same text again changes nothing
            await self._retrying(
                lambda: message.edit_text(
                    escape(text), parse_mode=ParseMode.HTML, reply_markup=keyboard(reply.buttons)
                )
            )
        except TelegramError as error:
            if self.outbox.left(reply.row_id):  # Telegram may have applied it: not again
                self.outbox.finish(reply.row_id, "unconfirmed")
            else:
                log.info("message %s not continued (%s); sent anew", message.message_id, error)
            return False
        finally:
            ON_SEND.set(None)
        self.outbox.finish(reply.row_id, "sent", message.message_id)
        return True

    def _after_turn(self, context: ContextTypes.DEFAULT_TYPE, result: TurnResult) -> None:
        """A new ticket goes to the staff group; what the turn wrote for topics (the
        customer's message on a handed-off case, notes) follows it. Queued in the
        ticket's lane: the customer's turn does not wait for the group's 20 messages a
        minute (bot/telegram/lanes.py)."""
        bot = context.bot
        if result.ticket_id is not None:
            self.lanes.card(bot, result.ticket_id)
        for ticket_id in result.staff_posts:
            self.lanes.posts(bot, ticket_id)

    async def _on_agent(self, message: Message, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await self.agents.on_message(message, context.bot)
        except TelegramError as error:
            log.error("agent chat %s: %s", message.chat.id, error)

    async def _on_staff(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            if update.callback_query is not None:
                await self.desk.on_button(update, context.bot)
            elif update.message is not None:
                await self.desk.on_message(update.message, context.bot)
            elif update.chat_member is not None:  # someone joined or left the group
                await self.desk.on_member(update.chat_member, context.bot)
        except TelegramError as error:
            log.error("staff group: %s", error)

    async def _settle_keyboard(
        self, message: Message, label: str | None, replies: list[Reply]
    ) -> None:
        """After a press the old keyboard goes: the message shows the choice instead."""
        expired = bool(replies) and replies[0].responses[:1] == ["utter_choice_expired"]
        if self._behind("keyboard_edit"):
            return
        try:
            if label and not expired and message.text:
                await message.edit_text(
                    escape(message.text) + "\n\n" + escape(f"✓ {label}"),
                    parse_mode=ParseMode.HTML,
                    reply_markup=None,
                )
            elif message.reply_markup is not None:
                await message.edit_reply_markup(reply_markup=None)
        except TelegramError as error:  # already edited, too old to edit, or timed out
            log.info("keyboard of message %s left as is: %s", message.message_id, error)

    def _on_edit(self, message: Message) -> None:
        if message.from_user is not None and message.text:
            self.engine.edited(
                user_id=message.from_user.id, message_ref=message.message_id, text=message.text
            )

    async def _on_group(self, message: Message, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Customers in a group are pointed to a private chat; the staff group is not theirs."""
        if message.chat.id == self.settings.staff_chat_id:
            return
        bot = context.bot
        text = message.text or ""
        addressed = text.startswith("/") or f"@{bot.username}" in text
        if not addressed:
            return
        language = language_of_code(
            message.from_user.language_code if message.from_user else None,
            self.settings.default_language,
        )
        text = self.engine.responses.render("utter_group_private", language, {})
        button = InlineKeyboardButton(
            self.engine.responses.label("button.open_private", language),
            url=f"https://t.me/{bot.username}",
        )
        await self._retrying(
            lambda: message.reply_text(
                escape(text),
                parse_mode=ParseMode.HTML,
                reply_markup=InlineKeyboardMarkup([[button]]),
            )
        )

    # --- sending ---------------------------------------------------------------------

    async def _send_all(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, replies: list[Reply]
    ) -> None:
        """The turn's replies are rows already (written with the turn): the outbox sends
        them after anything of this chat's still waiting, and the turn waits a while."""
        await self.outbox.deliver(chat_id)

    def _behind(self, what: str) -> bool:
        """Whether customers wait for their replies now; if so an extra is skipped."""
        if self._lag <= BEHIND:
            return False
        self.metrics.skipped.labels(what).inc()
        return True

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Network errors and a 429 that got past the rate limiter: wait and try again."""
        delay = 0.5
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await call()
            except RetryAfter as error:
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(retry_seconds(error.retry_after))
            except (BadRequest, Forbidden):
                raise
            except NetworkError:
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def _typing(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int
    ) -> AsyncIterator[None]:
        """Show "typing…" only when a reply takes longer than a moment."""

        async def later() -> None:
            await asyncio.sleep(TYPING_AFTER)
            if self._behind("typing"):
                return
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)

        task = asyncio.create_task(later())
        try:
            yield
        finally:
            task.cancel()


HANDLED_KINDS = frozenset(
    {"message", "edited_message", "callback_query", "chat_member", "my_chat_member"}
)


def _plain_text_from(data: dict[str, Any]) -> int | None:
    """The sender of an update that is a customer's plain typed line in a private chat
    (no command, no media, not an edit), else None."""
    message = data.get("message")
    if not isinstance(message, dict) or (message.get("chat") or {}).get("type") != "private":
        return None
    text = message.get("text")
    sender = (message.get("from") or {}).get("id")
    if not isinstance(text, str) or text.startswith("/") or not isinstance(sender, int):
        return None
    return sender


def _kinds(data: dict[str, Any]) -> str:
    return ", ".join(sorted(key for key in data if key != "update_id")) or "empty"


def _known_kind(data: dict[str, Any]) -> bool:
    return any(key in HANDLED_KINDS for key in data)


def _media(message: Message) -> dict[str, Any] | None:
    if message.photo:
        return {"kind": "photo", "file_id": message.photo[-1].file_id}
    if message.document is not None:
        return {"kind": "document", "file_id": message.document.file_id}
    if message.contact is not None:
        return {"kind": "contact", "phone_number": message.contact.phone_number}
    if message.location is not None:
        return {
            "kind": "location",
            "latitude": message.location.latitude,
            "longitude": message.location.longitude,
        }
    for kind in MEDIA_KINDS[2:]:
        if getattr(message, kind, None) is not None:
            return {"kind": kind}
    if message.text is None and message.caption is None:
        return {"kind": "other"}
    return None


def _label(message: Message | None, data: str | None) -> str | None:
    if message is None or message.reply_markup is None:
        return None
    for row in message.reply_markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def run(settings: Settings, *, intake: bool = True) -> None:
    """Train or load the NLU, bring the database to the current schema, then take
    updates (long polling, or the webhook when WEBHOOK_URL is set) until stopped.
    ``intake=False`` (`python -m bot scheduler`): follow-ups and the watch only."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logmask.install()
    for chatty in ("httpx", "rasa_sdk", "apscheduler", "aiohttp.access", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    db = Database(settings.database_url)
    db.upgrade()
    nlu = NluService(settings)
    if intake:
        # Ready before the first customer writes: the model, jieba's dictionary, imports.
        nlu.model.parse_batch(["你好，我的快递还没到", "hello, my parcel is late"])
    engine = Engine(settings, db=db, nlu=nlu)
    try:
        asyncio.run(_serve(settings, TelegramFrontEnd(settings, engine), intake=intake))
    finally:
        db.dispose()


async def _serve(settings: Settings, front: TelegramFrontEnd, *, intake: bool) -> None:
    application = front.build()
    db = front.engine.db
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for name in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(name, stopping.set)
    await application.initialize()
    runner = None
    poller: asyncio.Task[None] | None = None
    dispatcher = None
    try:
        await front.start(application)
        if intake:
            # Several processes on one database take turns on a chat (a lease row);
            # one process on SQLite needs no more than its own order.
            leases = None if db.url.startswith("sqlite") else Leases(db)
            dispatcher = Dispatcher(
                front.inbox, front.handle_stored, leases=leases, consumed=front.consumed
            )
        gate = Intake(
            settings,
            db,
            front.inbox,
            dispatcher,
            front.metrics,
            front.one_moment,
            unreachable=lambda: front.desk.unreachable,
        )
        if settings.webhook_url or settings.listen:
            runner = await gate.serve(settings.listen or "127.0.0.1:8080")
        if dispatcher is not None:
            dispatcher.start()  # first what a previous run left undone
            if settings.webhook_url:
                await application.bot.set_webhook(
                    settings.webhook_url,
                    secret_token=settings.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                    max_connections=WEBHOOK_CONNECTIONS,
                )
                log.info("webhook %s", settings.webhook_url)
            else:
                poller = asyncio.create_task(gate.poll(application.bot, stopping))
                log.info("polling %s", settings.telegram_api_base_url)
        stop = asyncio.create_task(stopping.wait())
        waits: list[asyncio.Task[Any]] = [stop] + ([poller] if poller else [])
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if poller is not None and poller.done() and not stopping.is_set():
            stop.cancel()
            poller.result()  # a fatal polling error (a wrong token): raise it
    finally:
        if poller is not None and not poller.done():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if runner is not None:
            await runner.cleanup()  # no new updates; then finish those being handled
        if dispatcher is not None:
            await dispatcher.drain(STOP_GRACE)
            await dispatcher.stop()
        await front.stop(application)
        await application.shutdown()
