"""The outbox on its own: rows in a database, a real python-telegram-bot `Bot`, the Bot
API double reached in-process at PTB's request seam (tests/support/botapi/inprocess.py:
no socket, the same spec checks and answers). What a customer or a member of staff would
see: the messages, in order, once; and the rows' outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlmodel import col, select
from telegram import Bot

from bot.store import Conversation, Customer, Database, Message, StaffMessage
from bot.telegram.outbox import Outbox, StaffRows
from tests.support.botapi.double import TOKEN, BotApiDouble
from tests.support.botapi.inprocess import InProcessRequest

OLD_GROUP, NEW_GROUP = -777, -100777


@pytest.fixture
def seam(double: BotApiDouble) -> InProcessRequest:
    return InProcessRequest(double)


@pytest.fixture
async def bot(seam: InProcessRequest) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, request=seam) as running:
        yield running


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()  # PostgreSQL: no pooled connection left for the garbage collector


def _conversation(db: Database, user_id: int) -> int:
    with db.session() as session:
        customer = Customer(telegram_id=user_id, name="Anna", language="en")
        session.add(customer)
        session.flush()
        conversation = Conversation(customer_id=customer.id or 0, chat_id=user_id)
        session.add(conversation)
        session.commit()
        return conversation.id or 0


def _write(db: Database, conversation_id: int, texts: list[str]) -> list[int]:
    with db.session() as session:
        rows = [Message(conversation_id=conversation_id, direction="out", text=t) for t in texts]
        session.add_all(rows)
        session.commit()
        return [row.id or 0 for row in rows]


def _outcomes(db: Database, table: Any = Message) -> list[str | None]:
    with db.session() as session:
        return list(session.exec(select(table.outcome).order_by(col(table.id))))


@pytest.mark.parametrize(
    "refused",
    [
        pytest.param(True, marks=pytest.mark.flood(per_chat_rate=1.0, per_chat_burst=2.0)),
        pytest.param(False, marks=pytest.mark.flood(per_chat_rate=1.0, per_chat_burst=4.0)),
    ],
    ids=["telegram-refuses-past-2", "telegram-takes-4"],
)
async def test_a_run_of_messages_to_one_chat_arrives_complete_and_in_order(
    double: BotApiDouble, bot: Bot, db: Database, refused: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Eight messages for one customer at once (a backlog after an outage). The lane
    sends three at once, then about one a second. Where Telegram takes fewer at once
    (two), it answers 429 and the lane waits each retry_after out and carries on; where
    it takes four (one of slack: requests sent a second apart may arrive closer),
    it never has to refuse one. Either way nothing is skipped, nothing repeated."""
    double.add_user(601, "Anna")
    texts = [f"part {n} of the answer" for n in range(1, 9)]
    _write(db, _conversation(db, 601), texts)
    outbox = Outbox(db, None)
    outbox.start(bot)
    await double.wait_for(lambda: _outcomes(db) == ["sent"] * 8, 60, "all eight sent")
    await outbox.stop(1)
    assert [m["text"] for m in double.sent_to(601)] == texts
    assert any(code == 429 for _, code, _ in double.errors) is refused
    # the lane itself waited each 429 out (it did not stop and wait for the next sweep)
    assert "the sender stopped on an error" not in caplog.text


async def test_a_customer_who_blocked_the_bot_is_recorded_and_the_chat_goes_on(
    double: BotApiDouble, bot: Bot, db: Database
) -> None:
    double.add_user(601, "Anna")
    double.add_user(602, "Ben")
    double.block(601)
    told: list[tuple[int, str, str]] = []

    async def failed(_: Bot, row: Message, outcome: str, reason: str) -> None:
        told.append((row.conversation_id, outcome, reason))

    anna, ben = _conversation(db, 601), _conversation(db, 602)
    _write(db, anna, ["Sorry about the wait, Anna."])
    _write(db, ben, ["Hello Ben."])
    outbox = Outbox(db, None, on_failed=failed)
    outbox.start(bot)
    await double.wait_for(lambda: None not in _outcomes(db), 20, "both outcomes")
    await outbox.stop(1)
    assert _outcomes(db) == ["blocked", "sent"]
    assert told == [(anna, "blocked", "Forbidden: bot was blocked by the user")]
    assert [m["text"] for m in double.sent_to(602)] == ["Hello Ben."]
    with db.session() as session:
        assert session.exec(select(Message.delivered).order_by(col(Message.id))).all() == [
            False,
            True,
        ]


