"""Tables (sqlmodel). Time stamps are timezone-aware UTC on every engine."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; SQLite keeps no zone, so one is put back on the way out."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use an aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def _when() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Customer(SQLModel, table=True):
    """A person who writes to the bot.

    tier: the domain's diamond / gold / silver / regular / at-risk.
    """

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_type=sa.BigInteger, unique=True, index=True)
    name: str = ""
    language: str = "zh"
    tier: str = "regular"
    phone: str | None = None
    variations: dict[str, Any] = _json()
    """The variation of each response last shown, so the next one differs."""
    created_at: datetime = _when()


class ConversationStatus(StrEnum):
    """`Conversation.status` (stored as its text)."""

    OPEN = "open"  # the bot is talking
    HANDED_OFF = "handed_off"  # a person has it
    CLOSED = "closed"


class Stage(StrEnum):
    """`Conversation.stage` (stored as its text): which question is open. The dialogue
    dispatches on it (`Policy._stage_<value>`, `Survey._<value>`)."""

    IDLE = "idle"  # nothing asked: a greeting, a question, the start of a complaint
    LISTENING = "listening"  # the customer is telling what happened (empathy before facts)
    SAFETY_CHECK = "safety_check"  # is anyone hurt? (a safety complaint, before anything else)
    CONFIRMING = "confirming"  # is this a complaint? (when the parse is unsure)
    CHOOSING_TYPE = "choosing_type"  # what went wrong, from buttons
    EXPECTATION = "expectation"  # what the customer wants, from buttons
    EXPECTATION_TEXT = "expectation_text"  # what the customer wants, in their words
    FACTS = "facts"  # the closed questions for the complaint type (requested_slot)
    FACT_OTHER = "fact_other"  # a fact the buttons did not cover, in the customer's words
    FACT_OPEN = "fact_open"  # an open fact asked in words (open_slot)
    SUMMARY = "summary"  # the read-back: right, or change something
    CORRECTING = "correcting"  # which part of the read-back to change
    CORRECTING_TYPE = "correcting_type"  # the complaint type, chosen again
    NOTE = "note"  # anything else to add, in words
    HANDED_OFF = "handed_off"  # a person has the case
    CLOSED = "closed"  # the conversation is over
    SURVEY_SOLVED = "survey_solved"  # after a ticket closes: is the problem solved?
    SURVEY_WHY = "survey_why"  # not solved: what is still wrong
    SURVEY_RATING = "survey_rating"  # the satisfaction score
    SURVEY_COMMENT = "survey_comment"  # a low score: what went wrong
    AFTER_SERVICE = "after_service"  # after a repair: does it work?


class TicketStatus(StrEnum):
    """`Ticket.status` (stored as its text): waiting -> assigned -> resolved; a resolved
    ticket the customer comes back to is waiting again; cancelled when the customer no
    longer wants a person (/cancel, /forget). Changes: handoff/tickets.py."""

    WAITING = "waiting"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


OPEN_TICKET = (TicketStatus.WAITING, TicketStatus.ASSIGNED)
"""A ticket someone still has to act on."""


class Priority(IntEnum):
    """`Ticket.priority` (stored as its number): the queue serves higher first."""

    NORMAL = 0
    HIGH = 1  # a major complaint (media, regulator, lawyer, repeat contact, a VIP)
    URGENT = 2  # a threat of harm, an injury


class Conversation(SQLModel, table=True):
    """One dialogue; `stage` is where the five steps stand, `slots` what is known so far.

    status: open (the bot is talking), handed_off (a person has it), closed.
    """

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    chat_id: int = Field(sa_type=sa.BigInteger, index=True)
    channel: str = "telegram"
    language: str = "zh"
    status: str = Field(default=ConversationStatus.OPEN, index=True)
    stage: str = Stage.IDLE
    slots: dict[str, Any] = _json()
    created_at: datetime = _when()
    updated_at: datetime = _when()
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    """Every message in (`direction` "in") and out ("out"), in order."""

    __table_args__ = (sa.Index("ix_message_waiting", "outcome", "direction"),)
    """The outbox's look-ups: messages out without an outcome (inbound ones have none)."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    direction: str
    text: str = ""
    payload: str | None = None
    response: str | None = None
    buttons: list[Any] = _json_list()
    parse: dict[str, Any] = _json()
    external_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    """The channel's id for the message (Telegram's message_id)."""
    delivered: bool = True
    """False when sending failed for good; kept so it can be resent, never lost."""
    send_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the request carrying it left for Telegram. Set without external_id after a
    crash: Telegram may have it, so it is not sent again (never twice)."""
    outcome: str | None = None
    """For a message out: None while it waits for the sender (bot/telegram/outbox.py),
    then "sent", or why it never will be: "blocked", "chat_not_found", "refused" (another
    permanent error), "unconfirmed" (its request left and no answer came: Telegram may
    have it, so it is not sent again), "shown" (the terminal chat printed it), "legacy"
    (written before the outbox)."""
    original_text: str | None = None
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = _when()


class Evidence(SQLModel, table=True):
    """A photo or document the customer sent to show the problem."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    complaint_id: int | None = Field(default=None, foreign_key="complaint.id", index=True)
    kind: str
    file_id: str
    caption: str = ""
    created_at: datetime = _when()


