"""`python -m bot run`: the bot in Telegram (long polling), on the conversation engine.

One ``TypeHandler`` routes every update: private messages and button presses go to
the engine; media become evidence; edits update the transcript; groups are pointed to
a private chat. Updates are ordered per chat (:mod:`bot.telegram.ordering`), each
``update_id`` is handled once, sending goes through PTB's ``AIORateLimiter`` (Telegram's
30/s overall and 20/min per group, retrying after a 429's ``retry_after``) and a
retry loop for network errors here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler

from bot import logmask
from bot.config import Settings
from bot.dialogue import Engine, Incoming, Reply, TurnResult
from bot.followups.kinds import FollowUpKinds
from bot.followups.scheduler import Scheduler
from bot.nlu import NluService
from bot.store import Database, ProcessedUpdate
from bot.telegram.ordering import ChatOrderedProcessor
from bot.telegram.render import escape, keyboard, split_text
from bot.telegram.request import AiohttpRequest
from handoff.private import AgentChat
from handoff.staff import StaffDesk
from handoff.watch import WaitingWatch

log = logging.getLogger(__name__)
T = TypeVar("T")

SEND_ATTEMPTS = 5
CONNECTION_POOL = 32
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
        self.followups: FollowUpKinds | None = None

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
            .concurrent_updates(ChatOrderedProcessor())
            # PTB's HTTP layer on aiohttp: httpx/httpcore cost more CPU per call than
            # the NLU under load (docs/benchmarks.md). 32 connections keep requests flowing.
            .request(AiohttpRequest(connection_pool_size=CONNECTION_POOL))
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
            .post_init(self._post_init)
            .post_stop(self._post_stop)
            .post_shutdown(self._post_shutdown)
            .build()
        )
        application.add_handler(TypeHandler(Update, self.on_update))
        application.add_error_handler(self._on_error)
        return application

    async def _post_init(self, application: Application) -> None:
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
        for user_id in self.desk.staff:
            with contextlib.suppress(BadRequest):  # never wrote to the bot: no chat yet
                await application.bot.set_my_commands(
                    [BotCommand(name, text) for name, text in staff_menu],
                    scope=BotCommandScopeChat(user_id),
                )
        if self.settings.run_scheduler:
            scheduler = Scheduler(self.settings.database_url)
            self.followups = FollowUpKinds(self.desk, application.bot, scheduler)
            scheduler.start(self.followups)
            if self.settings.supervisor_ids:
                scheduler.add_reports(
                    self.settings.reports, self.settings.report_time, self.settings.tz
                )
            scheduler.add_retention(self.settings.retention_days, self.settings.tz)
            self.followups.sync()
        self._watch_task = asyncio.create_task(self._tick(application.bot))

    async def _tick(self, bot: Bot) -> None:
        """Every HANDOFF_TICK: the waiting tickets and promises, and new follow-up rows
        (written by any process) get their scheduler jobs."""
        interval = self.settings.handoff_tick.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                if self.settings.staff_chat_id is not None:
                    await self.watch.tick(bot, datetime.now(UTC))
                if self.followups is not None:
                    self.followups.sync()
            except TelegramError as error:
                log.error("hand-off watch: %s", error)

    async def _post_stop(self, application: Application) -> None:
        if self.followups is not None:
            self.followups.scheduler.shutdown()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task

    async def _post_shutdown(self, application: Application) -> None:
        await self.engine.close()

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("update %s failed", getattr(update, "update_id", "?"), exc_info=context.error)

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
        staff_chat = self.settings.staff_chat_id
        if update.effective_chat is not None and update.effective_chat.id == staff_chat:
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
        incoming = Incoming(
            user_id=user.id,
            chat_id=message.chat.id,
            name=user.first_name,
            text=text,
            language_hint=user.language_code,
            message_ref=message.message_id,
            media=media,
            update_id=update.update_id,
        )
        async with self._typing(context, message.chat.id):
            result = await self.engine.handle(incoming)
        if result.duplicate:
            log.info("update %s already handled; skipped", update.update_id)
            return
        await self._send_all(context, message.chat.id, result.replies)
        await self._after_turn(context, result, message)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        with contextlib.suppress(BadRequest):  # answered too late: Telegram says so, fine
            await query.answer()
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
        if result.duplicate:
            return
        if keyboard_message is not None:
            await self._settle_keyboard(keyboard_message, label, result.replies)
        await self._send_all(context, chat_id, result.replies)
        await self._after_turn(context, result, None)

    async def _after_turn(
        self, context: ContextTypes.DEFAULT_TYPE, result: TurnResult, message: Message | None
    ) -> None:
        """A new ticket goes to the staff group; a message on a handed-off case to its topic."""
        try:
            if result.ticket_id is not None:
                await self.desk.post(context.bot, result.ticket_id)
            if result.reopened and result.relay_ticket_id is not None:
                await self.desk.reopen(context.bot, result.relay_ticket_id)
            if result.relay_ticket_id is not None and message is not None:
                await self.desk.from_customer(context.bot, result.relay_ticket_id, message)
            for event in result.staff_events:
                await self.desk.event(context.bot, event)
        except TelegramError as error:
            log.error("staff group: %s", error)

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
        except TelegramError as error:
            log.error("staff group: %s", error)

    async def _settle_keyboard(
        self, message: Message, label: str | None, replies: list[Reply]
    ) -> None:
        """After a press the old keyboard goes: the message shows the choice instead."""
        expired = bool(replies) and replies[0].responses[:1] == ["utter_choice_expired"]
        try:
            if label and not expired and message.text:
                await message.edit_text(
                    escape(message.text) + "\n\n" + escape(f"✓ {label}"),
                    parse_mode=ParseMode.HTML,
                    reply_markup=None,
                )
            elif message.reply_markup is not None:
                await message.edit_reply_markup(reply_markup=None)
        except BadRequest as error:  # already edited, or too old to edit
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
        language = (
            "zh"
            if (message.from_user and (message.from_user.language_code or "").startswith("zh"))
            else "en"
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
        outcomes = []
        for reply in replies:
            sent_id, ok = await self._send(context, chat_id, reply)
            if reply.row_id is not None:
                outcomes.append((reply.row_id, sent_id, ok))
        self.engine.delivered(outcomes)

    async def _send(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, reply: Reply
    ) -> tuple[int | None, bool]:
        """Send one reply (in pieces if long): (the last piece's message id, delivered)."""
        pieces = split_text(reply.text) or [" "]
        markup = keyboard(reply.buttons)
        sent_id: int | None = None
        try:
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                sent = await self._retrying(
                    lambda piece=piece, last=last: context.bot.send_message(  # type: ignore[misc]
                        chat_id,
                        escape(piece),
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup if last else None,
                    )
                )
                sent_id = sent.message_id
        except TelegramError as error:
            log.error("reply %s to chat %s not delivered: %s", reply.row_id, chat_id, error)
            return sent_id, False
        return sent_id, True

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Network errors and a 429 that got past the rate limiter: wait and try again."""
        delay = 0.5
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await call()
            except RetryAfter as error:
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(_seconds(error.retry_after))
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
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)

        task = asyncio.create_task(later())
        try:
            yield
        finally:
            task.cancel()


def _seconds(value: Any) -> float:
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


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


def run(settings: Settings) -> None:
    """Train or load the NLU, open the database, poll Telegram until stopped."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logmask.install()
    for chatty in ("httpx", "rasa_sdk", "apscheduler"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    db = Database(settings.database_url)
    db.create_all()
    nlu = NluService(settings)
    # Ready before the first customer writes: the model, jieba's dictionary, lazy imports.
    nlu.model.parse_batch(["你好，我的快递还没到", "hello, my parcel is late"])
    engine = Engine(settings, db=db, nlu=nlu)
    application = TelegramFrontEnd(settings, engine).build()
    log.info("polling %s", settings.telegram_api_base_url)
    try:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    finally:
        db.dispose()
