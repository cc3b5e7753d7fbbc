"""What differs between SQLite and PostgreSQL, made not to matter to the bot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import col, select

from bot.store import Conversation, Customer, Database, Message


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _conversation(db: Database) -> int:
    with db.session() as session:
        customer = Customer(telegram_id=5_000_000_001, name="Anna")
        session.add(customer)
        session.flush()
        assert customer.id is not None
        conversation = Conversation(customer_id=customer.id, chat_id=-1001234567890)
        session.add(conversation)
        session.commit()
        assert conversation.id is not None
        return conversation.id


def test_a_nul_character_in_a_text_is_stored_without_failing(db: Database) -> None:
    """PostgreSQL's text cannot hold U+0000; it is dropped there (SQLite keeps it)."""
    conversation = _conversation(db)
    with db.session() as session:
        session.add(Message(conversation_id=conversation, direction="in", text="a\x00b\x07"))
        session.add_all(  # executemany
            Message(conversation_id=conversation, direction="in", text=f"{n}\x00") for n in range(3)
        )
        session.commit()
    with db.session() as session:
        texts = session.exec(select(Message.text).order_by(col(Message.id))).all()
    expected = ["a\x00b\x07", "0\x00", "1\x00", "2\x00"]
    if db.engine.dialect.name == "postgresql":
        expected = [text.replace("\x00", "") for text in expected]
    assert texts == expected


def test_times_come_back_aware_and_in_utc_on_every_backend(db: Database) -> None:
    conversation = _conversation(db)
    shanghai = timezone(timedelta(hours=8))
    written = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=shanghai)
    with db.session() as session:
        session.add(
            Message(conversation_id=conversation, direction="in", text="x", created_at=written)
        )
        session.commit()
    with db.session() as session:
        (read,) = session.exec(select(Message.created_at)).all()
    assert read == written and read.tzinfo == UTC
    with db.session() as session:  # and comparisons in SQL see the same instant
        found = session.exec(
            select(Message.id).where(Message.created_at >= written - timedelta(microseconds=1))
        ).all()
    assert len(found) == 1
