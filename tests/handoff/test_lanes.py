"""The staff group never holds up a customer (bot/telegram/lanes.py), end to end.

The double answers every request about the staff group only after 4 seconds, as
Telegram under load, or as the bot itself when it waits for the group's 20 messages a
minute. The customer's conversation goes on meanwhile; the ticket's card and what the
customer adds reach the topic in order; and a card still waiting when the bot is killed
is posted by the next run."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, func, select

from bot.store import Message
from bot.store.models import InboundUpdate
from tests.botapi.double import BotApiDouble
from tests.handoff.helpers import BILLING, answer_until, card_of, ticket_of
from tests.telegram.conftest import STAFF_CHAT, BotProcess, texts

pytestmark = [pytest.mark.staff, pytest.mark.flood(group_per_minute=600)]
SLOW = 4.0
"""Seconds the double takes over each staff-group request (under the bot's 5 s timeout)."""


async def _read_back(customers: Any) -> Any:
    """Anna's billing complaint up to the read-back's "Yes, all correct"."""
    anna = customers(601, "Anna", "en")
    await anna.say(BILLING)
    await anna.tap("Yes")
    await answer_until(anna, "Yes, all correct", "bought it online last month")
    return anna


def _responses(customer: Any) -> list[str]:
    """The responses the bot has sent the customer, as stored, in order."""
    with customer.db.session() as session:
        rows = session.exec(
            select(Message.response)
            .where(Message.direction == "out", col(Message.external_id).is_not(None))
            .order_by(col(Message.id))
        ).all()
    return [row or "" for row in rows]


async def test_a_slow_staff_group_does_not_hold_up_the_customer(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna = await _read_back(customers)
    double.slow(STAFF_CHAT, SLOW)
    handed = await anna.tap("Yes, all correct")
    assert handed, "the hand-off message"
    # Anna adds something at once: answered while her card is still on its way
    added = await anna.say("the bank sent me a letter about it")
    assert len(added) == 1 and _responses(anna)[-1] == "utter_handoff_waiting"
    assert card_of(double, "Anna") is None, "the customer waited for the staff group"
    # the topic gets the card first, then her line
    await double.wait_for(
        lambda: "sent me a letter" in texts(double.sent_to(STAFF_CHAT)), 60, "her line"
    )
    card = card_of(double, "Anna")
    assert card is not None
    thread = card["message_thread_id"]
    in_topic = [m for m in double.sent_to(STAFF_CHAT) if m.get("message_thread_id") == thread]
    assert in_topic[0]["message_id"] == card["message_id"]
    assert in_topic[-1]["text"] == "👤 Anna: the bank sent me a letter about it"
    ticket = ticket_of(anna)
    assert (ticket.topic_id, ticket.card_message_id) == (thread, card["message_id"])


@pytest.mark.staff(HANDOFF_TICK="0.5s")
async def test_a_card_still_waiting_at_a_crash_is_posted_by_the_next_run(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna = await _read_back(customers)
    double.slow(STAFF_CHAT, 30.0)  # nothing reaches the group before the kill
    await anna.tap("Yes, all correct")

    def unhandled() -> int:
        with anna.db.session() as session:
            return int(
                session.exec(
                    select(func.count())
                    .select_from(InboundUpdate)
                    .where(col(InboundUpdate.done_at).is_(None))
                ).one()
            )

    # her turn is over and marked done: only the card is still to come
    await double.wait_for(lambda: unhandled() == 0, 20, "the turn marked done")
    bot.kill()
    double.slow(STAFF_CHAT, 0.0)
    before = len(double.sent_to(STAFF_CHAT))
    await bot.start(double)
    await double.wait_for(lambda: card_of(double, "Anna") is not None, 60, "the card")
    cards = [m for m in double.sent_to(STAFF_CHAT)[before:] if "Customer: Anna " in m["text"]]
    assert len(cards) == 1
    assert ticket_of(anna).card_message_id == cards[0]["message_id"]
    assert "1 ticket(s) without a card; posting them now" in bot.log.read_text()
