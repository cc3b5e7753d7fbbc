"""Members of staff in the group: who is in it, and a member who leaves gives their
tickets back to the queue.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlmodel import col, select
from telegram import (
    Bot,
    ChatMemberUpdated,
    User,
)
from telegram.error import (
    TelegramError,
)

from bot.store import (
    Agent,
    Ticket,
)
from bot.telegram.staff.reach import Reach
from bot.telegram.staff.rows import (
    MEMBER_RECHECK,
    Outgoing,
    member_gone,
)
from handoff import queue, tickets

log = logging.getLogger(__name__)


class Members(Reach):
    # --- members of staff who leave the group ----------------------------------------------

    async def on_member(self, change: ChatMemberUpdated, bot: Bot) -> None:
        """A chat_member update from the staff group: someone left or was removed, or
        (re)joined."""
        member = change.new_chat_member
        if member_gone(member):
            await self.member_left(bot, member.user.id, member.user.first_name)
        else:
            self.left.discard(member.user.id)

    async def member_left(self, bot: Bot, user_id: int, name: str) -> None:
        """A member of staff left the staff group (or was removed). Their tickets go back
        to the queue as with Transfer → Back to the queue (a line in each topic, the
        customer told a colleague picks it up with everything so far); they are marked
        away (no transfers, no call-backs); the supervisors get one message listing the
        tickets. Learnt once however many updates say it (chat_member, left_chat_member)."""
        if user_id not in self.staff or user_id in self.left:
            return
        self.left.add(user_id)
        self._member_checked.pop(user_id, None)
        now = datetime.now(UTC)
        out = Outgoing()
        with self.db.session() as session:
            held = [ticket.id or 0 for ticket in queue.held_by(session, user_id)]
            moved = [
                ticket_id
                for ticket_id in held
                if tickets.transfer(
                    session,
                    ticket_id=ticket_id,
                    agent_id=None,
                    agent_name=None,
                    now=now,
                )
            ]
            agent = session.get(Agent, user_id) or Agent(telegram_id=user_id, name=name)
            agent.available, agent.updated_at = False, now
            session.add(agent)
            given_back = list(
                session.exec(
                    select(Ticket).where(col(Ticket.id).in_(moved)).order_by(col(Ticket.id))
                )
            )
            for ticket in given_back:  # each back in the queue with its line and message
                line = self.label("staff.member_left_requeued", agent=name, ticket=f"#{ticket.id}")
                self.topic_line(out, ticket, line)
                self.customer_line(out, session, ticket, "utter_agent_requeue")
            out.write(session)
            session.commit()
        self.deliver(bot, out)
        refs = ", ".join(f"#{ticket.id}" for ticket in given_back)
        log.warning(
            "staff member %s (%s) left the staff group; tickets back in the queue: %s",
            name,
            user_id,
            refs or "none",
        )
        if refs:
            text = self.label("staff.member_left", agent=name, tickets=refs)
        else:
            text = self.label("staff.member_left_none", agent=name)
        await self.alert_supervisors(bot, text)

    async def is_member(self, bot: Bot, user: User) -> bool:
        """Whether a member of staff is in the staff group, for their private commands:
        Telegram is asked (getChatMember) at most every MEMBER_RECHECK per person, and
        always about someone known to have left (they may be back). Found gone: handled
        as if they left now."""
        if self.staff_chat_id is None:
            return True
        checked = self._member_checked.get(user.id)
        recent = checked is not None and time.monotonic() - checked < MEMBER_RECHECK
        if recent and user.id not in self.left:
            return True
        try:
            member = await self._in_group(
                bot, None, lambda chat_id, _: bot.get_chat_member(chat_id, user.id)
            )
        except TelegramError as error:  # not known: what the group's updates said
            log.warning("membership of %s in the staff group not known: %s", user.id, error)
            return user.id not in self.left
        if member_gone(member):
            await self.member_left(bot, user.id, user.first_name)
            return False
        self.left.discard(user.id)
        self._member_checked[user.id] = time.monotonic()
        return True
