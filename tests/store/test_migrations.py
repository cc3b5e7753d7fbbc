"""Migrations: head is exactly the models; old databases upgrade with their rows intact.

Every test runs on the suite's backend (SQLite, or PostgreSQL with TEST_DATABASE_URL).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import SQLModel, col, select

from bot.store import Complaint, Conversation, Customer, Database, FollowUp, Message, Ticket
from bot.store.db import normalize_url
from bot.store.migrate import (
    MigrationError,
    context_options,
    current,
    detect_revision,
    head_revision,
)
from tests.conftest import run_cli

T0 = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
CHAT = -1001234567890  # a supergroup's id: more than 32 bits
USER = 7_123_456_789  # Telegram user ids have passed 2**32 too


@pytest.fixture
def db(empty_database_url: str) -> Any:
    database = Database(empty_database_url)
    yield database
    database.dispose()


def _reflect(connection: sa.Connection) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(connection)
    return metadata


def _drop_version_table(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")


def _seed_first_schema(db: Database) -> dict[str, int]:
    """Representative rows written as revision 0001's tables hold them (no models: those
    have today's columns). Returns the ids."""
    with db.engine.begin() as connection:
        tables = _reflect(connection).tables

        def insert(table: str, /, **values: Any) -> int:
            result = connection.execute(tables[table].insert().values(**values))
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

        customer = insert(
            "customer",
            telegram_id=USER,
            name="Anna",
            language="en",
            tier="gold",
            phone=None,
            variations={"utter_greet": 2},
            created_at=T0,
        )
        conversation = insert(
            "conversation",
            customer_id=customer,
            chat_id=CHAT,
            channel="telegram",
            language="en",
            status="handed_off",
            stage="confirm",
            slots={"order_id": "SO20241105123", "amount": 45.9},
            created_at=T0,
            updated_at=T0,
            closed_at=None,
        )
        message = insert(
            "message",
            conversation_id=conversation,
            direction="in",
            text="my parcel never arrived",
            payload=None,
            response=None,
            buttons=[],
            parse={"intent": "complaint"},
            external_id=4_000_000_001,
            delivered=True,
            original_text=None,
            edited_at=None,
            created_at=T0,
        )
        reply = insert(
            "message",
            conversation_id=conversation,
            direction="out",
            text="Sorry to hear that.",
            payload=None,
            response="utter_sorry",
            buttons=[[{"label": "Refund", "payload": "/refund"}]],
            parse={},
            external_id=None,
            delivered=False,
            original_text=None,
            edited_at=None,
            created_at=T0,
        )
        complaint = insert(
            "complaint",
            conversation_id=conversation,
            customer_id=customer,
            complaint_type="delivery",
            motive="refund",
            desired_outcome="money back",
            facts={"amount": 45.9},
            signals=["angry"],
            major=False,
            major_reasons=[],
            habitual=False,
            first_words="my parcel never arrived",
            created_at=T0,
            updated_at=T0,
        )
        ticket = insert(
            "ticket",
            conversation_id=conversation,
            customer_id=customer,
            complaint_id=complaint,
            kind="complaint",
            status="assigned",
            priority=1,
            supervisor_flag=False,
            summary="Parcel lost",
            summary_data={"facts": {"amount": 45.9}},
            agent_id=USER + 1,
            agent_name="Ada",
            staff_chat_id=CHAT,
            topic_id=77,
            card_message_id=88,
            resolution=None,
            created_at=T0,
            updated_at=T0,
            assigned_at=T0,
            resolved_at=None,
            checked_in_at=None,
            untaken_alert_at=None,
        )
        followup = insert(
            "followup",
            ticket_id=ticket,
            conversation_id=conversation,
            kind="promise",
            due_at=T0.replace(hour=12),
            status="pending",
            agent_id=USER + 1,
            note="call the courier",
            reminded_at=None,
            created_at=T0,
        )
        insert("agent", telegram_id=USER + 1, name="Ada", available=True, updated_at=T0)
    return {
        "customer": customer,
        "conversation": conversation,
        "message": message,
        "reply": reply,
        "complaint": complaint,
        "ticket": ticket,
        "followup": followup,
    }


def _check_rows(db: Database, ids: dict[str, int]) -> None:
    """The seeded rows, read through today's models."""
    with db.session() as session:
        customer = session.get(Customer, ids["customer"])
        assert customer is not None
        assert (customer.telegram_id, customer.name, customer.tier) == (USER, "Anna", "gold")
        assert customer.variations == {"utter_greet": 2}
        assert customer.created_at == T0
        conversation = session.get(Conversation, ids["conversation"])
        assert conversation is not None
        assert conversation.chat_id == CHAT
        assert conversation.slots == {"order_id": "SO20241105123", "amount": 45.9}
        assert conversation.status == "handed_off"
        messages = session.exec(
            select(Message)
            .where(Message.conversation_id == ids["conversation"])
            .order_by(col(Message.id))
        ).all()
        assert [m.id for m in messages] == [ids["message"], ids["reply"]]
        assert messages[0].external_id == 4_000_000_001
        assert messages[0].parse == {"intent": "complaint"}
        assert messages[1].buttons == [[{"label": "Refund", "payload": "/refund"}]]
        assert messages[1].delivered is False
        complaint = session.get(Complaint, ids["complaint"])
        assert complaint is not None
        assert complaint.facts == {"amount": 45.9} and complaint.signals == ["angry"]
        ticket = session.get(Ticket, ids["ticket"])
        assert ticket is not None
        assert (ticket.staff_chat_id, ticket.agent_id, ticket.status) == (
            CHAT,
            USER + 1,
            "assigned",
        )
        assert ticket.assigned_at == T0
        assert ticket.first_contact_at is None  # new in 0002
        followup = session.get(FollowUp, ids["followup"])
        assert followup is not None
        assert (followup.kind, followup.note, followup.status) == (
            "promise",
            "call the courier",
            "pending",
        )
        assert followup.due_at == T0.replace(hour=12)
        # new in 0002, with the models' defaults
        assert followup.attempts == 0
        assert followup.outcome is None
        assert followup.last_attempt_at is None and followup.answered_at is None
        assert followup.data == {}
        assert followup.scheduled is False


