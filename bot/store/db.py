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
from sqlmodel import Session, SQLModel, col, func, select

from bot.store.models import Complaint, Conversation, Customer, Message, Ticket, utcnow


class Database:
    """One SQLAlchemy engine for the process; SQLite gets WAL and a busy timeout."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_all(self) -> None:
        SQLModel.metadata.create_all(self.engine)

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
        .where(Conversation.customer_id == customer_id, Conversation.status != "closed")
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
                col(Ticket.status).in_(("waiting", "assigned")),
            )
        )
    )


def habitual_window_start(now: datetime | None = None) -> datetime:
    """Complaints counted for the habitual flag: the last 90 days."""
    return (now or utcnow()) - timedelta(days=90)
