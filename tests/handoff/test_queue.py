"""The queue: major first, then VIP tiers, then arrival; exactly one agent wins a take."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from bot.store import Conversation, Customer, Database, Ticket
from handoff import queue, tickets

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _ticket(db: Database, name: str, tier: str, priority: int, minutes: int) -> int:
    with db.session() as session:
        customer = Customer(telegram_id=abs(hash(name)) % 10**9, name=name, tier=tier)
        session.add(customer)
        session.flush()
        assert customer.id is not None
        conversation = Conversation(customer_id=customer.id, chat_id=customer.telegram_id)
        session.add(conversation)
        session.flush()
        assert conversation.id is not None
        ticket = Ticket(
            conversation_id=conversation.id,
            customer_id=customer.id,
            priority=priority,
            created_at=T0 + timedelta(minutes=minutes),
        )
        session.add(ticket)
        session.commit()
        assert ticket.id is not None
        return ticket.id


def test_major_first_then_vip_tiers_then_arrival(db: Database) -> None:
    early = _ticket(db, "early", "regular", 0, 0)
    gold = _ticket(db, "gold", "gold", 0, 5)
    late = _ticket(db, "late", "regular", 0, 10)
    major = _ticket(db, "major", "regular", 1, 15)
    diamond = _ticket(db, "diamond", "diamond", 0, 20)
    with db.session() as session:
        order = [t.id for t in queue.waiting_in_order(session)]
        assert order == [major, diamond, gold, early, late]
        assert queue.position(session, late) == 5


def _take(session: Session, **given: Any) -> bool:
    """tickets.take as the desk uses it: the caller commits."""
    won = tickets.take(session, **given)
    session.commit()
    return won


def test_two_agents_take_at_once_and_exactly_one_wins(db: Database) -> None:
    ticket = _ticket(db, "anna", "regular", 0, 0)
    with db.session() as first, db.session() as second:
        wins = [
            _take(first, ticket_id=ticket, agent_id=1, agent_name="Ada", now=T0),
            _take(second, ticket_id=ticket, agent_id=2, agent_name="Bo", now=T0),
        ]
    assert wins == [True, False]
    with db.session() as session:
        row = session.get(Ticket, ticket)
        assert row is not None and (row.status, row.agent_name) == ("assigned", "Ada")
        assert queue.position(session, ticket) == 0


def test_the_estimate_follows_recent_waits(db: Database) -> None:
    with db.session() as session:
        assert queue.estimated_wait_minutes(session, 2) == 2 * queue.DEFAULT_HANDLING_MINUTES
    for index in range(3):
        ticket = _ticket(db, f"c{index}", "regular", 0, index)
        with db.session() as session:
            _take(
                session,
                ticket_id=ticket,
                agent_id=1,
                agent_name="Ada",
                now=T0 + timedelta(minutes=index + 4),
            )
    with db.session() as session:
        assert queue.estimated_wait_minutes(session, 3) == 12


def test_a_ticket_waiting_past_the_limit_rises_above_newer_vip_tickets(db: Database) -> None:
    old = _ticket(db, "old", "regular", 0, 0)
    diamond = _ticket(db, "diamond", "diamond", 0, 25)
    major = _ticket(db, "major", "regular", 1, 10)
    urgent = _ticket(db, "urgent", "regular", 2, 28)
    limit = timedelta(minutes=30)
    with db.session() as session:
        early = T0 + timedelta(minutes=29)
        assert [t.id for t in queue.waiting_in_order(session, now=early, starve_after=limit)] == [
            urgent,
            major,
            diamond,
            old,
        ]
        # after 30 minutes the old ticket joins the major band (by arrival there), but a
        # threat of harm stays first
        late = T0 + timedelta(minutes=31)
        order = [t.id for t in queue.waiting_in_order(session, now=late, starve_after=limit)]
        assert order == [urgent, old, major, diamond]
        assert queue.position(session, old, now=late, starve_after=limit) == 2


def test_transfer_moves_an_open_ticket_and_requeue_restarts_its_waiting_clock(
    db: Database,
) -> None:
    ticket = _ticket(db, "anna", "regular", 0, 0)
    with db.session() as session:
        assert tickets.take(session, ticket_id=ticket, agent_id=1, agent_name="Ada", now=T0)
        assert tickets.transfer(session, ticket_id=ticket, agent_id=2, agent_name="Bo", now=T0)
        assert [t.id for t in queue.held_by(session, 2)] == [ticket] and not queue.held_by(
            session, 1
        )
        row = session.get(Ticket, ticket)
        assert row is not None
        row.checked_in_at = row.untaken_alert_at = T0
        session.add(row)
        session.commit()
        assert tickets.transfer(session, ticket_id=ticket, agent_id=None, agent_name=None, now=T0)
        session.refresh(row)
        assert (row.status, row.agent_id, row.checked_in_at, row.untaken_alert_at) == (
            "waiting",
            None,
            None,
            None,
        )
        assert tickets.resolve(session, ticket_id=ticket, resolution="done", now=T0)
        assert not tickets.transfer(session, ticket_id=ticket, agent_id=1, agent_name="A", now=T0)
