"""Agents in the Telegram staff group: a topic and a summary card per ticket, Take /
Transfer / Escalate / Close, /promise, and the relay between the topic and the customer.

Only users in AGENT_IDS / SUPERVISOR_IDS may act; anyone else in the group is refused
and nothing reaches a customer from them. Without forum topics the same works by
replying to the ticket's card.

When things go wrong (docs/handoff.md): a customer who blocked the bot gets a line in
the topic instead of the message; a topic deleted by hand is replaced (a new topic, the
card again); a group upgraded to a supergroup is followed to its new id; a member of
staff who leaves the group gives their tickets back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.config import Settings, parse_duration
from bot.dialogue import Engine
from bot.html_text import escape, split_text
from bot.payloads import DeskPress
from bot.store import (
    OPEN_TICKET,
    Agent,
    Complaint,
    Conversation,
    Customer,
    Evidence,
    FollowUp,
    HeldMessage,
    StaffMessage,
    StaffPost,
    Ticket,
    TicketStatus,
)
from bot.store import Message as MessageRow
from bot.store.db import add_message
from bot.store.models import ConversationStatus, Priority, Stage
from bot.telegram.outbox import FIRST_DELAY, MAX_DELAY, Copy, Outbox, topic_gone
from bot.telegram.request import ON_SEND, LeftProbe, retry_seconds
from handoff import queue
from handoff.coaching import phrase_to_avoid
from handoff.events import StaffEvent

log = logging.getLogger(__name__)
TOPIC_NAME_LIMIT = 128
AFTER_SERVICE_OUTCOMES = ("repair", "replacement")
"""Desired outcomes after which the customer is asked whether it works now."""
EVIDENCE_SHOWN = 5
"""Photos and files shown under a card; the rest are counted (each costs group budget)."""
TICKET_TAG = re.compile(r"^#(\d+) · ")
HISTORY_LINES = 20
ROUTINE = frozenset({"utter_queue_checkin", "utter_waiting_moved_back", "utter_progress_update"})
"""Messages to a waiting customer that repeat: a topic hears once per ticket that one
of them was not delivered."""
MEMBER_RECHECK = 600.0
"""Seconds a member of staff found in the staff group (getChatMember) is not asked about
again; each question costs the group's budget of 20 requests a minute."""
GONE = (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)
T = TypeVar("T")


def _gone(member: Any) -> bool:
    """A ChatMember who is not in the group (left, removed, or restricted and outside)."""
    if member.status in GONE:
        return True
    return member.status == ChatMemberStatus.RESTRICTED and not getattr(member, "is_member", True)


async def _once_telegram_answers(call: Callable[[], Awaitable[T]]) -> T:
    """`call()` (one Bot API request), tried again while Telegram is away — refused
    connections, 5xx, a 429 past the rate limiter — every 0.5 → 4 s for as long as it
    takes, unless its request left and no answer came: Telegram may have it, so it is
    not sent twice (the error goes up, as before)."""
    delay = FIRST_DELAY
    around = ON_SEND.get()  # a row's mark (bot/telegram/lanes.py) hears of each request
    while True:
        probe = LeftProbe(around)
        token = ON_SEND.set(probe)
        try:
            return await call()
        except RetryAfter as error:
            await asyncio.sleep(retry_seconds(error.retry_after))
        except (BadRequest, Forbidden, ChatMigrated):
            raise
        except NetworkError:
            if probe.left:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
        finally:
            ON_SEND.reset(token)


@dataclass
class Outgoing:
    """What a decision of the desk says (lines for topics, messages for customers), as
    rows written in the decision's own transaction (:meth:`write`), their lanes started
    once it has committed (:meth:`StaffDesk.deliver`): a crash never leaves a ticket
    taken, moved or closed without its "Taken by", the customer's message, "Closed by"."""

    posts: list[StaffPost] = field(default_factory=list)
    chats: set[int] = field(default_factory=set)
    """Customers' chats with message rows in the transaction (added there directly)."""
    staff: list[StaffMessage] = field(default_factory=list)
    """Alerts and notes for members of staff."""

    def write(self, session: Session) -> None:
        session.add_all(self.posts)
        session.add_all(self.staff)