async def test_staff_messages_follow_a_group_upgraded_to_a_supergroup(
    double: BotApiDouble, bot: Bot, db: Database
) -> None:
    """Rows for a group Telegram upgraded (400 with migrate_to_chat_id) move to the
    supergroup, in order, and the rest of the bot is told the new id once."""
    double.add_group(OLD_GROUP, "Support desk", forum=False)
    double.chats[OLD_GROUP] = {"id": OLD_GROUP, "type": "group", "title": "Support desk"}
    double.migrate_group(OLD_GROUP, NEW_GROUP, announce=False)
    with db.session() as session:
        session.add_all([StaffMessage(chat_id=OLD_GROUP, text=f"alert {n}") for n in (1, 2, 3)])
        session.commit()
    moved: list[tuple[int, int]] = []
    outbox = Outbox(db, None, rows=StaffRows(), on_migrated=lambda a, b: moved.append((a, b)))
    outbox.start(bot)
    await double.wait_for(lambda: _outcomes(db, StaffMessage) == ["sent"] * 3, 20, "sent")
    await outbox.stop(1)
    assert [m["text"] for m in double.sent_to(NEW_GROUP)] == ["alert 1", "alert 2", "alert 3"]
    assert moved == [(OLD_GROUP, NEW_GROUP)]
    with db.session() as session:
        assert set(session.exec(select(StaffMessage.chat_id))) == {NEW_GROUP}


async def test_telegram_away_then_502s_the_rows_wait_and_go_once_in_order(
    double: BotApiDouble, seam: InProcessRequest, bot: Bot, db: Database
) -> None:
    """Connections refused, then Telegram's front answering 502: two customers' rows
    wait (no limit on how long) and, once it answers, each goes once, each chat in
    order; nothing is given up on."""
    double.add_user(601, "Anna")
    double.add_user(602, "Ben")
    _write(db, _conversation(db, 601), ["A1", "A2", "A3"])
    _write(db, _conversation(db, 602), ["B1", "B2"])
    seam.down = True
    outbox = Outbox(db, None)
    outbox.start(bot)
    await double.wait_for(lambda: len(seam.calls) >= 4, 20, "tries while refused")
    double.bad_gateway = True
    seam.down = False
    await double.wait_for(lambda: any(code == 502 for _, code, _ in double.errors), 20, "a 502")
    assert _outcomes(db) == [None] * 5 and double.sent_to(601) == []
    double.bad_gateway = False
    await double.wait_for(lambda: _outcomes(db) == ["sent"] * 5, 30, "all sent")
    await outbox.stop(1)
    assert [m["text"] for m in double.sent_to(601)] == ["A1", "A2", "A3"]
    assert [m["text"] for m in double.sent_to(602)] == ["B1", "B2"]


async def test_a_message_whose_answer_never_came_is_not_sent_again(
    double: BotApiDouble, bot: Bot, db: Database
) -> None:
    """Telegram read the request and the connection dropped: it may have the message,
    so it is recorded as "unconfirmed" and not sent a second time; the chat's next
    message still goes."""
    double.add_user(601, "Anna")
    double.swallow_next(601)
    _write(db, _conversation(db, 601), ["first", "second"])
    outbox = Outbox(db, None)
    outbox.start(bot)
    await double.wait_for(lambda: None not in _outcomes(db), 20, "both outcomes")
    await outbox.stop(1)
    assert _outcomes(db) == ["unconfirmed", "sent"]
    assert [m["text"] for m in double.sent_to(601)] == ["second"]
    assert [method for method, _ in double.requests].count("sendMessage") == 2