class ProcessedUpdate(SQLModel, table=True):
    """A Telegram update_id already handled: a redelivered update is skipped."""

    update_id: int = Field(sa_type=sa.BigInteger, primary_key=True)
    processed_at: datetime = _when()


class Complaint(SQLModel, table=True):
    """What went wrong and what the customer wants, with their own first words."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    complaint_type: str = "other"
    motive: str | None = None
    desired_outcome: str | None = None
    facts: dict[str, Any] = _json()
    signals: list[str] = _json_list()
    major: bool = False
    major_reasons: list[str] = _json_list()
    habitual: bool = False
    first_words: str = ""
    created_at: datetime = _when()
    updated_at: datetime = _when()


class Ticket(SQLModel, table=True):
    """A hand-off to a person. kind: complaint, inquiry, request_human, abuse, threat, error.

    status: waiting -> assigned -> resolved (reopened when the customer comes back).
    priority: 0 normal, 1 high (major complaint), 2 urgent (threat of harm, injury).
    """

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    complaint_id: int | None = Field(default=None, foreign_key="complaint.id")
    kind: str = "complaint"
    status: str = Field(default=TicketStatus.WAITING, index=True)
    priority: int = Priority.NORMAL
    supervisor_flag: bool = False
    summary: str = ""
    summary_data: dict[str, Any] = _json()
    agent_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    agent_name: str | None = None
    staff_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    topic_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    """The staff group's forum topic of this ticket (message_thread_id)."""
    card_message_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    resolution: str | None = None
    created_at: datetime = _when()
    updated_at: datetime = _when()
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_contact_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When an agent first wrote to the customer (the first-contact SLA)."""
    checked_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """The last time the waiting customer was told where they stand."""
    untaken_alert_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the supervisors were told nobody had taken it (once per wait)."""