class StaffDesk:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.language = settings.default_language
        self.staff = set(settings.agent_ids) | set(settings.supervisor_ids)
        self.staff_chat_id = settings.staff_chat_id
        """The staff group's id: STAFF_CHAT_ID, until Telegram says it moved (migrated)."""
        self.left: set[int] = set()
        """Members of staff known (in this process) to have left the staff group."""
        self._member_checked: dict[int, float] = {}
        self._topic_locks: dict[int, asyncio.Lock] = {}
        self._told_blocked: set[int] = set()
        """Tickets whose topic heard (in this process) that the customer blocked the bot."""
        self.outbox: Outbox | None = None
        """Sends what the desk has for customers (set by the Telegram front end)."""
        self.staff_outbox: Outbox | None = None
        """Sends alerts and notes for staff (set by the Telegram front end)."""
        self.posting: Callable[[Bot, int], None] | None = None
        """Starts the lane that posts a ticket's StaffPost rows (bot/telegram/lanes.py;
        set by the Telegram front end). Without it the rows wait for a lane's sweep."""
        self.unreachable: set[int] = set()
        """Members of staff the bot cannot write to privately (they never pressed Start,
        or blocked it): their alerts mention them in the staff group instead."""

    def label(self, key: str, **values: Any) -> str:
        return self.engine.responses.label(key, self.language, **values)

    def customer_text(self, key: str, language: str, **values: Any) -> str:
        return self.engine.responses.render(key, language, {}, **values)

    # --- a new ticket --------------------------------------------------------------------

    async def post(self, bot: Bot, ticket_id: int) -> None:
        """A topic named after the ticket, the summary card its first message. Not pinned:
        Telegram allows 20 messages a minute per group, and a pin would spend a third of
        each ticket's budget (the card is the topic's first message anyway)."""
        if self.staff_chat_id is None:
            return
        with self.engine.db.session() as session:
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

    async def _open_topic(
        self, bot: Bot, ticket_id: int, note: str | None = None, *, out: Outgoing | None = None
    ) -> Ticket:
        """The ticket's topic in the staff group with its card (then the customer's photos
        and files), stored on the ticket; `note` is a line under the card; `out`: rows
        written in the same transaction as the card's place."""
        with self.engine.db.session() as session:
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
        with self.engine.db.session() as session:
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

    def type_label(self, ticket: Ticket) -> str:
        """The complaint type in the staff's language (or the ticket's kind: request_human…)."""
        kind = (ticket.summary_data or {}).get("complaint_type") or ticket.kind
        return self.engine.responses.label_or(f"type.{kind}", self.language, kind)

    def topic_name(self, ticket: Ticket, customer: Customer) -> str:
        return f"#{ticket.id} · {self.type_label(ticket)} · {customer.name}"[:TOPIC_NAME_LIMIT]

    def card(self, ticket: Ticket, customer: Customer, previous: int, photos: int) -> str:
        data = ticket.summary_data or {}
        lines = [
            self.label("staff.card_title", ticket=f"#{ticket.id}", kind=ticket.kind),
            self.label(
                "staff.card_customer",
                name=customer.name,
                lang=customer.language,
                tier=customer.tier,
                previous=previous,
            ),
        ]
        if data:
            values = self.engine.summary_values(data, self.language)
            motive = data.get("motive")
            lines.append(f"{self.label('slot.complaint_type')}: {values['type']}")
            if motive:
                lines.append(
                    f"{self.label(f'motive.{motive}')} · {self.label(f'approach.{motive}')}"
                )
            lines.append(f"{self.label('slot.desired_outcome')}: {values['outcome']}")
            lines.append(values["facts"])
            flags = [self.label(f"staff.flag_{reason}") for reason in data.get("major_reasons", [])]
            if data.get("habitual"):
                flags.append(self.label("staff.flag_habitual"))
            if "abusive" in (data.get("signals") or []):
                flags.append(self.label("staff.flag_abusive"))
            if flags:
                lines.append("⚠ " + " · ".join(flags))
            lines.append(f"“{values['words']}”")
        if photos:
            lines.append(self.label("staff.card_evidence", count=photos))
        lines.append(
            self.label(
                "staff.card_due", due=self.when(ticket.created_at + self.settings.first_contact_sla)
            )
        )
        return "\n".join(lines)

    def card_buttons(self, ticket_id: int) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        self.label(f"staff.{action}"),
                        callback_data=DeskPress(action, ticket_id).pack(),
                    )
                    for action in ("take", "transfer")
                ],
                [
                    InlineKeyboardButton(
                        self.label(f"staff.{action}"),
                        callback_data=DeskPress(action, ticket_id).pack(),
                    )
                    for action in ("escalate", "close")
                ],
            ]
        )

    async def alert_supervisors(self, bot: Bot, text: str, ticket: Ticket | None = None) -> None:
        """Each supervisor privately; those Telegram will not let the bot write to are
        mentioned in the staff group with the alert (in the ticket's topic if it has one),
        so an alert always reaches a person. Written as rows and sent by the staff outbox:
        an alert raised while Telegram is away goes when it is back. A decision that
        raises an alert writes it in its own transaction instead (supervisor_alert)."""
        out = Outgoing()
        self.supervisor_alert(out, text, ticket)
        self.write_and_deliver(bot, out)

    def supervisor_alert(self, out: Outgoing, text: str, ticket: Ticket | None = None) -> None:
        """The rows of alert_supervisors, into `out`."""
        out.staff += [
            self._private_row(supervisor, text, ticket)
            for supervisor in self.settings.supervisor_ids
            if supervisor not in self.left  # not in the staff group: no ticket news
        ]

    def write_and_deliver(self, bot: Bot, out: Outgoing) -> None:
        """`out`'s rows (lines for topics, staff messages) in a transaction of their own,
        for what no decision stands behind (a note, a report, an answer); their lanes
        started."""
        if not out.posts and not out.staff:
            return
        with self.engine.db.session() as session:
            out.write(session)
            session.commit()
        self.deliver(bot, out)

    def _private_row(
        self,
        user_id: int,
        text: str,
        ticket: Ticket | None,
        markup: InlineKeyboardMarkup | None = None,
    ) -> StaffMessage:
        return StaffMessage(
            chat_id=user_id,
            text=escape(text),
            markup=markup.to_dict() if markup is not None else {},
            ticket_id=ticket.id if ticket is not None else None,
            mention=text,
        )

    async def staff_not_delivered(
        self, bot: Bot, row: StaffMessage, outcome: str, reason: str
    ) -> None:
        """The staff outbox's word on a private message Telegram refused (never pressed
        Start, or blocked the bot): the person is mentioned in the staff group with it.
        One that left and got no answer ("unconfirmed") may have arrived: logged only."""
        if outcome == "unconfirmed":
            log.warning(
                "staff message %s to chat %s perhaps not delivered: %s", row.id, row.chat_id, reason
            )
            return
        if row.mention is None:
            log.error("staff message %s to chat %s not delivered: %s", row.id, row.chat_id, reason)
            return
        if row.chat_id not in self.unreachable:
            log.warning(
                "staff member %s cannot be messaged privately (%s): mentioned in the "
                "staff group instead; ask them to open a chat with the bot and press Start",
                row.chat_id,
                reason,
            )
        self.unreachable.add(row.chat_id)
        ticket = None
        if row.ticket_id is not None:
            with self.engine.db.session() as session:
                ticket = session.get(Ticket, row.ticket_id)
        await self._mention(bot, [row.chat_id], row.mention, ticket)

    def staff_sent(self, row: StaffMessage) -> None:
        """A private message went: the person can be reached privately (again)."""
        if row.thread_id is None and row.chat_id != self.staff_chat_id:
            self.unreachable.discard(row.chat_id)

    async def _mention(
        self, bot: Bot, user_ids: list[int], text: str, ticket: Ticket | None
    ) -> None:
        """The alert in the staff group, mentioning each of them by name (a text mention
        notifies them even without a username): in the ticket's topic, else General (the
        staff outbox posts there if the topic is gone)."""
        if self.staff_chat_id is None:
            log.error("alert for staff %s reached nobody (no staff group): %s", user_ids, text)
            return
        mentions = [
            f'<a href="tg://user?id={user_id}">{escape(await self._first_name(bot, user_id))}</a>'
            for user_id in user_ids
        ]
        html = (
            ", ".join(mentions)
            + "\n"
            + escape(text)
            + "\n\n"
            + escape(self.label("staff.press_start"))
        )
        thread = (
            ticket.topic_id
            if ticket is not None and ticket.staff_chat_id == self.staff_chat_id
            else None
        )
        mention = StaffMessage(
            chat_id=self.staff_chat_id,
            thread_id=thread,
            text=html,
            ticket_id=ticket.id if ticket is not None else None,
        )
        self.write_and_deliver(bot, Outgoing(staff=[mention]))

    async def _first_name(self, bot: Bot, user_id: int) -> str:
        if self.staff_chat_id is not None:
            with contextlib.suppress(TelegramError):
                member = await bot.get_chat_member(self.staff_chat_id, user_id)
                return member.user.first_name
        return str(user_id)

    async def check_reach(self, bot: Bot, menu: list[BotCommand]) -> None:
        """At start-up: which members of staff the bot can write to privately. Telegram
        has no chat with someone who never pressed Start (setMyCommands for that chat
        says "chat not found"), so the staff command menu doubles as the probe."""
        for user_id in sorted(self.staff):
            try:
                await bot.set_my_commands(menu, scope=BotCommandScopeChat(user_id))
            except BadRequest:
                self.unreachable.add(user_id)
                role = "supervisor" if user_id in self.settings.supervisor_ids else "agent"
                log.warning(
                    "%s %s has not pressed Start in a private chat with the bot: their "
                    "alerts are posted in the staff group, mentioning them, until they do",
                    role,
                    user_id,
                )
            else:
                self.unreachable.discard(user_id)

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
        with self.engine.db.session() as session:
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
                return await _once_telegram_answers(functools.partial(call, chat_id, topic_id))
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
            with self.engine.db.session() as session:
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
            with self.engine.db.session() as session:  # the flag and the alert together
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
        with self.engine.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                return "missing", self.label("staff.unknown")
            if self._full(session, agent_id):
                held = len(queue.held_by(session, agent_id))
                return "full", self.label("staff.you_are_full", count=held)
            won = queue.take(
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
        with self.engine.db.session() as session:
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

    # --- transfer ------------------------------------------------------------------------

    def remember(self, user_id: int, name: str) -> None:
        """Staff are known by name once they have acted (for transfer buttons, /queue)."""
        with self.engine.db.session() as session:
            agent = session.get(Agent, user_id)
            if agent is None:
                session.add(Agent(telegram_id=user_id, name=name))
            elif agent.name != name:
                agent.name = name
                session.add(agent)
            else:
                return
            session.commit()

    def _may_move(self, ticket: Ticket, user_id: int) -> bool:
        return (
            ticket.status == TicketStatus.WAITING
            or ticket.agent_id == user_id
            or user_id in self.settings.supervisor_ids
        )

    async def _offer_transfer(self, bot: Bot, query: Any, ticket_id: int) -> None:
        """Buttons in the topic: every other member of staff, and back to the queue."""
        with self.engine.db.session() as session:
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
        with self.engine.db.session() as session:
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
            moved = queue.transfer(
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

    def topic_link(self, ticket: Ticket) -> str | None:
        """t.me/c/<group>/<topic>: opens the ticket's topic from a private chat."""
        if ticket.staff_chat_id is None or ticket.topic_id is None:
            return None
        group = str(ticket.staff_chat_id).removeprefix("-100")
        return f"https://t.me/c/{group}/{ticket.topic_id}"

    async def tell_staff(
        self, bot: Bot, user_id: int, text: str, ticket: Ticket | None = None
    ) -> bool:
        """A private message to a member of staff (with a link to the ticket's topic),
        through the staff outbox (mentioned in the group if Telegram will not let the bot
        write to them); none to someone who left the staff group."""
        out = Outgoing()
        told = self.staff_note(out, user_id, text, ticket)
        self.write_and_deliver(bot, out)
        return told

    def staff_note(
        self, out: Outgoing, user_id: int, text: str, ticket: Ticket | None = None
    ) -> bool:
        """The row of tell_staff, into `out`; False for someone who left the group."""
        if user_id in self.left:
            return False
        link = self.topic_link(ticket) if ticket is not None else None
        markup = (
            InlineKeyboardMarkup([[InlineKeyboardButton(self.label("staff.open_topic"), url=link)]])
            if link
            else None
        )
        out.staff.append(self._private_row(user_id, text, ticket, markup))
        return True

    # --- members of staff who leave the group ----------------------------------------------

    async def on_member(self, change: ChatMemberUpdated, bot: Bot) -> None:
        """A chat_member update from the staff group: someone left or was removed, or
        (re)joined."""
        member = change.new_chat_member
        if _gone(member):
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
        with self.engine.db.session() as session:
            held = [ticket.id or 0 for ticket in queue.held_by(session, user_id)]
            moved = [
                ticket_id
                for ticket_id in held
                if queue.transfer(
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
            tickets = list(
                session.exec(
                    select(Ticket).where(col(Ticket.id).in_(moved)).order_by(col(Ticket.id))
                )
            )
            for ticket in tickets:  # each back in the queue with its line and message
                line = self.label("staff.member_left_requeued", agent=name, ticket=f"#{ticket.id}")
                self.topic_line(out, ticket, line)
                self.customer_line(out, session, ticket, "utter_agent_requeue")
            out.write(session)
            session.commit()
        self.deliver(bot, out)
        refs = ", ".join(f"#{ticket.id}" for ticket in tickets)
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
        if _gone(member):
            await self.member_left(bot, user.id, user.first_name)
            return False
        self.left.discard(user.id)
        self._member_checked[user.id] = time.monotonic()
        return True

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
        with self.engine.db.session() as session:
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
        with self.engine.db.session() as session:
            session.add(
                FollowUp(
                    ticket_id=ticket.id,
                    conversation_id=ticket.conversation_id,
                    kind="promise",
                    due_at=due,
                    agent_id=agent_id,
                    note=note.strip(),
                )
            )
            session.commit()
        before = self.engine.responses.duration(
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
        with self.engine.db.session() as session:
            promises = session.exec(
                select(FollowUp).where(
                    FollowUp.ticket_id == ticket.id,
                    FollowUp.kind == "promise",
                    or_(FollowUp.status == "pending", FollowUp.outcome == "missed"),
                )
            ).all()
            for promise in promises:  # a missed one stays on record as late
                late = promise.outcome == "missed"
                promise.status, promise.outcome = "done", "kept_late" if late else "kept"
                session.add(promise)
            session.commit()
            notes = [promise.note for promise in promises]
        if notes:
            kept = "; ".join(notes)
            await self.to_topic(
                bot, ticket, self.label("staff.promise_kept", agent=agent, notes=kept)
            )
        else:
            await self.to_topic(bot, ticket, self.label("staff.no_promises"))

    def when(self, moment: datetime) -> str:
        """A due time as agents read it, in the business's time zone."""
        return moment.astimezone(self.settings.tz).strftime("%m-%d %H:%M")

    async def event(self, bot: Bot, event: StaffEvent) -> None:
        """A note from the customer's side (a call-back booked, a cancellation)."""
        with self.engine.db.session() as session:
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

    async def _hold(self, bot: Bot, ticket: Ticket, agent_id: int, text: str, phrase: str) -> None:
        """Keep the message back; offer the agent a better wording, Send anyway / Discard."""
        with self.engine.db.session() as session:
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
        with self.engine.db.session() as session:
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
            with self.engine.db.session() as session:
                row = session.get(Ticket, ticket.id)
                if row is not None and row.first_contact_at is None:
                    row.first_contact_at = datetime.now(UTC)
                    session.add(row)
                    session.commit()
        language, chat_id = self.customer_chat(ticket)
        prefix = self.engine.responses.label("relay.from_agent", language, agent=agent)
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

    async def _close(self, bot: Bot, ticket: Ticket, resolution: str, agent: str) -> None:
        if not resolution:
            await self.to_topic(bot, ticket, self.label("staff.close_how"))
            return
        out = Outgoing()
        with self.engine.db.session() as session:
            done = queue.resolve(
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

    def history(self, ticket: Ticket, lines: int = HISTORY_LINES) -> str:
        """The customer's earlier tickets and the latest lines of this conversation."""
        with self.engine.db.session() as session:
            earlier = session.exec(
                select(Ticket)
                .where(Ticket.customer_id == ticket.customer_id, col(Ticket.id) != ticket.id)
                .order_by(col(Ticket.id).desc())
                .limit(10)
            ).all()
            transcript = session.exec(
                select(MessageRow)
                .where(MessageRow.conversation_id == ticket.conversation_id)
                .order_by(col(MessageRow.id).desc())
                .limit(lines)
            ).all()
        out = [self.label("staff.history_tickets", count=len(earlier))]
        for row in earlier:
            kind = (row.summary_data or {}).get("complaint_type") or row.kind
            when = row.created_at.astimezone(self.settings.tz).strftime("%Y-%m-%d")
            out.append(
                f"#{row.id} · {when} · {kind} · {row.status} · {row.resolution or ''}".rstrip(" ·")
            )
        out.append(self.label("staff.history_transcript", count=len(transcript)))
        for message in reversed(transcript):
            who = "👤" if message.direction == "in" else "🤖"
            out.append(f"{who} {message.text or message.payload or ''}"[:300])
        return "\n".join(out)

    # --- relay ---------------------------------------------------------------------------

    async def reopen(self, bot: Bot, ticket_id: int) -> None:
        """The customer came back: the topic opens again with a note, agents see it."""
        with self.engine.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.staff_chat_id is None:
            return
        if ticket.topic_id is not None:
            with contextlib.suppress(BadRequest):
                await bot.reopen_forum_topic(ticket.staff_chat_id, ticket.topic_id)
        days = max(1, self.settings.reopen_window.days)
        await self.say_in_topic(bot, ticket, self.label("staff.reopened", days=days))

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
        with self.engine.db.session() as session:
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

    def customer_name(self, ticket: Ticket) -> str:
        with self.engine.db.session() as session:
            customer = session.get(Customer, ticket.customer_id)
            return customer.name if customer is not None else "?"

    def customer_chat(self, ticket: Ticket) -> tuple[str, int]:
        with self.engine.db.session() as session:
            conversation = session.get(Conversation, ticket.conversation_id)
            assert conversation is not None
            return conversation.language, conversation.chat_id

    async def to_topic(
        self,
        bot: Bot,
        ticket: Ticket,
        text: str,
        *,
        markup: InlineKeyboardMarkup | None = None,
        close: bool = False,
    ) -> None:
        """A line for the ticket's topic ("Taken by", "Closed by", a promise, an SLA
        breach, a message the customer did not get…), written as a StaffPost row and
        posted by the ticket's lane after what is already queued for the topic (its
        card first). Telegram being away, or the bot stopping or crashing before it is
        posted, loses nothing: the lane waits Telegram out and the next sweep posts
        what is left. `close`: the topic is closed after the line (a row too, so it
        never closes before the line is in it). A decision that changes the ticket
        writes its lines in its own transaction instead (:class:`Outgoing`)."""
        out = Outgoing()
        self.topic_line(out, ticket, text, markup=markup, close=close)
        self.write_and_deliver(bot, out)

    def topic_line(
        self,
        out: Outgoing,
        ticket: Ticket,
        text: str,
        *,
        markup: InlineKeyboardMarkup | None = None,
        close: bool = False,
    ) -> None:
        """Rows for the ticket's topic, into `out` (see to_topic)."""
        if self.staff_chat_id is None or ticket.id is None:
            return
        if ticket.staff_chat_id is None and ticket.status not in OPEN_TICKET:
            return  # closed before it had a topic: there is nowhere to say it
        body = {"text": text, "markup": markup.to_dict() if markup is not None else None}
        out.posts.append(StaffPost(ticket_id=ticket.id, kind="note", body=body))
        if close:
            out.posts.append(StaffPost(ticket_id=ticket.id, kind="close_topic"))

    def customer_line(
        self,
        out: Outgoing,
        session: Session,
        ticket: Ticket,
        key: str,
        response: str | None = None,
        /,
        **values: Any,
    ) -> None:
        """The response `key` for the ticket's customer, in their language, into `out`
        as a message row of the session's transaction (recorded as `response`, default
        `key`)."""
        conversation = session.get(Conversation, ticket.conversation_id)
        assert conversation is not None
        text = self.customer_text(key, conversation.language, **values)
        add_message(
            session,
            conversation_id=ticket.conversation_id,
            direction="out",
            text=text,
            response=response or key,
        )
        out.chats.add(conversation.chat_id)

    def deliver(self, bot: Bot, out: Outgoing) -> None:
        """After the transaction that wrote `out`'s rows: their lanes start."""
        if self.posting is not None:
            for ticket_id in dict.fromkeys(post.ticket_id for post in out.posts):
                self.posting(bot, ticket_id)
        if self.outbox is not None:
            for chat_id in out.chats:
                self.outbox.kick(chat_id)
        if self.staff_outbox is not None:
            for chat_id in dict.fromkeys(row.chat_id for row in out.staff):
                self.staff_outbox.kick(chat_id)

    async def post_note(self, bot: Bot, ticket_id: int, body: dict[str, Any]) -> None:
        """A "note" row of the ticket's lane, to its topic now."""
        with self.engine.db.session() as session:
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

    async def close_topic(self, bot: Bot, ticket_id: int) -> None:
        """Close the ticket's forum topic (already closed or deleted: nothing to do)."""
        with self.engine.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.topic_id is None or ticket.staff_chat_id is None:
            return
        with contextlib.suppress(BadRequest):
            await bot.close_forum_topic(ticket.staff_chat_id, ticket.topic_id)

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
        self.engine.to_send(ticket.conversation_id, [*rows, (text, response, payload)])
        if self.outbox is not None:
            self.outbox.kick(chat_id)

    async def not_delivered(self, bot: Bot, row: MessageRow, outcome: str, reason: str) -> None:
        """The outbox's word on a message Telegram refused for good, or that left and
        never got an answer (it may not have arrived): if the customer has a ticket, its
        topic says so (a routine one once per ticket)."""
        with self.engine.db.session() as session:
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
