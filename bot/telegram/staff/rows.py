"""The staff desk's ground floor: its state, its wording, and the rows its decisions write
(lines for topics, messages for customers, notes and alerts for staff) and start sending.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import Session
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.constants import ChatMemberStatus
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
)

from bot.config import Settings
from bot.dialogue.responses import Responses
from bot.dialogue.wording import Wording
from bot.html_text import escape
from bot.store import (
    OPEN_TICKET,
    Agent,
    Conversation,
    Customer,
    Database,
    StaffMessage,
    StaffPost,
    Ticket,
)
from bot.store.db import add_message
from bot.telegram.outbox import FIRST_DELAY, MAX_DELAY, Outbox
from bot.telegram.request import ON_SEND, LeftProbe, retry_seconds

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


def member_gone(member: Any) -> bool:
    """A ChatMember who is not in the group (left, removed, or restricted and outside)."""
    if member.status in GONE:
        return True
    return member.status == ChatMemberStatus.RESTRICTED and not getattr(member, "is_member", True)


async def once_telegram_answers(call: Callable[[], Awaitable[T]]) -> T:
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


class DeskRows:
    """The desk's state and the rows it writes; the layers above add what agents do."""

    def __init__(
        self, settings: Settings, db: Database, responses: Responses, wording: Wording
    ) -> None:
        self.settings = settings
        self.db = db
        self.responses = responses
        self.wording = wording
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
        return self.responses.label(key, self.language, **values)

    def customer_text(self, key: str, language: str, **values: Any) -> str:
        return self.responses.render(key, language, {}, **values)

    def when(self, moment: datetime) -> str:
        """A due time as agents read it, in the business's time zone."""
        return moment.astimezone(self.settings.tz).strftime("%m-%d %H:%M")

    def customer_name(self, ticket: Ticket) -> str:
        with self.db.session() as session:
            customer = session.get(Customer, ticket.customer_id)
            return customer.name if customer is not None else "?"

    def customer_chat(self, ticket: Ticket) -> tuple[str, int]:
        with self.db.session() as session:
            conversation = session.get(Conversation, ticket.conversation_id)
            assert conversation is not None
            return conversation.language, conversation.chat_id

    def topic_link(self, ticket: Ticket) -> str | None:
        """t.me/c/<group>/<topic>: opens the ticket's topic from a private chat."""
        if ticket.staff_chat_id is None or ticket.topic_id is None:
            return None
        group = str(ticket.staff_chat_id).removeprefix("-100")
        return f"https://t.me/c/{group}/{ticket.topic_id}"

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

    def write_and_deliver(self, bot: Bot, out: Outgoing) -> None:
        """`out`'s rows (lines for topics, staff messages) in a transaction of their own,
        for what no decision stands behind (a note, a report, an answer); their lanes
        started."""
        if not out.posts and not out.staff:
            return
        with self.db.session() as session:
            out.write(session)
            session.commit()
        self.deliver(bot, out)

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

    def supervisor_alert(self, out: Outgoing, text: str, ticket: Ticket | None = None) -> None:
        """The rows of alert_supervisors, into `out`."""
        out.staff += [
            self._private_row(supervisor, text, ticket)
            for supervisor in self.settings.supervisor_ids
            if supervisor not in self.left  # not in the staff group: no ticket news
        ]

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

    def staff_sent(self, row: StaffMessage) -> None:
        """A private message went: the person can be reached privately (again)."""
        if row.thread_id is None and row.chat_id != self.staff_chat_id:
            self.unreachable.discard(row.chat_id)

    # --- transfer ------------------------------------------------------------------------

    def remember(self, user_id: int, name: str) -> None:
        """Staff are known by name once they have acted (for transfer buttons, /queue)."""
        with self.db.session() as session:
            agent = session.get(Agent, user_id)
            if agent is None:
                session.add(Agent(telegram_id=user_id, name=name))
            elif agent.name != name:
                agent.name = name
                session.add(agent)
            else:
                return
            session.commit()
