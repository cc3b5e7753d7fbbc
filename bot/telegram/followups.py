"""What each follow-up does when it falls due (shared/domain.md §5, §6).

- first_contact: no agent wrote to the customer within FIRST_CONTACT_SLA of the
  hand-off -> the supervisors are alerted (outcome breached; else met).
- progress_report: nothing from an agent for PROGRESS_SLA while the ticket is open ->
  the agent is reminded and the customer told where things stand; the next check is
  scheduled while the ticket stays open.
- promise: due and not marked done (`/done` in the topic) -> missed: the agent and the
  supervisors are alerted. (The reminder before it is the hand-off watch's.)
- callback: the slot has come -> the agent on the ticket (or every available agent)
  is reminded with a button; pressing it tells the customer who will contact them.
- survey / after_service: a closed question to the customer (the answers are handled
  by the conversation, bot/dialogue/survey.py). No answer after NO_ANSWER_AFTER (24 h):
  one reminder, then no_answer. A customer who blocked the bot: blocked, never retried
  (one log line, and a line in the ticket's topic).
  Never in QUIET_HOURS (moved to their end), never in the middle of another
  conversation (an hour later).
- Any kind: Telegram unreachable after the sending retries -> failed, tried again a
  minute later, 3 attempts in all.

Why this module is over 400 lines: one method per kind of follow-up (about forty lines
each) and the gate and outcome bookkeeping they all share; a module per kind would hold
a method each and import the rest.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlmodel import Session, col, select
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError

from bot.dialogue.survey import yes_no
from bot.dialogue.turn import Button
from bot.followups.scheduler import Scheduler
from bot.payloads import DeskPress
from bot.store import Agent, Conversation, FollowUp, ProcessedUpdate, Ticket
from bot.store import Message as MessageRow
from bot.store.db import active_conversation, add_message
from bot.store.models import OPEN_TICKET, ConversationStatus, Stage, TicketStatus
from bot.store.privacy import expire, prune_inbox, prune_posted
from bot.telegram.staff import Outgoing, StaffDesk

log = logging.getLogger(__name__)
BUSY_RETRY = timedelta(hours=1)
INBOX_KEPT = timedelta(days=2)
"""Handled raw updates are kept this long (to look into a problem), then deleted."""
PROCESSED_KEPT = timedelta(days=30)
"""Telegram redelivers within hours; marks of handled update_ids older than this go."""
NETWORK_RETRY = timedelta(minutes=1)
ATTEMPTS = 3
IN_FLIGHT = 16
"""Follow-ups handled at the same time; more wait their turn (Telegram allows 30/s)."""
REMINDERS = 1
"""A customer who does not answer gets one reminder, then the follow-up ends."""
QUESTIONS = {
    "survey": (Stage.SURVEY_SOLVED, "utter_survey_solved"),
    "after_service": (Stage.AFTER_SERVICE, "utter_after_service"),
}


class FollowUpKinds:
    def __init__(self, desk: StaffDesk, bot: Bot, scheduler: Scheduler) -> None:
        self.desk = desk
        self.bot = bot
        self.scheduler = scheduler
        self.settings = desk.settings
        self.responses = desk.responses
        self.db = desk.db
        self._gate = asyncio.Semaphore(IN_FLIGHT)

    def sync(self) -> int:
        with self.db.session() as session:
            return self.scheduler.sync(session)

    def recover(self) -> int:
        with self.db.session() as session:
            return self.scheduler.recover(session)

    def expire_transcripts(self) -> None:
        """The nightly clean-up: handled raw updates after INBOX_KEPT (they hold what
        customers wrote), redelivery marks after PROCESSED_KEPT, and transcripts after
        RETENTION_DAYS when it is set."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            inbox = prune_inbox(session, before=now - INBOX_KEPT)
            # lines posted in topics (they may quote the customer): kept as the raw updates
            posted = prune_posted(session, before=now - INBOX_KEPT)
            marks = session.execute(
                sa_delete(ProcessedUpdate).where(
                    col(ProcessedUpdate.processed_at) < now - PROCESSED_KEPT
                )
            )
            session.commit()
        log.info(
            "clean-up: %s handled updates, %s redelivery marks, %s posted topic lines deleted",
            inbox,
            _count(marks),
            posted,
        )
        if self.settings.retention_days is None:
            return
        before = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        with self.db.session() as session:
            gone = expire(session, before=before)
        log.info(
            "retention: %s messages older than %s days deleted", gone, self.settings.retention_days
        )

    async def report(self, period: str) -> None:
        """The scheduled report, as rows for the staff outbox (sent when Telegram can
        take them, after a restart if need be)."""
        from bot.reports.send import report_rows  # matplotlib: loaded when first needed

        rows = await asyncio.to_thread(report_rows, self.settings, period, datetime.now(UTC))
        self.desk.write_and_deliver(self.bot, Outgoing(staff=rows))
        log.info(
            "%s report: %s message(s) for %s supervisor(s) queued",
            period,
            len(rows),
            len(self.settings.supervisor_ids),
        )

    async def fire(self, follow_up_id: int) -> None:
        # Many due at once (after an outage) all start together; each does database work
        # before it sends. Letting a few through at a time keeps the event loop free for
        # the sends themselves (else their replies wait and time out).
        async with self._gate:
            await self._fire(follow_up_id)

    async def _fire(self, follow_up_id: int) -> None:
        now = datetime.now(UTC)
        with self.db.session() as session:
            row = session.get(FollowUp, follow_up_id)
            if row is None or row.status != "pending":
                return
            if self.scheduler.early(row, now):
                self.scheduler.add(follow_up_id, row.due_at)
                return
            kind = row.kind
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            self._finish(follow_up_id, "unknown kind")
            return
        try:
            await handler(follow_up_id, now)
        except TelegramError as error:  # Telegram down for longer than the retries
            log.error("follow-up %s (%s): %s", follow_up_id, kind, error)
            with self.db.session() as session:
                row = session.get(FollowUp, follow_up_id)
                if row is not None and row.status == "pending":
                    errors = int(row.data.get("errors") or 0) + 1
                    row.outcome, row.data = "failed", {**row.data, "errors": errors}
                    if errors >= ATTEMPTS:  # given up on: recorded, visible in reports
                        row.status = "done"
                        session.add(row)
                        session.commit()
                    else:
                        self.scheduler.later(session, row, now + NETWORK_RETRY)

    # --- bookkeeping -------------------------------------------------------------------

    def _finish(
        self, follow_up_id: int, outcome: str, out: Outgoing | None = None, **data: Any
    ) -> None:
        """The follow-up is done with `outcome`; what it says (`out`: alerts, lines for the
        topic) is written in the same transaction and sent once it has committed, so a
        breach is never recorded without its alert, nor alerted twice."""
        with self.db.session() as session:
            row = session.get(FollowUp, follow_up_id)
            if row is None:
                return
            row.status, row.outcome = "done", outcome
            row.last_attempt_at = row.last_attempt_at or datetime.now(UTC)  # when it fired
            if data:
                row.data = {**row.data, **data}
            session.add(row)
            if out is not None:
                out.write(session)
            session.commit()
        if out is not None:
            self.desk.deliver(self.bot, out)

    def _load(self, session: Session, follow_up_id: int) -> tuple[FollowUp, Ticket | None]:
        row = session.get(FollowUp, follow_up_id)
        assert row is not None
        ticket = session.get(Ticket, row.ticket_id) if row.ticket_id else None
        return row, ticket

    def _quiet_until(self, now: datetime) -> datetime | None:
        """The end of the quiet hours if `now` is in them (customers are not messaged)."""
        quiet = self.settings.quiet
        if quiet is None:
            return None
        local = now.astimezone(self.settings.tz)
        if not quiet.contains(local.time()):
            return None
        end = datetime.combine(local.date(), quiet.end, tzinfo=local.tzinfo)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)

    # --- SLA timers --------------------------------------------------------------------

    async def _first_contact(self, follow_up_id: int, now: datetime) -> None:
        with self.db.session() as session:
            row, ticket = self._load(session, follow_up_id)
            due = row.due_at
        if ticket is None or ticket.status == TicketStatus.CANCELLED:
            self._finish(follow_up_id, "cancelled")
            return
        contacted = ticket.first_contact_at is not None and ticket.first_contact_at <= due
        if contacted or (ticket.resolved_at is not None and ticket.resolved_at <= due):
            self._finish(follow_up_id, "met")
            return
        sla = self.responses.duration(
            int(self.settings.first_contact_sla.total_seconds()), self.desk.language
        )
        text = self.desk.label("staff.sla_first_contact", ticket=f"#{ticket.id}", sla=sla)
        out = Outgoing()
        self.desk.supervisor_alert(out, text, ticket)
        self.desk.topic_line(out, ticket, text)
        self._finish(follow_up_id, "breached", out)

    async def _progress_report(self, follow_up_id: int, now: datetime) -> None:
        sla = self.settings.progress_sla
        quiet_until = self._quiet_until(now)
        with self.db.session() as session:
            row, ticket = self._load(session, follow_up_id)
            if quiet_until is not None and ticket is not None and ticket.status in OPEN_TICKET:
                self.scheduler.later(session, row, quiet_until)  # the customer may hear: morning
                return
            if ticket is None or ticket.status not in OPEN_TICKET:
                row.status, row.outcome = "done", "met"
                session.add(row)
                session.commit()
                return
            last = self._last_agent_word(session, ticket)
            progressed = last is not None and now - last < sla
            row.status, row.outcome = "done", "met" if progressed else "breached"
            session.add(row)
            follow = FollowUp(
                ticket_id=ticket.id,
                conversation_id=ticket.conversation_id,
                kind="progress_report",
                due_at=(last if progressed and last else now) + sla,
            )
            session.add(follow)
            out = Outgoing()
            if not progressed:  # the breach, the agent's reminder, the topic, the customer
                text = self.desk.label("staff.progress_due", ticket=f"#{ticket.id}")
                if ticket.agent_id is not None:
                    self.desk.staff_note(out, ticket.agent_id, text, ticket)
                self.desk.topic_line(out, ticket, text)
                if ticket.status == TicketStatus.ASSIGNED:
                    self.desk.customer_line(
                        out,
                        session,
                        ticket,
                        "utter_progress_assigned",
                        "utter_progress_update",
                        agent=ticket.agent_name or "",
                    )
                else:
                    self.desk.customer_line(
                        out, session, ticket, "utter_progress_waiting", "utter_progress_update"
                    )
                out.write(session)
            session.commit()
            self.scheduler.sync(session)
        self.desk.deliver(self.bot, out)

    def _last_agent_word(self, session: Session, ticket: Ticket) -> datetime | None:
        said = session.exec(
            select(MessageRow.created_at)
            .where(
                MessageRow.conversation_id == ticket.conversation_id,
                MessageRow.direction == "out",
                MessageRow.response == "relay",
            )
            .order_by(col(MessageRow.id).desc())
        ).first()
        moments = [m for m in (said, ticket.first_contact_at) if m is not None]
        return max(moments) if moments else None

    # --- promises and call-backs -------------------------------------------------------

    async def _promise(self, follow_up_id: int, now: datetime) -> None:
        with self.db.session() as session:
            row, ticket = self._load(session, follow_up_id)
            note, agent_id = row.note, row.agent_id
        if ticket is None or ticket.status == TicketStatus.RESOLVED:
            self._finish(follow_up_id, "kept")  # the case was closed by its due time
            return
        text = self.desk.label("staff.promise_missed", ticket=f"#{ticket.id}", note=note)
        out = Outgoing()
        if agent_id is not None:
            self.desk.staff_note(out, agent_id, text, ticket)
        self.desk.supervisor_alert(out, text, ticket)
        self.desk.topic_line(out, ticket, text)
        self._finish(follow_up_id, "missed", out)

    async def _callback(self, follow_up_id: int, now: datetime) -> None:
        with self.db.session() as session:
            row, ticket = self._load(session, follow_up_id)
            phone = row.note
            if ticket is not None and ticket.agent_id is not None:
                on_duty = [ticket.agent_id]
            else:
                away = {
                    a.telegram_id
                    for a in session.exec(select(Agent).where(col(Agent.available).is_(False)))
                }
                on_duty = [a for a in self.settings.agent_ids if a not in away]
        if ticket is None or ticket.status not in OPEN_TICKET:
            self._finish(follow_up_id, "cancelled")
            return
        name = self.desk.customer_name(ticket)
        text = self.desk.label(
            "staff.callback_due", ticket=f"#{ticket.id}", name=name, phone=phone or "—"
        )
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        self.desk.label("staff.callback_take"),
                        callback_data=DeskPress("cb", follow_up_id).pack(),
                    )
                ]
            ]
        )
        out = Outgoing()
        self.desk.topic_line(out, ticket, text, markup=markup)
        for agent in on_duty:
            self.desk.staff_note(out, agent, text, ticket)
        self._finish(follow_up_id, "reminded", out)

    # --- questions to the customer -------------------------------------------------------

    async def _survey(self, follow_up_id: int, now: datetime) -> None:
        await self._ask(follow_up_id, now)

    async def _after_service(self, follow_up_id: int, now: datetime) -> None:
        await self._ask(follow_up_id, now)

    async def _ask(self, follow_up_id: int, now: datetime) -> None:
        with self.db.session() as session:
            row, ticket = self._load(session, follow_up_id)
            if self._on_its_way(session, row):
                # The last asking left for Telegram and no answer came back (the process
                # stopped, or the request timed out): Telegram may have it. Not asked
                # twice in a row; the reminder comes as after any question.
                log.info("follow-up %s: the question may have reached the customer", row.id)
                row.outcome = "delivered"
                self.scheduler.later(session, row, now + self.settings.no_answer_after)
                return
            quiet_until = self._quiet_until(now)
            if quiet_until is not None:
                self.scheduler.later(session, row, quiet_until)
                return
            conversation = session.get(Conversation, row.conversation_id)
            assert conversation is not None
            if row.attempts > REMINDERS:  # asked, reminded, still nothing
                row.status, row.outcome = "done", "no_answer"
                if conversation.stage in (Stage.SURVEY_SOLVED, Stage.AFTER_SERVICE):
                    conversation.status, conversation.stage = (
                        ConversationStatus.CLOSED,
                        Stage.CLOSED,
                    )
                    session.add(conversation)
                session.add(row)
                session.commit()
                return
            busy = active_conversation(session, customer_id=conversation.customer_id)
            if busy is not None and busy.id != conversation.id:
                self.scheduler.later(session, row, now + BUSY_RETRY)  # not mid-complaint
                return
            stage, key = QUESTIONS[row.kind]
            conversation.status, conversation.stage = ConversationStatus.OPEN, stage
            conversation.slots = {**conversation.slots, "follow_up_id": follow_up_id}
            session.add(conversation)
            language = conversation.language
            buttons = [
                Button(self.responses.label(b["title"], language), b["payload"])
                for b in yes_no("sv" if row.kind == "survey" else "as", follow_up_id)
            ]
            ref = f"#{ticket.id}" if ticket is not None else ""
            text = self.responses.render(key, language, {}, ticket=ref)
            message = add_message(
                session,
                conversation_id=conversation.id or 0,
                direction="out",
                text=text,
                response=key,
                buttons=[{"label": b.label, "payload": b.payload} for b in buttons],
            )
            session.flush()
            row.attempts += 1
            row.last_attempt_at = now
            session.add(row)
            session.commit()
            chat_id, message_id = conversation.chat_id, message.id
        assert message_id is not None
        outbox = self.desk.outbox
        assert outbox is not None, "follow-ups run beside the Telegram front end"
        await outbox.deliver(chat_id)
        outcome = outbox.outcome(message_id)
        if outcome == "blocked":  # never retried; the topic heard it from the outbox
            self._close_question(follow_up_id, message_id, "blocked")
            return
        if outcome in ("chat_not_found", "refused"):
            log.error("follow-up %s not sent (%s)", follow_up_id, outcome)
            self._close_question(follow_up_id, message_id, "failed")
            return
        with self.db.session() as session:
            after = session.get(FollowUp, follow_up_id)
            assert after is not None
            if after.status == "pending":
                # Sent, or waiting in the outbox while Telegram is away: the question
                # goes as soon as it can, and the reminder counts from now.
                after.outcome = "delivered" if outcome is not None else "queued"
                self.scheduler.later(session, after, now + self.settings.no_answer_after)
            session.commit()

    @staticmethod
    def _on_its_way(session: Session, row: FollowUp) -> bool:
        """Whether the row's last question was leaving for Telegram when its answer was
        lost (Message.send_started_at set, no message id back)."""
        if row.attempts == 0:
            return False
        stored = session.exec(
            select(MessageRow)
            .where(
                MessageRow.conversation_id == row.conversation_id,
                MessageRow.direction == "out",
                MessageRow.response == QUESTIONS[row.kind][1],
            )
            .order_by(col(MessageRow.id).desc())
        ).first()
        if stored is None or stored.direction != "out":
            return False
        if stored.outcome is None:  # still in the outbox (Telegram away): it will go
            return True
        return (
            stored.delivered and stored.external_id is None and stored.send_started_at is not None
        )

    def _close_question(self, follow_up_id: int, message_id: int | None, outcome: str) -> None:
        """Blocked or refused: stop (no retry), and give the conversation back."""
        with self.db.session() as session:
            row = session.get(FollowUp, follow_up_id)
            assert row is not None
            row.status, row.outcome = "done", outcome
            conversation = session.get(Conversation, row.conversation_id)
            if conversation is not None:
                conversation.status, conversation.stage = ConversationStatus.CLOSED, Stage.CLOSED
                session.add(conversation)
            stored = session.get(MessageRow, message_id) if message_id else None
            if stored is not None:
                stored.delivered = False
                session.add(stored)
            session.add(row)
            session.commit()


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
