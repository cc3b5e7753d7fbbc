"""The staff desk on its own: the real engine writes a ticket, the desk posts it to the
staff group through a real python-telegram-bot `Bot` whose requests reach the Bot API
double in-process (tests/support/botapi/inprocess.py). What agents would see: the
topic, the card and its buttons, a topic deleted by hand replaced, and the lines for a
topic behind its card."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import col, select
from telegram import Bot

from bot.config import Settings
from bot.dialogue import Engine
from bot.nlu.model import TriageModel
from bot.store import StaffPost, Ticket
from bot.telegram.intake import Leases
from bot.telegram.lanes import StaffLanes
from bot.telegram.staff import StaffDesk
from tests.dialogue.conftest import Customer, make_engine
from tests.support.botapi.double import TOKEN, BotApiDouble
from tests.support.botapi.inprocess import InProcessRequest

GROUP = -1001999


@pytest.fixture
async def engine(settings: Settings, model: TriageModel) -> AsyncIterator[Engine]:
    staff_in_english = {"staff_chat_id": GROUP, "default_language": "en"}
    engine = make_engine(settings.model_copy(update=staff_in_english), model)
    yield engine
    await engine.close()
    engine.db.dispose()


@pytest.fixture
async def bot(double: BotApiDouble) -> AsyncIterator[Bot]:
    double.add_group(GROUP, "Support desk")
    async with Bot(TOKEN, request=InProcessRequest(double)) as running:
        yield running


async def _handed_off(engine: Engine) -> Ticket:
    anna = Customer(engine)
    await anna.say("My parcel was supposed to arrive last Monday and it still isn't here.")
    await anna.agree("Refund")
    await anna.answer_questions()
    await anna.press(anna.replies[-1].buttons[0].payload)  # yes, all correct
    with engine.db.session() as session:
        ticket = session.exec(select(Ticket)).one()
    return ticket


def _in_topic(double: BotApiDouble, thread: int) -> list[dict[str, Any]]:
    return [m for m in double.sent_to(GROUP) if m.get("message_thread_id") == thread]


def _buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [button["text"] for row in rows for button in row]


async def test_a_new_ticket_gets_a_topic_with_its_card_and_the_take_button(
    engine: Engine, double: BotApiDouble, bot: Bot
) -> None:
    ticket = await _handed_off(engine)
    desk = StaffDesk.of(engine)
    await desk.post(bot, ticket.id or 0)
    (thread, topic), *others = [(t, topic) for (chat, t), topic in double.topics.items()]
    assert others == [] and "Anna" in topic["name"]
    (card,) = _in_topic(double, thread)
    assert f"Ticket #{ticket.id}" in card["text"] and "Delivery" in card["text"]
    assert "Take" in _buttons(card)
    with engine.db.session() as session:
        row = session.get(Ticket, ticket.id)
        assert row is not None and (row.topic_id, row.card_message_id) == (
            thread,
            card["message_id"],
        )
    await desk.post(bot, ticket.id or 0)  # posted once: a second call finds the card
    assert len(double.topics) == 1 and len(_in_topic(double, thread)) == 1


async def test_a_topic_deleted_by_hand_is_replaced_with_the_card_and_the_line_goes_there(
    engine: Engine, double: BotApiDouble, bot: Bot
) -> None:
    ticket = await _handed_off(engine)
    desk = StaffDesk.of(engine)
    await desk.post(bot, ticket.id or 0)
    with engine.db.session() as session:
        posted = session.get(Ticket, ticket.id)
    assert posted is not None and posted.topic_id is not None
    deleted = posted.topic_id
    double.delete_topic(GROUP, deleted)
    await desk.say_in_topic(bot, posted, "Anna: any news?")
    ((_, thread),) = double.topics
    assert thread != deleted and posted.topic_id == thread
    card, note = _in_topic(double, thread)
    assert f"Ticket #{ticket.id}" in card["text"] and "previous topic was deleted" in card["text"]
    assert "Take" in _buttons(card)
    assert note["text"] == "Anna: any news?"
    with engine.db.session() as session:
        row = session.get(Ticket, ticket.id)
        assert row is not None and row.topic_id == thread


def _outcomes(engine: Engine) -> list[str | None]:
    with engine.db.session() as session:
        return list(session.exec(select(StaffPost.outcome).order_by(col(StaffPost.id))))


async def test_lines_for_a_topic_wait_for_its_card_then_go_once_in_order(
    engine: Engine, double: BotApiDouble, bot: Bot
) -> None:
    """StaffPost rows go through the one sender (an Outbox of TopicRows): a ticket's
    lines wait while its card is not in the group, then follow it in order, each once;
    a row nobody knows how to post is recorded as failed and the lane goes on."""
    ticket = await _handed_off(engine)
    assert ticket.id is not None
    with engine.db.session() as session:
        session.add_all(
            [
                StaffPost(ticket_id=ticket.id, kind="note", body={"text": "line 1"}),
                StaffPost(ticket_id=ticket.id, kind="no such kind", body={}),
                StaffPost(ticket_id=ticket.id, kind="note", body={"text": "line 2"}),
            ]
        )
        session.commit()
    lanes = StaffLanes(StaffDesk.of(engine), Leases(engine.db))
    lanes.start(bot)
    lanes.posts(bot, ticket.id)
    await asyncio.sleep(0.5)
    assert double.sent_to(GROUP) == [] and _outcomes(engine) == [None, None, None]
    lanes.card(bot, ticket.id)
    await double.wait_for(lambda: None not in _outcomes(engine), 20, "every line's outcome")
    await lanes.stop(1)
    assert _outcomes(engine) == ["sent", "failed", "sent"]
    ((_, thread),) = double.topics
    card, *lines = _in_topic(double, thread)
    assert f"Ticket #{ticket.id}" in card["text"]
    assert [line["text"] for line in lines] == ["line 1", "line 2"]
