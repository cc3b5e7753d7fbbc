"""The card's buttons: Take, Transfer (to whom), Escalate, Close, and a call-back taken."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    TelegramError,
)

from bot.payloads import DeskPress
from bot.store import (
    OPEN_TICKET,
    Agent,
    FollowUp,
    Ticket,
    TicketStatus,
)
from bot.store.models import Priority
from bot.telegram.staff.commands import Commands
from bot.telegram.staff.rows import (
    Outgoing,
)
from handoff import queue, tickets

log = logging.getLogger(__name__)


class Buttons(Commands):
    # --- the card's buttons ----------------------------------------------------------------

    async def on_button(self, update: Update, bot: Bot) -> None:
        query = update.callback_query
        assert query is not None
        user = query.from_user
        press = DeskPress.parse(query.data)
        if user.id not in self.staff:
            await query.answer(self.label("staff.only_agents"), show_alert=True)
            return
        if user.id in self.left:  # a public group's buttons work for anyone who sees them
            await query.answer(self.label("staff.not_member"), show_alert=True)
            return
        if press is None:
            await query.answer(self.label("staff.unknown"), show_alert=True)
            return
        action, ticket_id = press.action, press.id
        now = datetime.now(UTC)
        self.remember(user.id, user.first_name)
        if action == "take":
            outcome, answer = await self.take(bot, ticket_id, user.id, user.first_name, now)
            await query.answer(answer, show_alert=outcome != "won")
        elif action == "transfer":
            await self._offer_transfer(bot, query, ticket_id)
        elif action == "xfer":
            await self._transfer(
                bot, query, ticket_id, -1 if press.target is None else press.target
            )
        elif action == "escalate":
            # The escalation and its alert first: the answer only stops the spinner, and
            # while Telegram is away it fails without taking the escalation with it
            out = Outgoing()
            with self.db.session() as session:  # the flag and the alert together
                ticket = session.get(Ticket, ticket_id)
                if ticket is not None:
                    ticket.supervisor_flag, ticket.priority = (
                        True,
                        max(ticket.priority, Priority.HIGH),
                    )
                    session.add(ticket)
                    alert = self.label(
                        "staff.escalation_alert", ticket=f"#{ticket_id}", agent=user.first_name
                    )
                    self.supervisor_alert(out, alert, ticket)
                    out.write(session)
                    session.commit()
            self.deliver(bot, out)
            with contextlib.suppress(TelegramError):
                await query.answer(self.label("staff.escalated"))
        elif action == "close":
            await query.answer(self.label("staff.close_how"), show_alert=True)
        elif action == "cb":
            await self._callback_taken(bot, query, ticket_id, now)
        elif action in ("send", "discard"):
            await self._release(bot, query, ticket_id, send=action == "send")
        else:
            await query.answer(self.label("staff.unknown"), show_alert=True)

    async def take(
        self, bot: Bot, ticket_id: int, agent_id: int, name: str, now: datetime
    ) -> tuple[str, str]:
        """Take a waiting ticket: (outcome, what to tell the agent). Outcomes: won, taken
        (someone else won), closed (resolved or cancelled), full (at capacity), missing,
        left (not in the staff group any more)."""
        if agent_id in self.left:
            return "left", self.label("staff.not_member")
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                return "missing", self.label("staff.unknown")
            if self._full(session, agent_id):
                held = len(queue.held_by(session, agent_id))
                return "full", self.label("staff.you_are_full", count=held)
            won = tickets.take(
                session,
                ticket_id=ticket_id,
                agent_id=agent_id,
                agent_name=name,
                now=now,
            )
            session.refresh(ticket)
            agent = session.get(Agent, agent_id)
            back = agent is not None and not agent.available
            out = Outgoing()
            if won:  # the ticket, its line and the customer's message: one transaction
                if back:
                    assert agent is not None
                    agent.available = True
                    session.add(agent)
                self.topic_line(out, ticket, self.label("staff.taken_by", agent=name))
                self.customer_line(out, session, ticket, "utter_agent_joined", agent=name)
                out.write(session)
            session.commit()
        if not won and ticket.status not in OPEN_TICKET:
            return "closed", self.label(
                "staff.not_waiting", ticket=f"#{ticket_id}", status=ticket.status
            )
        if not won:
            return "taken", self.label("staff.already_taken", agent=ticket.agent_name or "?")
        self.deliver(bot, out)
        answer = self.label("staff.you_have_it")
        return "won", answer + (" " + self.label("staff.back_from_away") if back else "")

    async def _callback_taken(self, bot: Bot, query: Any, follow_up_id: int, now: datetime) -> None:
        """An agent takes a due call-back: the customer hears who will contact them."""
        user = query.from_user
        with self.db.session() as session:
            row = session.get(FollowUp, follow_up_id)
            if row is None or row.kind != "callback" or row.data.get("taken_by"):
                taken = row.data.get("taken_by") if row is not None else None
                answer = self.label("staff.already_taken", agent=taken) if taken else None
                await query.answer(answer or self.label("staff.unknown"), show_alert=True)
                return
            row.data = {**row.data, "taken_by": user.first_name}
            row.outcome, row.answered_at = "answered", now
            session.add(row)
            session.commit()
            ticket = session.get(Ticket, row.ticket_id) if row.ticket_id else None
        await query.answer(self.label("staff.you_have_it"))
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(reply_markup=None)
        if ticket is None:
            return
        if ticket.status == TicketStatus.WAITING:
            await self.take(bot, ticket.id or 0, user.id, user.first_name, now)
        language, chat_id = self.customer_chat(ticket)
        text = self.customer_text("utter_callback_taken", language, agent=user.first_name)
        await self.to_customer(bot, ticket, chat_id, text, response="utter_callback_taken")
        await self.to_topic(bot, ticket, self.label("staff.callback_taken", agent=user.first_name))

    def _may_move(self, ticket: Ticket, user_id: int) -> bool:
        return (
            ticket.status == TicketStatus.WAITING
            or ticket.agent_id == user_id
            or user_id in self.settings.supervisor_ids
        )

    async def _offer_transfer(self, bot: Bot, query: Any, ticket_id: int) -> None:
        """Buttons in the topic: every other member of staff, and back to the queue."""
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None or ticket.status not in OPEN_TICKET:
                await query.answer(self.label("staff.unknown"), show_alert=True)
                return
            if not self._may_move(ticket, query.from_user.id):
                await query.answer(self.label("staff.transfer_not_yours"), show_alert=True)
                return
            people: list[tuple[int, str]] = []
            # agents first, then supervisors; someone in both lists once
            for user_id in dict.fromkeys([*self.settings.agent_ids, *self.settings.supervisor_ids]):
                if user_id == ticket.agent_id or user_id in self.left:
                    continue
                agent = session.get(Agent, user_id)
                name = agent.name if agent is not None and agent.name else str(user_id)
                marks = []
                if agent is not None and not agent.available:
                    marks.append(self.label("staff.mark_away"))
                if self._full(session, user_id):
                    marks.append(self.label("staff.mark_full"))
                people.append((user_id, name + (f" ({', '.join(marks)})" if marks else "")))
        await query.answer()
        rows = [
            [InlineKeyboardButton(name, callback_data=DeskPress("xfer", ticket_id, user_id).pack())]
            for user_id, name in people
        ]
        if ticket.status == TicketStatus.ASSIGNED:
            rows.append(
                [
                    InlineKeyboardButton(
                        self.label("staff.to_queue"),
                        callback_data=DeskPress("xfer", ticket_id, 0).pack(),
                    )
                ]
            )
        await self.to_topic(
            bot,
            ticket,
            self.label("staff.transfer_to", ticket=f"#{ticket_id}"),
            markup=InlineKeyboardMarkup(rows),
        )

    def _full(self, session: Any, user_id: int) -> bool:
        if user_id in self.settings.supervisor_ids:
            return False
        return len(queue.held_by(session, user_id)) >= self.settings.agent_capacity

    async def _transfer(self, bot: Bot, query: Any, ticket_id: int, target: int) -> None:
        by = query.from_user.first_name
        now = datetime.now(UTC)
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None or ticket.status not in OPEN_TICKET or target not in self.staff | {0}:
                await query.answer(self.label("staff.unknown"), show_alert=True)
                return
            if not self._may_move(ticket, query.from_user.id):
                await query.answer(self.label("staff.transfer_not_yours"), show_alert=True)
                return
            agent = session.get(Agent, target) if target else None
            name = agent.name if agent is not None and agent.name else str(target)
            if target in self.left:
                await query.answer(self.label("staff.agent_left", agent=name), show_alert=True)
                return
            if target and agent is not None and not agent.available:
                await query.answer(self.label("staff.agent_away", agent=name), show_alert=True)
                return
            if target and self._full(session, target):
                count = len(queue.held_by(session, target))
                await query.answer(
                    self.label("staff.agent_full", agent=name, count=count), show_alert=True
                )
                return
            old = ticket.agent_name or "—"
            moved = tickets.transfer(
                session,
                ticket_id=ticket_id,
                agent_id=target or None,
                agent_name=name if target else None,
                now=now,
            )
            session.refresh(ticket)
            ref = f"#{ticket_id}"
            out = Outgoing()
            if moved and target:  # the move, its line and the customer's message together
                line = self.label("staff.transferred", ticket=ref, old=old, new=name, by=by)
                self.topic_line(out, ticket, line)
                self.customer_line(out, session, ticket, "utter_agent_transfer", agent=name)
            elif moved:
                self.topic_line(out, ticket, self.label("staff.requeued", ticket=ref, by=by))
                self.customer_line(out, session, ticket, "utter_agent_requeue")
            out.write(session)
            session.commit()
        if not moved:
            await query.answer(self.label("staff.unknown"), show_alert=True)
            return
        self.deliver(bot, out)
        await query.answer(self.label("staff.sent"))
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(reply_markup=None)
        if target:
            await self.tell_staff(
                bot, target, self.label("staff.transferred_to_you", ticket=ref, by=by), ticket
            )
