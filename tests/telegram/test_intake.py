"""The inbox and the leases, on the test's database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.store import Conversation, Customer, Database, StaffPost, Ticket
from bot.store.models import InboundUpdate, utcnow
from bot.store.privacy import forget, prune_posted
from bot.telegram.intake import Dispatcher, Inbox, Leases, chat_key


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def message(update_id: int, chat: int, text: str) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "chat": {"id": chat}, "text": text},
    }


def test_chat_key_of_each_kind_of_update() -> None:
    assert chat_key(message(1, 42, "hi")) == 42
    press = {"update_id": 2, "callback_query": {"from": {"id": 7}, "message": {"chat": {"id": -5}}}}
    assert chat_key(press) == -5
    assert chat_key({"update_id": 3, "inline_query": {"from": {"id": 9}}}) == 9
    assert chat_key({"update_id": 4, "something_new": {"x": 1}}) == 0


def test_stored_once_handed_out_in_order_per_chat_and_pruned(db: Database) -> None:
    inbox = Inbox(db)
    assert inbox.store([message(12, 1, "b"), message(11, 1, "a"), message(13, 2, "c")]) == [1, 1, 2]
    assert inbox.store([message(11, 1, "a again")]) == [1]  # Telegram sent it twice
    assert [row.update_id for row in inbox.pending(1)] == [11, 12]
    assert inbox.count_pending() == 3
    assert inbox.pending_keys() == [1, 2]
    inbox.done(11)
    assert [row.update_id for row in inbox.pending(1)] == [12]
    with db.session() as session:
        assert session.get(InboundUpdate, 11).body.count('"a"') == 1  # type: ignore[union-attr]
    assert inbox.failed(12, "boom") == 1 and inbox.failed(12, "boom") == 2
    assert inbox.prune(utcnow() + timedelta(seconds=1)) == 1  # only the handled one
    assert sorted(row.update_id for row in inbox.pending(1) + inbox.pending(2)) == [12, 13]


def test_posted_topic_lines_are_pruned_and_waiting_ones_kept(db: Database) -> None:
    """The nightly clean-up: lines for topics with an outcome, older than the cut-off,
    go (they may quote the customer); a line still waiting stays, however old."""
    with db.session() as session:
        customer = Customer(telegram_id=601, name="Anna")
        session.add(customer)
        session.flush()
        conversation = Conversation(customer_id=customer.id or 0, chat_id=601)
        session.add(conversation)
        session.flush()
        ticket = Ticket(customer_id=customer.id or 0, conversation_id=conversation.id or 0)
        session.add(ticket)
        session.flush()
        old = utcnow() - timedelta(days=3)
        for outcome, created in (
            ("sent", old),
            (None, old),
            ("unconfirmed", old),
            ("sent", utcnow()),
        ):
            body = {"text": f"{outcome} {created:%d}"}
            session.add(
                StaffPost(
                    ticket_id=ticket.id or 0,
                    kind="note",
                    body=body,
                    outcome=outcome,
                    created_at=created,
                )
            )
        session.commit()
    with db.session() as session:
        assert prune_posted(session, before=utcnow() - timedelta(days=2)) == 2
        session.commit()
        left = session.exec(select(StaffPost.outcome).order_by(col(StaffPost.id))).all()
    assert left == [None, "sent"]


def test_forget_deletes_the_customers_raw_updates(db: Database) -> None:
    inbox = Inbox(db)
    inbox.store([message(21, 555, "my phone is 13800138000"), message(22, 777, "other")])
    inbox.done(21)
    inbox.done(22)
    with db.session() as session:
        person = Customer(telegram_id=555, name="Anna")
        session.add(person)
        session.flush()
        forget(session, person)
        session.commit()
        left = [row.update_id for row in session.exec(select(InboundUpdate))]
    assert left == [22]


def test_a_lease_is_held_by_one_until_released_expired_or_its_holder_is_gone(
    db: Database,
) -> None:
    first, second = Leases(db, "host-a:1"), Leases(db, "host-b:2")
    assert first.acquire("chat:1") and not second.acquire("chat:1")
    assert first.acquire("chat:1"), "the holder renews"
    first.release("chat:1")
    assert second.acquire("chat:1", timedelta(seconds=-1))  # held, but already expired
    assert first.acquire("chat:1")
    # a holder on this machine whose process no longer exists (kill -9)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = Leases(db, f"{socket.gethostname()}:{gone.pid}")
    assert dead.acquire("scheduler")
    assert Leases(db).acquire("scheduler"), "taken over at once"


async def test_the_dispatcher_keeps_each_chats_order_and_retries_later(db: Database) -> None:
    inbox = Inbox(db)
    handled: list[int] = []
    refusals = {32: 1}  # update 32 fails once (the database was away), then works

    async def handle(row: InboundUpdate) -> bool:
        if refusals.get(row.update_id):
            refusals[row.update_id] -= 1
            return False
        await asyncio.sleep(0.01 if row.chat_key == 1 else 0)
        handled.append(row.update_id)
        inbox.done(row.update_id)
        return True

    dispatcher = Dispatcher(inbox, handle)
    keys = inbox.store([message(31, 1, "a"), message(32, 1, "b"), message(41, 2, "x")])
    for key in keys:
        dispatcher.notify(key)
    inbox.store([message(33, 1, "c")])
    dispatcher.notify(1)
    dispatcher.start()
    for _ in range(300):
        if inbox.count_pending() == 0:
            break
        await asyncio.sleep(0.02)
    await dispatcher.stop()
    assert [u for u in handled if u < 40] == [31, 32, 33] and 41 in handled