class HeldMessage(SQLModel, table=True):
    """An agent's message held by coaching (a phrase to avoid): sent or discarded later."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    agent_id: int = Field(sa_type=sa.BigInteger)
    text: str
    phrase: str
    status: str = "held"  # held, sent, discarded
    created_at: datetime = _when()


class FollowUp(SQLModel, table=True):
    """Something due later, one row per follow-up (and one scheduler job, id `fu:<id>`).

    kind: first_contact / progress_report (SLA timers), promise (`/promise`), callback
    (booked after hours), survey, after_service.
    status: pending -> done (or cancelled).
    outcome of the last attempt: delivered, answered, no_answer, blocked, failed;
    for SLA timers met / breached; for promises kept / missed.
    agent_id / note: who promised what; reminded_at: the agent was reminded.
    data: what the customer answered (survey: solved, why, rating, comment).
    """

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    kind: str
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="pending", index=True)
    agent_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    note: str = ""
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    outcome: str | None = None
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    data: dict[str, Any] = _json()
    scheduled: bool = Field(default=False, index=True)
    """A scheduler job exists for it (rows written by any process are picked up)."""
    created_at: datetime = _when()


class Agent(SQLModel, table=True):
    """A member of staff as the bot knows them: name and whether they take new work."""

    telegram_id: int = Field(sa_type=sa.BigInteger, primary_key=True)
    name: str = ""
    available: bool = True
    updated_at: datetime = _when()


class InboundUpdate(SQLModel, table=True):
    """A Telegram update as received, written before Telegram is told "received".

    The inbox: every update is stored (webhook: before the 200; polling: before the next
    getUpdates acknowledges it), then processed in update_id order per chat. done_at is
    set when it has been handled; rows without it are picked up again after a crash.
    """

    __tablename__ = "inbound_update"

    update_id: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    chat_key: int = Field(sa_type=sa.BigInteger, index=True)
    """The chat (or user) the update belongs to: updates of one key run in order."""
    body: str
    received_at: datetime = _when()
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    attempts: int = 0
    error: str | None = None


class Lease(SQLModel, table=True):
    """A named lock held by one process until `until` (a chat being processed, the
    scheduler). Expires by itself when its holder dies."""

    name: str = Field(primary_key=True)
    holder: str
    until: datetime = Field(sa_type=UTCDateTime)


class StaffPost(SQLModel, table=True):
    """Something for a ticket's topic in the staff group: a line the customer wrote
    while a person has the case, a "reopened" note, an event (a call-back booked, a
    cancellation, a low score) — written in the customer's turn (the same transaction) —
    or a line of the desk's own (taken, transferred, closed, a promise, an SLA breach)
    and the topic's closing. Rows of a ticket are posted in id order by one process at a
    time; rows left by a stop or a crash are posted by the next sweep. At most once, as
    messages: `send_started_at` is set as the row's first request leaves, and a row so
    marked that never got its outcome is not posted again ("unconfirmed"). `outcome`:
    None while waiting, then "sent", "refused" (Telegram said no), "unconfirmed",
    "no_ticket", "failed" (a fault, in the log). Rows with an outcome are deleted after
    two days by the nightly clean-up (they may hold what customers wrote).

    kind: "line" (body: name, text, chat_id, message_id, copy), "reopened" (body: {}),
    "event" (body: the StaffEvent's fields), "note" (the desk's own line: body text and
    markup, an inline keyboard as a dict or None), "close_topic" (body: {}).
    """

    __tablename__ = "staff_post"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    kind: str
    body: dict[str, Any] = _json()
    created_at: datetime = _when()
    send_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, index=True)


class StaffMessage(SQLModel, table=True):
    """A message for a member of staff — an alert, a note, a scheduled report and its
    charts — or for the staff group (the same alert mentioning someone the bot cannot
    write to privately), written before it is sent and delivered by the outbox
    (bot/telegram/outbox.py), as messages to customers are. `outcome` as
    Message.outcome."""

    __tablename__ = "staff_message"

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=sa.BigInteger, index=True)
    thread_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    """The staff group's topic for it (None: General, or a private chat)."""
    text: str
    """HTML, ready to send."""
    markup: dict[str, Any] = _json()
    """The inline keyboard as the Bot API has it ({} for none)."""
    ticket_id: int | None = Field(default=None, index=True)
    mention: str | None = None
    """For a private message: the plain text to post in the staff group, mentioning the
    person, if Telegram will not let the bot write to them (they never pressed Start)."""
    photo: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    """A picture (a report's chart, PNG) sent with `text` as its caption; let go once
    the row has its outcome."""
    send_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, index=True)
    external_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    created_at: datetime = _when()
