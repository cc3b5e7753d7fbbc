"""The relay between a ticket's topic and the customer, with coaching's hold on words to
avoid, and what happens to a message that cannot be delivered.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from telegram.error import (
    BadRequest,
)

from bot.payloads import DeskPress
from bot.store import (
    HeldMessage,
    Ticket,
)
from bot.store import Message as MessageRow
from bot.store.db import add_message
from bot.telegram.outbox import Copy
from bot.telegram.staff.members import Members
from bot.telegram.staff.rows import (
    ROUTINE,
)

log = logging.getLogger(__name__)


class Relay(Members):
    async def _hold(self, bot: Bot, ticket: Ticket, agent_id: int, text: str, phrase: str) -> None:
        """Keep the message back; offer the agent a better wording, Send anyway / Discard."""
        with self.db.session() as session:
            held = HeldMessage(
                ticket_id=ticket.id or 0, agent_id=agent_id, text=text, phrase=phrase
            )
            session.add(held)
            session.commit()
            held_id = held.id
        assert held_id is not None
        await self.to_topic(
            bot,
            ticket,
            self.label("staff.coach_held", phrase=phrase)
            + "\n"
            + self.label("staff.coach_suggestion"),
            markup=InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            self.label("staff.send_anyway"),
                            callback_data=DeskPress("send", held_id).pack(),
                        ),
                        InlineKeyboardButton(
                            self.label("staff.discard"),
                            callback_data=DeskPress("discard", held_id).pack(),
                        ),
                    ]
                ]
            ),
        )

    async def _release(self, bot: Bot, query: Any, held_id: int, send: bool) -> None:
        with self.db.session() as session:
            held = session.get(HeldMessage, held_id)
            if held is None or held.status != "held" or held.agent_id != query.from_user.id:
                await query.answer(self.label("staff.unknown"), show_alert=True)
                return
            held.status = "sent" if send else "discarded"
            session.add(held)
            session.commit()
            ticket = session.get(Ticket, held.ticket_id)
            text = held.text
        await query.answer(self.label("staff.sent" if send else "staff.discarded"))
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(reply_markup=None)
        if send and ticket is not None:
            await self._relay(bot, ticket, query.from_user.first_name, text)

    async def _relay(
        self, bot: Bot, ticket: Ticket, agent: str, text: str, message: Message | None = None
    ) -> None:
        """An agent's words (or photo, document) to the customer, signed with their name.
        The first one is the ticket's first contact (its SLA)."""
        if ticket.first_contact_at is None:
            with self.db.session() as session:
                row = session.get(Ticket, ticket.id)
                if row is not None and row.first_contact_at is None:
                    row.first_contact_at = datetime.now(UTC)
                    session.add(row)
                    session.commit()
        language, chat_id = self.customer_chat(ticket)
        prefix = self.responses.label("relay.from_agent", language, agent=agent)
        if message is not None and (message.photo or message.document):
            # Two rows, so the name always comes before the photo
            await self.to_customer(
                bot,
                ticket,
                chat_id,
                f"{prefix} [{'photo' if message.photo else 'file'}]",
                copy=(message.chat.id, message.message_id),
                before=prefix,
            )
        elif text:
            await self.to_customer(bot, ticket, chat_id, f"{prefix}\n{text}")

    async def to_customer(
        self,
        bot: Bot,
        ticket: Ticket,
        chat_id: int,
        text: str,
        *,
        response: str = "relay",
        copy: tuple[int, int] | None = None,
        before: str | None = None,
    ) -> None:
        """Keep it in the transcript as a row for the outbox (bot/telegram/outbox.py),
        which sends the customer's chat in order in the background. `copy`: (chat,
        message) of a photo or file sent as a copy; `before`: a line sent just before it
        (the agent's name), written in the same transaction. Nothing here waits for
        Telegram, so the staff update that asked for it is marked handled right after
        the row is written (a crash in between would relay it twice). What Telegram
        refuses for good is told in the topic (not_delivered). `bot`: the outbox uses
        the application's."""
        del bot
        payload = Copy(*copy).payload() if copy is not None else None
        rows = [(before, "relay", None)] if before else []
        with self.db.session() as session:
            for line, key, data in [*rows, (text, response, payload)]:
                add_message(
                    session,
                    conversation_id=ticket.conversation_id,
                    direction="out",
                    text=line,
                    response=key,
                    payload=data,
                )
            session.commit()
        if self.outbox is not None:
            self.outbox.kick(chat_id)

    async def not_delivered(self, bot: Bot, row: MessageRow, outcome: str, reason: str) -> None:
        """The outbox's word on a message Telegram refused for good, or that left and
        never got an answer (it may not have arrived): if the customer has a ticket, its
        topic says so (a routine one once per ticket)."""
        with self.db.session() as session:
            ticket = session.exec(
                select(Ticket)
                .where(Ticket.conversation_id == row.conversation_id)
                .order_by(col(Ticket.id).desc())
            ).first()
        if ticket is None:
            return
        routine = (row.response or "") in ROUTINE
        if outcome == "blocked":
            await self.undelivered(bot, ticket, f"{row.response} ({reason})", routine=routine)
            return
        log.warning("ticket #%s: message %s not delivered: %s", ticket.id, row.id, reason)
        if routine and ticket.id in self._told_blocked:
            return
        self._told_blocked.add(ticket.id or 0)
        shown = row.text if len(row.text) <= 120 else row.text[:119] + "…"
        # "unconfirmed": it left and no answer came; Telegram may have it (not resent)
        key = "staff.maybe_not_delivered" if outcome == "unconfirmed" else "staff.not_delivered"
        await self.to_topic(bot, ticket, self.label(key, text=shown, reason=reason))

    async def undelivered(
        self, bot: Bot, ticket: Ticket, what: str, *, routine: bool = False
    ) -> None:
        """A message to the customer refused by Telegram (they blocked the bot): one log
        line, and a line in the ticket's topic."""
        log.warning("ticket #%s: not delivered, the customer blocked the bot: %s", ticket.id, what)
        if routine and ticket.id in self._told_blocked:
            return
        self._told_blocked.add(ticket.id or 0)
        await self.to_topic(bot, ticket, self.label("staff.customer_blocked"))
