"""Which handler an update goes to (the declared table ``ROUTES``), each ``update_id``
handled once, and the inbox's stored updates (with lines typed right after, merged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import CallbackContext, ContextTypes

from bot.dialogue import MAX_MERGED
from bot.nlu.text import language_of_code
from bot.store import ProcessedUpdate
from bot.store.models import InboundUpdate, utcnow
from bot.telegram.customers import Customers
from bot.telegram.intake import (
    DATABASE_DOWN,
    MAX_ATTEMPTS,
)
from bot.telegram.render import escape
from bot.telegram.wiring import (
    ARRIVED,
    MERGED,
    kinds_of,
    known_kind,
    plain_text_from,
)

log = logging.getLogger(__name__)


class Routes(Customers):
    """Updates to their handlers, by the table ``ROUTES`` below."""

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
        route = next(route for route in ROUTES if route.takes(self, update))
        if not route.once_here:
            await route.handler(self, update, context)
        elif self._first_time(update.update_id):
            await route.handler(self, update, context)
            self._mark_done(update.update_id)

    def _first_time(self, update_id: int) -> bool:
        with self.engine.db.session() as session:
            return session.get(ProcessedUpdate, update_id) is None

    def _mark_done(self, update_id: int) -> None:
        with self.engine.db.session() as session:
            session.add(ProcessedUpdate(update_id=update_id))
            with contextlib.suppress(IntegrityError):
                session.commit()

    async def _on_agent(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None
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

    async def _on_edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.edited_message
        assert message is not None
        if message.from_user is not None and message.text:
            self.engine.edited(
                user_id=message.from_user.id, message_ref=message.message_id, text=message.text
            )

    async def _on_group(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Customers in a group are pointed to a private chat; the staff group is not theirs."""
        message = update.message
        assert message is not None
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
        if not known_kind(data):
            log.info("update %s of a kind not handled (%s)", row.update_id, kinds_of(data))
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
        user = plain_text_from(data)
        if window <= 0 or user is None or not self.engine.gathers(user):
            return []
        while True:
            following: list[InboundUpdate] = []
            previous = row.received_at
            for later in self.inbox.pending(row.chat_key):
                if later.update_id <= row.update_id:
                    continue
                if plain_text_from(json.loads(later.body)) != user:
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

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Any other update (a member joining a group, a bot added somewhere): nothing to
        do but record it as handled."""


Handler = Callable[[Routes, Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    """One kind of update and its handler; the first route that takes an update has it."""

    name: str
    takes: Callable[[Routes, Update], bool]
    handler: Handler
    once_here: bool
    """Recorded as handled here (a ProcessedUpdate row), so a redelivery is skipped; the
    customer's messages and presses are recorded in the engine's transaction instead,
    with the turn they made."""


def _private(update: Update) -> bool:
    return update.message is not None and update.message.chat.type == ChatType.PRIVATE


def _agent_in_private(front: Routes, update: Update) -> bool:
    return update.message is not None and _private(update) and front.agents.handles(update.message)


ROUTES: tuple[Route, ...] = (
    # the staff group (the desk knows its id after an upgrade to a supergroup)
    Route("staff group", lambda front, update: front.desk.owns(update), Routes._on_staff, True),
    Route(
        "button press",
        lambda _, update: update.callback_query is not None,
        Routes._on_button,
        False,
    ),
    Route(
        "an agent in a private chat",
        _agent_in_private,
        Routes._on_agent,
        True,
    ),
    Route("customer message", lambda _, update: _private(update), Routes._on_message, False),
    Route("edit", lambda _, update: update.edited_message is not None, Routes._on_edit, True),
    Route("group message", lambda _, update: update.message is not None, Routes._on_group, True),
    Route("anything else", lambda _, update: True, Routes._on_other, True),
)
