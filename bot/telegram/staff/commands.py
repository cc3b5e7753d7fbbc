"""What agents type in a ticket's topic: replies to the customer, /promise, /close,
/history; and the customer-side events (cancelled, threat, major) shown in the topic.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from telegram import (
    Bot,
    Message,
)
from telegram.error import (
    BadRequest,
)

from bot.config import parse_duration
from bot.store import (
    Conversation,
    FollowUp,
    Ticket,
    TicketStatus,
)
from bot.store.models import ConversationStatus, Stage
from bot.telegram.staff.relay import Relay
from bot.telegram.staff.rows import (
    AFTER_SERVICE_OUTCOMES,
    TICKET_TAG,
    Outgoing,
)
from handoff import queue, tickets
from handoff.coaching import phrase_to_avoid
from handoff.events import StaffEvent

log = logging.getLogger(__name__)


class Commands(Relay):
    # --- messages in the staff group ---------------------------------------------------------

    async def on_message(self, message: Message, bot: Bot) -> None:
        if message.migrate_to_chat_id is not None:  # this group is a supergroup now
            self.migrated(message.chat.id, message.migrate_to_chat_id)
            return
        if message.migrate_from_chat_id is not None:  # the supergroup it became
            self.migrated(message.migrate_from_chat_id, message.chat.id)
            return
        if message.left_chat_member is not None:
            gone = message.left_chat_member
            await self.member_left(bot, gone.id, gone.first_name)
            return
        for joined in message.new_chat_members or ():
            self.left.discard(joined.id)
        user = message.from_user
        if user is None or user.is_bot:
            return
        self.left.discard(user.id)  # whoever writes in the group is in it
        replied = message.reply_to_message
        with self.db.session() as session:
            ticket = queue.ticket_for_topic(
                session,
                chat_id=message.chat.id,
                topic_id=message.message_thread_id if message.is_topic_message else None,
                reply_to=replied.message_id if replied else None,
            )
            if ticket is None and replied is not None and replied.from_user is not None:
                # Without topics, every bot line about a ticket starts "#id ·": a reply to
                # any of them (not only to the card) belongs to that ticket.
                tag = TICKET_TAG.match(replied.text or "") if replied.from_user.is_bot else None
                if tag is not None:
                    found = session.get(Ticket, int(tag.group(1)))
                    if found is not None and found.staff_chat_id == message.chat.id:
                        ticket = found
        if ticket is None:
            return
        if user.id not in self.staff:
            return  # not an agent: nothing is relayed, nothing is answered
        self.remember(user.id, user.first_name)
        text = message.text or message.caption or ""
        if text.startswith("/note"):
            return  # internal
        if text.startswith("/promise"):
            await self._promise(bot, ticket, user.id, user.first_name, text)
            return
        if text.startswith("/done"):
            await self._promises_kept(bot, ticket, user.first_name)
            return
        if text.startswith("/close"):
            await self._close(bot, ticket, text.removeprefix("/close").strip(), user.first_name)
            return
        if text.startswith("/history"):
            await self.to_topic(bot, ticket, self.history(ticket))
            return
        if ticket.status != TicketStatus.ASSIGNED or ticket.agent_id != user.id:
            await self.to_topic(bot, ticket, self.label("staff.take_first"))
            return
        phrase = phrase_to_avoid(text) if text else None
        if phrase is not None:
            await self._hold(bot, ticket, user.id, text, phrase)
            return
        await self._relay(bot, ticket, user.first_name, text, message)

    async def _promise(
        self, bot: Bot, ticket: Ticket, agent_id: int, agent: str, text: str
    ) -> None:
        """`/promise 2d send the repair date`: a due time, a reminder, a line on the ticket."""
        when, _, note = text.removeprefix("/promise").strip().partition(" ")
        try:
            delay = parse_duration(when)
        except ValueError:
            delay = None
        if delay is None or delay.total_seconds() <= 0 or not note.strip():
            await self.to_topic(bot, ticket, self.label("staff.promise_usage"))
            return
        due = datetime.now(UTC) + delay
        with self.db.session() as session:
            tickets.promise(session, ticket, agent_id=agent_id, note=note.strip(), due=due)
            session.commit()
        before = self.responses.duration(
            int(min(self.settings.promise_reminder, delay / 2).total_seconds()), self.language
        )
        await self.to_topic(
            bot,
            ticket,
            self.label(
                "staff.promise_recorded",
                agent=agent,
                note=note.strip(),
                due=self.when(due),
                before=before,
            ),
        )

    async def _promises_kept(self, bot: Bot, ticket: Ticket, agent: str) -> None:
        """`/done`: the ticket's open promises are kept (no missed-promise alert), and
        missed ones are settled late."""
        with self.db.session() as session:
            notes = tickets.keep_promises(session, ticket.id or 0)
            session.commit()
        if notes:
            kept = "; ".join(notes)
            await self.to_topic(
                bot, ticket, self.label("staff.promise_kept", agent=agent, notes=kept)
            )
        else:
            await self.to_topic(bot, ticket, self.label("staff.no_promises"))

    async def _close(self, bot: Bot, ticket: Ticket, resolution: str, agent: str) -> None:
        if not resolution:
            await self.to_topic(bot, ticket, self.label("staff.close_how"))
            return
        out = Outgoing()
        with self.db.session() as session:
            done = tickets.resolve(
                session,
                ticket_id=ticket.id or 0,
                resolution=resolution,
                now=datetime.now(UTC),
            )
            conversation = session.get(Conversation, ticket.conversation_id)
            if done and conversation is not None:
                # closed, the survey due, the customer told, "Closed by": one transaction
                conversation.status, conversation.stage = ConversationStatus.CLOSED, Stage.CLOSED
                conversation.closed_at = datetime.now(UTC)
                session.add(conversation)
                self._after_close(session, ticket)
                self.customer_line(
                    out,
                    session,
                    ticket,
                    "utter_ticket_resolved",
                    ticket=f"#{ticket.id}",
                    resolution=resolution,
                )
                self.topic_line(out, ticket, self.label("staff.closed_by", agent=agent), close=True)
                out.write(session)
            session.commit()
        if done:
            self.deliver(bot, out)

    def _after_close(self, session: Any, ticket: Ticket) -> None:
        """The work is not done when the ticket closes (shared/domain.md §5, §6): a
        satisfaction survey, and after a repair or replacement a check that it works."""
        now = datetime.now(UTC)
        outcome = (ticket.summary_data or {}).get("desired_outcome")
        kinds = [("survey", self.settings.survey_delay)]
        if outcome in AFTER_SERVICE_OUTCOMES:
            kinds.append(("after_service", self.settings.after_service_delay))
        for kind, delay in kinds:
            session.add(
                FollowUp(
                    ticket_id=ticket.id,
                    conversation_id=ticket.conversation_id,
                    kind=kind,
                    due_at=now + delay,
                )
            )

    async def event(self, bot: Bot, event: StaffEvent) -> None:
        """A note from the customer's side (a call-back booked, a cancellation)."""
        with self.db.session() as session:
            ticket = session.get(Ticket, event.ticket_id)
        if ticket is None:
            return
        if event.delete_topic:
            if ticket.topic_id is not None and ticket.staff_chat_id is not None:
                with contextlib.suppress(BadRequest):  # already deleted by someone
                    await bot.delete_forum_topic(ticket.staff_chat_id, ticket.topic_id)
            return
        text = self.label(event.key, **event.values)
        await self.say_in_topic(bot, ticket, text)
        if event.alert:
            await self.alert_supervisors(
                bot, text + ("\n\n" + self.history(ticket) if event.transcript else ""), ticket
            )
        if event.close_topic and ticket.topic_id is not None and ticket.staff_chat_id is not None:
            with contextlib.suppress(BadRequest):
                await bot.close_forum_topic(ticket.staff_chat_id, ticket.topic_id)
