"""The staff group's upkeep: a topic and card per ticket, a topic deleted by hand replaced,
a group upgraded to a supergroup followed, lines said in a topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from telegram import (
    Bot,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    TelegramError,
)

from bot.html_text import escape, split_text
from bot.store import (
    OPEN_TICKET,
    Complaint,
    Customer,
    Evidence,
    Ticket,
    TicketStatus,
)
from bot.store.models import Priority
from bot.telegram.outbox import topic_gone
from bot.telegram.staff.cards import Cards
from bot.telegram.staff.rows import (
    EVIDENCE_SHOWN,
    Outgoing,
    once_telegram_answers,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class Topics(Cards):
    # --- when the staff group changes under us ---------------------------------------------

    def owns(self, update: Update) -> bool:
        """Whether an update comes from the staff group: its id (also after an upgrade to
        a supergroup), or the new supergroup's first message naming it."""
        chat = update.effective_chat
        if chat is None or self.staff_chat_id is None:
            return False
        if chat.id == self.staff_chat_id:
            return True
        message = update.effective_message
        return message is not None and message.migrate_from_chat_id == self.staff_chat_id

    def migrated(self, old: int, new: int) -> None:
        """The group `old` was upgraded to the supergroup `new` (Telegram's answer
        ChatMigrated, or its service message): tickets move with it, and if it is the
        staff group, this process uses the new id from now on and says so once."""
        with self.db.session() as session:
            session.execute(
                sa.update(Ticket).where(col(Ticket.staff_chat_id) == old).values(staff_chat_id=new)
            )
            session.commit()
        if self.staff_chat_id == old:
            self.staff_chat_id = new
            log.error(
                "the staff group %s was upgraded to a supergroup with the id %s; using it "
                "until the bot restarts: set STAFF_CHAT_ID=%s",
                old,
                new,
                new,
            )

    async def _in_group(
        self, bot: Bot, ticket: Ticket | None, call: Callable[[int, int | None], Awaitable[T]]
    ) -> T:
        """`call(chat_id, topic_id)` in the staff group: the ticket's chat and topic, or
        the desk's chat (topic None). The group upgraded to a supergroup: the call goes
        again to the new id. The ticket's topic deleted by hand: the ticket gets a new
        topic with its card, and the call goes there."""
        replaced = False
        for attempt in range(4):  # a move or two and a new topic, then the call succeeds
            chat_id = ticket.staff_chat_id if ticket is not None else self.staff_chat_id
            topic_id = ticket.topic_id if ticket is not None else None
            assert chat_id is not None
            try:
                return await once_telegram_answers(functools.partial(call, chat_id, topic_id))
            except ChatMigrated as error:
                if attempt == 3:
                    raise
                self.migrated(chat_id, int(error.new_chat_id))
                if ticket is not None:
                    ticket.staff_chat_id = int(error.new_chat_id)
            except BadRequest as error:
                if ticket is None or topic_id is None or replaced or not topic_gone(error):
                    raise
                await self._replace_topic(bot, ticket, topic_id)
                replaced = True
        raise AssertionError("unreachable")

    async def _replace_topic(self, bot: Bot, ticket: Ticket, gone: int) -> None:
        """Someone deleted the ticket's topic: a new topic with the card and a line saying
        so, stored on the ticket (once, however many messages find the topic gone)."""
        ticket_id = ticket.id or 0
        lock = self._topic_locks.setdefault(ticket_id, asyncio.Lock())
        async with lock:
            with self.db.session() as session:
                row = session.get(Ticket, ticket_id)
            if row is not None and row.topic_id == gone:
                log.warning(
                    "ticket #%s: its topic %s was deleted from the staff group; posting its "
                    "card in a new topic",
                    ticket_id,
                    gone,
                )
                note = self.label("staff.topic_replaced")
                if row.status == TicketStatus.ASSIGNED and row.agent_name:
                    note += "\n" + self.label("staff.taken_by", agent=row.agent_name)
                row = await self._open_topic(bot, ticket_id, note)
            if row is not None:
                ticket.staff_chat_id, ticket.topic_id = row.staff_chat_id, row.topic_id
                ticket.card_message_id = row.card_message_id

    async def _open_topic(
        self, bot: Bot, ticket_id: int, note: str | None = None, *, out: Outgoing | None = None
    ) -> Ticket:
        """The ticket's topic in the staff group with its card (then the customer's photos
        and files), stored on the ticket; `note` is a line under the card; `out`: rows
        written in the same transaction as the card's place."""
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            customer = session.get(Customer, ticket.customer_id)
            assert customer is not None
            previous = session.exec(
                select(Complaint).where(
                    Complaint.customer_id == customer.id,
                    col(Complaint.id) != (ticket.complaint_id or 0),
                )
            ).all()
            photos = session.exec(
                select(Evidence)
                .where(Evidence.conversation_id == ticket.conversation_id)
                .order_by(col(Evidence.id))  # as sent (PostgreSQL keeps no order by itself)
            ).all()
            card = self.card(ticket, customer, len(previous), len(photos))
            name = self.topic_name(ticket, customer)
            evidence = [(item.kind, item.file_id, item.caption) for item in photos]
        if note:
            card += "\n\n" + note

        async def create(chat_id: int, _: int | None) -> int | None:
            try:
                topic = await bot.create_forum_topic(chat_id, name)
            except BadRequest:  # a group without topics: agents reply to the card
                return None
            return topic.message_thread_id

        topic_id = await self._in_group(bot, None, create)
        message = await self._in_group(
            bot,
            None,
            lambda chat_id, _: bot.send_message(
                chat_id,
                escape(card),
                parse_mode=ParseMode.HTML,
                message_thread_id=topic_id,
                reply_markup=self.card_buttons(ticket_id),
            ),
        )
        chat_id = message.chat.id
        await self._evidence(bot, chat_id, topic_id, message.message_id, evidence)
        with self.db.session() as session:
            row = session.get(Ticket, ticket_id)
            assert row is not None
            row.staff_chat_id, row.topic_id, row.card_message_id = (
                chat_id,
                topic_id,
                message.message_id,
            )
            session.add(row)
            if out is not None:
                out.write(session)
            session.commit()
            return row

    async def _evidence(
        self,
        bot: Bot,
        chat_id: int,
        topic_id: int | None,
        card_id: int,
        evidence: list[tuple[str, str, str]],
    ) -> None:
        """The customer's photos and files under the card (the first EVIDENCE_SHOWN)."""
        for kind, file_id, caption in evidence[:EVIDENCE_SHOWN]:
            send = bot.send_photo if kind == "photo" else bot.send_document
            try:
                await send(
                    chat_id,
                    file_id,
                    caption=caption[:1000] or None,
                    message_thread_id=topic_id,
                    reply_to_message_id=None if topic_id else card_id,
                )
            except BadRequest as error:  # a file Telegram no longer has
                log.warning("evidence %s not shown: %s", file_id, error)

    # --- a new ticket --------------------------------------------------------------------

    async def post(self, bot: Bot, ticket_id: int) -> None:
        """A topic named after the ticket, the summary card its first message. Not pinned:
        Telegram allows 20 messages a minute per group, and a pin would spend a third of
        each ticket's budget (the card is the topic's first message anyway)."""
        if self.staff_chat_id is None:
            return
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None or ticket.card_message_id is not None:
                return
            if ticket.status not in OPEN_TICKET:  # closed before it was posted
                return
        out = Outgoing()  # a major complaint's alert: stored with the card, sent after it
        if ticket.supervisor_flag or ticket.priority >= Priority.HIGH:
            self.supervisor_alert(
                out, self.label("staff.major_alert", ticket=f"#{ticket_id}"), ticket
            )
        await self._open_topic(bot, ticket_id, out=out)
        self.deliver(bot, out)

    async def say_in_topic(
        self, bot: Bot, ticket: Ticket, text: str, *, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        """A line (or lines) in the ticket's topic now; without topics, a reply to its
        card tagged with the ticket's number. Survives a deleted topic and a moved group,
        and waits Telegram out."""
        if ticket.staff_chat_id is None:
            return

        async def send(chat_id: int, topic_id: int | None) -> None:
            # no topics: tag the line so replies to it find the ticket
            pieces = split_text(text if topic_id is not None else f"#{ticket.id} · {text}")
            for index, piece in enumerate(pieces):
                await bot.send_message(
                    chat_id,
                    escape(piece),
                    parse_mode=ParseMode.HTML,
                    message_thread_id=topic_id,
                    reply_to_message_id=None if topic_id else ticket.card_message_id,
                    reply_markup=markup if index == len(pieces) - 1 else None,
                )

        await self._in_group(bot, ticket, send)

    async def close_topic(self, bot: Bot, ticket_id: int) -> None:
        """Close the ticket's forum topic (already closed or deleted: nothing to do)."""
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.topic_id is None or ticket.staff_chat_id is None:
            return
        with contextlib.suppress(BadRequest):
            await bot.close_forum_topic(ticket.staff_chat_id, ticket.topic_id)

    async def post_note(self, bot: Bot, ticket_id: int, body: dict[str, Any]) -> None:
        """A "note" row of the ticket's lane, to its topic now."""
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return
        markup = body.get("markup")
        await self.say_in_topic(
            bot,
            ticket,
            str(body.get("text", "")),
            markup=InlineKeyboardMarkup.de_json(markup, bot) if markup else None,
        )

    async def from_customer(
        self,
        bot: Bot,
        ticket_id: int,
        *,
        name: str,
        text: str,
        chat_id: int,
        message_id: int | None,
        copy: bool,
    ) -> None:
        """What the customer writes while a person has the case appears in its topic: the
        text, or (a photo, a file, a voice message) a copy of the message itself."""
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.staff_chat_id is None:
            return
        if not copy or message_id is None:
            await self.say_in_topic(bot, ticket, f"👤 {name or '?'}: {text}")
        else:
            await self.say_in_topic(bot, ticket, f"👤 {name or '?'}:")
            with contextlib.suppress(TelegramError):
                await self._in_group(
                    bot,
                    ticket,
                    lambda group_id, topic_id: bot.copy_message(
                        group_id,
                        chat_id,
                        message_id,
                        message_thread_id=topic_id,
                        reply_to_message_id=None if topic_id else ticket.card_message_id,
                    ),
                )

    # --- relay ---------------------------------------------------------------------------

    async def reopen(self, bot: Bot, ticket_id: int) -> None:
        """The customer came back: the topic opens again with a note, agents see it."""
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.staff_chat_id is None:
            return
        if ticket.topic_id is not None:
            with contextlib.suppress(BadRequest):
                await bot.reopen_forum_topic(ticket.staff_chat_id, ticket.topic_id)
        days = max(1, self.settings.reopen_window.days)
        await self.say_in_topic(bot, ticket, self.label("staff.reopened", days=days))