def _schema_diff(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=context_options(connection))
        return list(compare_metadata(context, SQLModel.metadata))


def test_head_is_exactly_the_models(db: Database) -> None:
    assert db.upgrade() == head_revision()
    assert _schema_diff(db) == []
    # the scheduler's job store shares the database; its table is not ours to migrate
    store = SQLAlchemyJobStore(engine=db.engine)
    store.start(BackgroundScheduler(), "default")
    assert "apscheduler_jobs" in sa.inspect(db.engine).get_table_names()
    assert _schema_diff(db) == []


def test_upgrade_is_idempotent(db: Database) -> None:
    assert db.upgrade() == head_revision()
    assert db.upgrade() == head_revision()
    assert current(db.engine) == head_revision()


def test_rows_of_the_first_schema_survive_the_upgrade_to_head(db: Database) -> None:
    assert db.upgrade("0001") == "0001"
    ids = _seed_first_schema(db)
    assert db.upgrade() == head_revision()
    _check_rows(db, ids)
    assert _schema_diff(db) == []
    # and the upgraded tables take new rows as usual
    with db.session() as session:
        session.add(
            FollowUp(conversation_id=ids["conversation"], kind="survey", due_at=T0, data={"a": 1})
        )
        session.commit()


def test_a_database_made_by_the_first_create_all_is_adopted(db: Database) -> None:
    """Before migrations, start-up ran create_all: no alembic_version. Those tables are
    revision 0001's (0001 was generated from the models of then)."""
    db.upgrade("0001")
    ids = _seed_first_schema(db)
    _drop_version_table(db)
    assert current(db.engine) is None
    with db.engine.connect() as connection:
        assert detect_revision(connection) == "0001"
    assert db.upgrade() == head_revision()
    _check_rows(db, ids)
    assert _schema_diff(db) == []


def test_a_database_made_by_the_last_create_all_is_adopted_as_0002(db: Database) -> None:
    """The last create_all (before migrations) made 0002's tables: 0002 was written from
    the models of then, and the test of head against the models keeps that honest."""
    db.upgrade("0001")
    ids = _seed_first_schema(db)
    db.upgrade("0002")
    _drop_version_table(db)
    with db.engine.connect() as connection:
        assert detect_revision(connection) == "0002"
    assert db.upgrade() == head_revision()
    with db.engine.connect() as connection:
        history = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert history == [(head_revision(),)]
    with db.session() as session:
        assert session.exec(select(Customer.name)).all() == ["Anna"]
    _check_rows(db, ids)
    assert _schema_diff(db) == []


def test_a_database_between_the_two_revisions_gets_only_the_missing_columns(
    db: Database,
) -> None:
    """create_all at a0407cd: ticket.first_contact_at and some follow-up columns, but not
    followup.scheduled (fc8c7ed). Adopted as 0001; 0002 adds what is missing."""
    db.upgrade("0001")
    ids = _seed_first_schema(db)
    with db.engine.begin() as connection:
        for statement in (
            "ALTER TABLE ticket ADD COLUMN first_contact_at TIMESTAMP",
            "ALTER TABLE followup ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE followup ADD COLUMN outcome VARCHAR",
        ):
            if connection.dialect.name == "postgresql":
                statement = statement.replace("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("DROP TABLE alembic_version")
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE followup ALTER COLUMN attempts DROP DEFAULT")
    assert db.upgrade() == head_revision()
    _check_rows(db, ids)
    if db.engine.dialect.name == "postgresql":  # SQLite cannot drop a default in place
        assert _schema_diff(db) == []


def test_a_database_with_only_some_of_the_tables_is_refused(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY)")
    with pytest.raises(MigrationError, match="predates the first migration"):
        db.upgrade()


def test_telegram_ids_beyond_32_bits_fit_every_column_that_holds_them(db: Database) -> None:
    db.upgrade()
    held = {"telegram_id", "chat_id", "external_id", "update_id", "agent_id"}
    held |= {"staff_chat_id", "topic_id", "card_message_id", "chat_key"}
    columns = [
        (table.name, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.name in held
    ]
    assert len(columns) >= 12
    with db.engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table, name in columns:
            (reflected,) = [c for c in inspector.get_columns(table) if c["name"] == name]
            assert isinstance(reflected["type"], sa.BigInteger), (table, name, reflected["type"])
    with db.session() as session:
        customer = Customer(telegram_id=USER, name="Anna")
        session.add(customer)
        session.flush()
        assert customer.id is not None
        session.add(Conversation(customer_id=customer.id, chat_id=CHAT))
        session.commit()
    with db.session() as session:
        assert session.exec(select(Conversation.chat_id)).one() == CHAT
        assert session.exec(select(Customer.telegram_id)).one() == USER


def test_migrate_command_upgrades_and_prints_the_revision(empty_database_url: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELEGRAM_")}
    env["DATABASE_URL"] = empty_database_url
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"database at revision {head_revision()}\n"
    again = run_cli("migrate", env=env)
    assert again.stdout == first.stdout


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgresql_urls_use_psycopg_3(given: str, used: str) -> None:
    assert normalize_url(given) == used
