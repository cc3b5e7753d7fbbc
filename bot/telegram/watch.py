"""While customers wait: check-ins, an alert when nobody takes a ticket, promise reminders.

Every `HANDOFF_TICK` the watch looks at the database (the state lives there, so a
restart continues where it was):

- a waiting customer hears where they stand every `CHECKIN_INTERVAL` (never silence,
  shared/domain.md §5), but only while the desk is open and outside `QUIET_HOURS`;
- a ticket nobody has taken `UNTAKEN_ALERT` after it arrived (or after the desk
  opened) alerts the supervisors, once per wait;
- an agent's `/promise` reminds them `PROMISE_REMINDER` before it falls due (or half
  way, for short promises), privately and in the ticket's topic.

One process runs the watch (the bot); the follow-ups issue moves these timers to the
persistent scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select
from telegram import Bot

from bot.store import Conversation, FollowUp, Ticket
from bot.telegram.staff import Outgoing, StaffDesk
from handoff import queue

log = logging.getLogger(__name__)


@dataclass
class _Checkin:
    ticket: Ticket
    place: int
    minutes: int
    was: int | None = None
    """The place the customer was last told, when it was better than this one."""


def _told_place(session: Session, ticket: Ticket, place: int) -> int | None:
    """The place the customer heard last (the hand-off, "how long?", a check-in) if it
    was better than `place`; the conversation now remembers `place`."""
    conversation = session.get(Conversation, ticket.conversation_id)
    if conversation is None:
        return None
    told = int(conversation.slots.get("told_place") or 0)
    conversation.slots = {**conversation.slots, "told_place": place}
    session.add(conversation)
    return told if 0 < told < place else None


class WaitingWatch:
    def __init__(self, desk: StaffDesk) -> None:
        self.desk = desk
        self.settings = desk.settings
        self.db = desk.db

    async def tick(self, bot: Bot, now: datetime) -> None:
        await self._waiting(bot, now)
        await self._promises(bot, now)

    def _open_since(self, now: datetime) -> datetime | None:
        """None when the desk is closed or in quiet hours; else since when it is open."""
        local = now.astimezone(self.settings.tz)
        quiet = self.settings.quiet
        if quiet is not None and quiet.contains(local.time()):
            return None
        hours = self.settings.hours
        if hours is None:
            return datetime.min.replace(tzinfo=UTC)
        if not hours.is_open(local):
            return None
        return datetime.combine(local.date(), hours.opens, tzinfo=local.tzinfo)

    async def _waiting(self, bot: Bot, now: datetime) -> None:
        opened = self._open_since(now)
        if opened is None:
            return
        settings = self.settings
        checkins: list[_Checkin] = []
        alerts: list[tuple[Ticket, int]] = []
        with self.db.session() as session:
            waiting = queue.waiting_in_order(
                session, now=now, starve_after=settings.starvation_limit
            )
            for place, ticket in enumerate(waiting, start=1):
                start = max(ticket.created_at, opened)
                last = max(ticket.checked_in_at or start, opened)
                if now - last >= settings.checkin_interval:
                    minutes = queue.estimated_wait_minutes(session, place)
                    was = _told_place(session, ticket, place)
                    checkins.append(_Checkin(ticket, place, minutes, was))
                    ticket.checked_in_at = now
                if ticket.untaken_alert_at is None and now - start >= settings.untaken_alert:
                    alerts.append((ticket, int((now - ticket.created_at).total_seconds() // 60)))
                    ticket.untaken_alert_at = now
                session.add(ticket)
            # The marks, the check-ins and the alerts in one transaction: a crash never
            # skips one nor sends one twice
            out = Outgoing()
            for item in checkins:
                conversation = session.get(Conversation, item.ticket.conversation_id)
                language = conversation.language if conversation else self.desk.language
                wait = self.desk.responses.duration(60 * item.minutes, language)
                # A place that moved back is explained: urgent cases go first (§5).
                response = "utter_waiting_moved_back" if item.was else "utter_queue_checkin"
                self.desk.customer_line(
                    out, session, item.ticket, response, place=item.place, wait=wait, was=item.was
                )
            for ticket, minutes in alerts:
                text = self.desk.label(
                    "staff.untaken_alert",
                    ticket=f"#{ticket.id}",
                    minutes=minutes,
                    waiting=len(waiting),
                )
                self.desk.supervisor_alert(out, text, ticket)
            out.write(session)
            session.commit()
        self.desk.deliver(bot, out)

    async def _promises(self, bot: Bot, now: datetime) -> None:
        lead = self.settings.promise_reminder
        due: list[tuple[FollowUp, Ticket]] = []
        with self.db.session() as session:
            rows = session.exec(
                select(FollowUp, Ticket)
                .join(Ticket, col(Ticket.id) == FollowUp.ticket_id)
                .where(
                    FollowUp.kind == "promise",
                    FollowUp.status == "pending",
                    col(FollowUp.reminded_at).is_(None),
                    col(FollowUp.due_at) <= now + lead,
                )
            ).all()
            for promise, ticket in rows:
                if now < promise.due_at - min(lead, (promise.due_at - promise.created_at) / 2):
                    continue
                promise.reminded_at = now
                session.add(promise)
                due.append((promise, ticket))
            session.commit()
            for promise, ticket in due:
                session.refresh(promise)
                session.refresh(ticket)
        for promise, ticket in due:
            text = self.desk.label(
                "staff.promise_reminder",
                ticket=f"#{ticket.id}",
                note=promise.note,
                due=self.desk.when(promise.due_at),
            )
            if promise.agent_id is not None:
                await self.desk.tell_staff(bot, promise.agent_id, text, ticket)
            await self.desk.to_topic(bot, ticket, text)
