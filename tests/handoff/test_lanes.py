"""The staff group never holds up a customer (bot/telegram/lanes.py), end to end.

The double answers every request about the staff group only after 4 seconds, as
Telegram under load, or as the bot itself when it waits for the group's 20 messages a
minute. The customer's conversation goes on meanwhile; the ticket's card and what the
customer adds reach the topic in order; and a card and a line still waiting when the bot
is killed are posted by the next run, once each."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlmodel import col, select

from bot.store import Message, StaffPost
from bot.telegram.intake import Inbox
from bot.telegram.lanes import Turns
from tests.handoff.helpers import BILLING, answer_until, card_of, ticket_of
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import STAFF_CHAT, BotProcess, texts

pytestmark = [pytest.mark.staff, pytest.mark.flood(group_per_minute=600)]
LINE = "👤 Anna: the bank sent me a letter about it"
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
    assert in_topic[-1]["text"] == LINE
    ticket = ticket_of(anna)
    assert (ticket.topic_id, ticket.card_message_id) == (thread, card["message_id"])


@pytest.mark.staff(HANDOFF_TICK="0.5s")
async def test_a_card_and_a_line_still_waiting_at_a_crash_are_posted_by_the_next_run(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna = await _read_back(customers)
    double.slow(STAFF_CHAT, 30.0)  # nothing reaches the group before the kill
    await anna.tap("Yes, all correct")
    await anna.say("the bank sent me a letter about it")  # queued behind her card

    # her turns are over and marked done: only the staff group's part is still to come
    inbox = Inbox(anna.db)
    await double.wait_for(lambda: inbox.count_pending() == 0, 20, "the turns marked done")
    bot.kill()
    double.slow(STAFF_CHAT, 0.0)
    before = len(double.sent_to(STAFF_CHAT))
    await bot.start(double)
    # posted and stored on the ticket (Telegram has it a moment before the bot knows)
    await double.wait_for(lambda: ticket_of(anna).card_message_id is not None, 60, "the card")
    cards = [m for m in double.sent_to(STAFF_CHAT)[before:] if "Customer: Anna " in m["text"]]
    assert len(cards) == 1
    assert ticket_of(anna).card_message_id == cards[0]["message_id"]
    # then her line, once, in the card's topic, and nothing is left to post
    await double.wait_for(lambda: not _staff_posts(anna), 60, "her line posted")
    lines = [m for m in double.sent_to(STAFF_CHAT)[before:] if m["text"] == LINE]
    assert len(lines) == 1
    assert lines[0]["message_thread_id"] == cards[0]["message_thread_id"]
    assert lines[0]["message_id"] > cards[0]["message_id"]
    log = bot.log.read_text()
    assert "1 ticket(s) without a card; posting them now" in log
    assert "1 ticket(s) with lines for their topic left over; posting them" in log


def _staff_posts(customer: Any) -> list[StaffPost]:
    """Lines for topics still waiting to be posted (a posted one keeps its outcome)."""
    with customer.db.session() as session:
        return list(session.exec(select(StaffPost).where(col(StaffPost.outcome).is_(None))))


async def test_cards_take_turns_major_complaints_first() -> None:
    """Two cards at a time (CARDS_AT_ONCE in small); the waiting ones go by key: a major
    complaint's (-2, ...) before an older ordinary one's (0, ...); a waiter cancelled
    (the bot stopping) gives up its place, and one cancelled just after its turn came
    passes the turn on."""
    turns = Turns(2)
    order: list[str] = []

    async def card(name: str, key: tuple[int, ...], hold: asyncio.Event) -> None:
        await turns.acquire(key)
        order.append(name)
        try:
            await hold.wait()
        finally:
            turns.release()

    go = asyncio.Event()
    tasks = {
        name: asyncio.create_task(card(name, key, go))
        for name, key in [
            ("t1", (0, 0, 1)),
            ("t2", (0, 0, 2)),
            ("t3", (0, 0, 3)),
            ("gone", (0, 0, 4)),
            ("major", (-2, -1, 5)),
        ]
    }
    await asyncio.sleep(0.01)
    assert order == ["t1", "t2"] and turns.holders == 2
    tasks["gone"].cancel()
    await asyncio.sleep(0.01)
    go.set()
    await asyncio.gather(*(t for n, t in tasks.items() if n != "gone"))
    assert order == ["t1", "t2", "major", "t3"]
    assert turns.holders == 0

    # granted, then cancelled before it ran: the next waiter gets the turn
    await turns.acquire((0,))
    await turns.acquire((0,))
    late = asyncio.create_task(turns.acquire((1,)))
    after = asyncio.create_task(turns.acquire((2,)))
    await asyncio.sleep(0.01)
    turns.release()  # `late` is granted ...
    late.cancel()  # ... and cancelled before it could run
    with contextlib.suppress(asyncio.CancelledError):
        await late
    await asyncio.wait_for(after, 1)
    assert turns.holders == 2
