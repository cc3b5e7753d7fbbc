"""Engine set-up and the data-access functions the conversation engine uses.

Functions take the session explicitly, keyword-only, so a caller decides the
transaction: one turn of a conversation is one commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bot.store.models import (
    OPEN_TICKET,
    Complaint,
    Conversation,
    ConversationStatus,
    Customer,
    Message,
    StaffPost,
    Ticket,
    utcnow,
)

POOL_SIZE = 10
POOL_OVERFLOW = 30


def normalize_url(url: str) -> str:
    """PostgreSQL through psycopg 3: `postgres://` and `postgresql://` (which SQLAlchemy
    would hand to psycopg2) become `postgresql+psycopg://`; other URLs are unchanged."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


class Database:
    """One SQLAlchemy engine for the process; SQLite gets WAL and a busy timeout."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        # A turn holds its connection while it waits for a remote action server, so up to
        # one per chat handled at once (bot.telegram.intake.CONCURRENT_CHATS) plus the
        # scheduler's; idle ones beyond pool_size are closed (PostgreSQL: see docs/storage.md).
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if self.engine.dialect.name == "postgresql":
            sa.event.listen(self.engine, "before_cursor_execute", _strip_nul, retval=True)

    def upgrade(self, revision: str = "head") -> str | None:
        """Migrate the schema to `revision` (Alembic; an unversioned database made by the
        old create_all is adopted first); return the revision it is at."""
        from bot.store import migrate

        return migrate.upgrade(self.engine, revision)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _strip_nul(
    _connection: Any,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    _executemany: bool,
) -> tuple[str, Any]:
    """PostgreSQL's text cannot hold NUL (U+0000), which SQLite stores and anyone can type:
    it is dropped from every string sent, rather than failing the whole turn."""

    def has_nul(values: Any) -> bool:
        return any(isinstance(value, str) and "\x00" in value for value in values)

    def clean(value: Any) -> Any:
        return value.replace("\x00", "") if isinstance(value, str) else value

    def cleaned(row: Any) -> Any:
        if isinstance(row, dict):
            return (
                {key: clean(value) for key, value in row.items()} if has_nul(row.values()) else row
            )
        if isinstance(row, tuple | list) and has_nul(row):
            return type(row)(clean(value) for value in row)
        return row

    if isinstance(parameters, list) and parameters and isinstance(parameters[0], dict | tuple):
        return statement, [cleaned(row) for row in parameters]  # executemany
    return statement, cleaned(parameters)


def find_customer(session: Session, *, telegram_id: int) -> Customer | None:
    return session.exec(select(Customer).where(Customer.telegram_id == telegram_id)).first()


def get_or_create_customer(
    session: Session, *, telegram_id: int, name: str, language: str
) -> tuple[Customer, bool]:
    """The customer with this Telegram id; their name is kept up to date."""
    customer = find_customer(session, telegram_id=telegram_id)
    if customer is None:
        customer = Customer(telegram_id=telegram_id, name=name, language=language)
        session.add(customer)
        session.flush()
        return customer, True
    if name and customer.name != name:
        customer.name = name
        session.add(customer)
    return customer, False


def active_conversation(session: Session, *, customer_id: int) -> Conversation | None:
    """The customer's latest conversation that is not closed."""
    return session.exec(
        select(Conversation)
        .where(
            Conversation.customer_id == customer_id,
            Conversation.status != ConversationStatus.CLOSED,
        )
        .order_by(col(Conversation.id).desc())
    ).first()


def count_conversations(session: Session, *, customer_id: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.customer_id == customer_id)
    ).one()


def complaints_since(session: Session, *, customer_id: int, since: datetime) -> int:
    """How many complaints the customer made since a time (the habitual check)."""
    return session.exec(
        select(func.count())
        .select_from(Complaint)
        .where(Complaint.customer_id == customer_id, Complaint.created_at >= since)
    ).one()


def add_message(
    session: Session,
    *,
    conversation_id: int,
    direction: str,
    text: str,
    payload: str | None = None,
    response: str | None = None,
    buttons: list[Any] | None = None,
    parse: dict[str, Any] | None = None,
) -> Message:
    message = Message(
        conversation_id=conversation_id,
        direction=direction,
        text=text,
        payload=payload,
        response=response,
        buttons=buttons or [],
        parse=parse or {},
    )
    session.add(message)
    return message


def open_tickets(session: Session, *, conversation_id: int) -> list[Ticket]:
    return list(
        session.exec(
            select(Ticket).where(
                Ticket.conversation_id == conversation_id,
                col(Ticket.status).in_(OPEN_TICKET),
            )
        )
    )


def without_card() -> tuple[Any, ...]:
    """Where-clauses for an open ticket whose card is not in the staff group yet (the
    redelivery path, the card sweep and /metrics all ask this)."""
    return (
        col(Ticket.status).in_(OPEN_TICKET),
        col(Ticket.card_message_id).is_(None),
        col(Ticket.topic_id).is_(None),
    )


def staff_post_waiting() -> tuple[Any, ...]:
    """Where-clauses for a line for a topic still to post: no outcome, and not on its way
    (a row whose request left waits for its outcome, or for the sweep to call it
    unconfirmed). The lanes, the redelivery path and /metrics all ask this."""
    return (col(StaffPost.outcome).is_(None), col(StaffPost.send_started_at).is_(None))


def habitual_window_start(now: datetime | None = None) -> datetime:
    """Complaints counted for the habitual flag: the last 90 days."""
    return (now or utcnow()) - timedelta(days=90)
