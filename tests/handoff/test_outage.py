"""Telegram away for a minute in the middle of conversations: nothing said is lost.

The Bot API double goes away right after it hands the bot a batch of updates — a
customer's complaint, an agent's reply in a ticket's topic and the agent closing that
ticket — so every answer to them meets the outage: 40 s of refused connections, then
20 s of 502 pages. When it answers again, each message the bot had for a customer
arrives once, and each chat's messages in the order the bot wrote them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select

from bot.store import Conversation, Customer, FollowUp, Message, StaffPost
from tests.handoff.helpers import BILLING, answer_until, button, card_of, taken, ticket_of
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import AGENTS, STAFF_CHAT, SUPERVISORS, BotProcess, free_port, texts

ADA = next(iter(AGENTS))
SUE = next(iter(SUPERVISORS))
REFUSED, BAD_GATEWAY = 40.0, 20.0


def _written_for(customer: Any) -> list[Message]:
    """What the bot wrote for the customer (direction out), in the order it wrote it."""
    with customer.db.session() as session:
        return list(
            session.exec(
                select(Message)
                .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
                .join(Customer, col(Customer.id) == col(Conversation.customer_id))
                .where(Customer.telegram_id == customer.user_id, Message.direction == "out")
                .order_by(col(Message.id))
            )
        )


def _seen_by(double: BotApiDouble, user_id: int) -> list[str]:
    """Every text the customer's chat shows, in the order it arrived (a continued
    message counts once, with its latest text)."""
    return [message.get("text", "") for message in double.sent_to(user_id)]


def _in_order_once(rows: list[Message], seen: list[str]) -> None:
    """Each row's text appears in the chat exactly once, and in the rows' order."""
    where = []
    for row in rows:
        places = [i for i, text in enumerate(seen) if row.text.strip() in text]
        assert len(places) == 1, (row.text, seen)
        where.append(places[0])
    assert where == sorted(where), (where, [row.text for row in rows])


@pytest.mark.slow
@pytest.mark.flood(group_per_minute=600)
@pytest.mark.staff(HANDOFF_TICK="0.2s", SURVEY_DELAY="1s", NO_ANSWER_AFTER="1h")
async def test_a_minute_without_telegram_loses_nothing_and_sends_nothing_twice(
    double: BotApiDouble, customers: Any
) -> None:
    anna, card, thread = await taken(double, customers, ADA)
    ben = customers(602, "Ben", "en")
    await ben.say("hello")
    carl = customers(603, "Carl", "en")  # at the read-back: confirming makes his card
    await carl.say(BILLING)
    await carl.tap("Yes")
    await answer_until(carl, "Yes, all correct", "bought it online last month")
    read_back = next(m for m in reversed(double.sent_to(603)) if m.get("reply_markup"))
    anna_before, ben_before = len(_written_for(anna)), len(_written_for(ben))

    double.outage_after_next_delivery(refused=REFUSED, bad_gateway=BAD_GATEWAY)
    # Pushed together: one getUpdates answer carries them all, then the API is away
    double.user_sends(602, "my parcel is two weeks late and nobody answers my emails, fix it")
    double.user_presses(603, read_back["message_id"], button(read_back, "Yes, all correct"))
    double.user_presses(ADA, card["message_id"], button(card, "Escalate"), chat_id=STAFF_CHAT)
    double.user_sends(ADA, "Your refund is on its way, Anna.", chat_id=STAFF_CHAT, thread_id=thread)
    double.user_sends(ADA, "/close Refunded $45.90.", chat_id=STAFF_CHAT, thread_id=thread)

    await double.wait_for(lambda: double.outage_task is not None, 10, "the outage")
    assert double.outage_task is not None
    await double.outage_task
    # Meanwhile the bot wrote its answers and the survey came due, nothing went out
    assert ticket_of(anna).status == "resolved"
    ben_written = _written_for(ben)[ben_before:]
    assert ben_written, "Ben's complaint was not handled during the outage"

    def survey_seen() -> bool:
        return "Is the problem solved" in texts(double.sent_to(anna.user_id))

    await double.wait_for(survey_seen, 60, "the survey question after the outage")
    await double.wait_for(
        lambda: all(row.outcome == "sent" for row in _written_for(ben)), 60, "Ben's replies"
    )
    await double.wait_for(
        lambda: all(row.outcome == "sent" for row in _written_for(anna)),
        60,
        f"Anna's messages: {[(r.response, r.outcome) for r in _written_for(anna)]}",
    )

    anna_written = _written_for(anna)[anna_before:]
    responses = [row.response for row in anna_written]
    assert responses[:2] == ["relay", "utter_ticket_resolved"], responses
    assert any("survey" in (r or "") for r in responses[2:]), responses
    _in_order_once(anna_written, _seen_by(double, anna.user_id))
    _in_order_once(_written_for(ben)[ben_before:], _seen_by(double, ben.user_id))
    assert "Your refund is on its way, Anna." in texts(double.sent_to(anna.user_id))
    # Carl's card, made during the outage, is in the staff group once; the desk's own
    # line in Anna's topic ("Closed by") too
    await double.wait_for(lambda: card_of(double, "Carl") is not None, 30, "Carl's card")
    cards = [m for m in double.sent_to(STAFF_CHAT) if "Customer: Carl " in m.get("text", "")]
    assert len(cards) == 1
    await double.wait_for(lambda: "Closed by Ada" in texts(double.sent_to(STAFF_CHAT)), 30)
    assert texts(double.sent_to(STAFF_CHAT)).count("Closed by Ada") == 1
    # The supervisors' alert, raised during the outage, reached Sue once
    await double.wait_for(lambda: "was escalated by" in texts(double.sent_to(SUE)), 30)
    assert texts(double.sent_to(SUE)).count(f"Ticket #{ticket_of(anna).id} was escalated") == 1

    with anna.db.session() as session:
        survey = session.exec(select(FollowUp).where(FollowUp.kind == "survey")).one()
    assert survey.attempts == 1  # asked once, not again because the first try failed


def _waiting(customer: Any) -> list[Message]:
    return [row for row in _written_for(customer) if row.outcome is None]


def _topic_rows(customer: Any, *, waiting: bool = True) -> list[str]:
    """The kinds of the StaffPost rows waiting for the customer's ticket's topic (with
    `waiting` False: the outcomes of all of them)."""
    ticket_id = ticket_of(customer).id
    with customer.db.session() as session:
        rows = session.exec(
            select(StaffPost).where(StaffPost.ticket_id == ticket_id).order_by(col(StaffPost.id))
        ).all()
    if not waiting:
        return [f"{row.kind}:{row.outcome}" for row in rows]
    return [row.kind for row in rows if row.outcome is None]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.flood(group_per_minute=600)
@pytest.mark.staff(HANDOFF_TICK="0.2s")
@pytest.mark.env(LISTEN=f"127.0.0.1:{free_port()}")
async def test_kill_9_with_messages_waiting_for_telegram_sends_them_once_in_order(
    double: BotApiDouble, bot: BotProcess, customers: Any
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    ben = customers(602, "Ben", "en")
    await ben.say("hello")
    anna_before, ben_before = len(_written_for(anna)), len(_written_for(ben))

    double.outage_after_next_delivery(refused=3600, bad_gateway=0)
    double.user_sends(602, "the blender I bought smokes when I switch it on, I want a refund")
    double.user_sends(ADA, "Anna, the refund left today.", chat_id=STAFF_CHAT, thread_id=thread)
    double.user_sends(ADA, "/close Refunded.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(
        lambda: len(_waiting(ben)) >= 1 and len(_waiting(anna)) >= 2, 30, "rows waiting"
    )
    # The desk's own line for the topic ("Closed by") and the topic's closing wait too
    await double.wait_for(lambda: _topic_rows(anna) == ["note", "close_topic"], 30, "topic rows")
    await asyncio.sleep(1.5)
    async with aiohttp.ClientSession() as http, http.get(bot.http + "/metrics") as answer:
        metrics = await answer.text()
    waiting = len(_waiting(ben)) + len(_waiting(anna))
    assert _metric(metrics, "complaint_desk_messages_waiting") == waiting
    assert _metric(metrics, "complaint_desk_messages_waiting_oldest_seconds") >= 1.0

    bot.kill()
    await double.end_outage()
    await bot.start(double)
    await double.wait_for(
        lambda: not _waiting(ben) and not _waiting(anna), 60, "the waiting rows sent"
    )
    for customer, before in ((ben, ben_before), (anna, anna_before)):
        rows = _written_for(customer)[before:]
        assert [row.outcome for row in rows] == ["sent"] * len(rows)
        _in_order_once(rows, _seen_by(double, customer.user_id))
    assert "Anna, the refund left today." in texts(double.sent_to(anna.user_id))
    # "Closed by" reached the topic once, and the topic was closed after it, not before
    await double.wait_for(lambda: not _topic_rows(anna), 30, "the topic's rows posted")
    staff_texts = [m.get("text", "") for m in double.sent_to(STAFF_CHAT)]
    assert sum("Closed by Ada" in text for text in staff_texts) == 1, staff_texts
    assert double.topics[(STAFF_CHAT, thread)].get("closed") is True
    calls = [(method, params) for method, params in double.requests]
    said = max(i for i, (m, p) in enumerate(calls) if "Closed by Ada" in str(p.get("text", "")))
    closed = max(i for i, (m, _) in enumerate(calls) if m.lower() == "closeforumtopic")
    assert said < closed
    assert _topic_rows(anna, waiting=False)[-2:] == ["note:sent", "close_topic:sent"]
    async with aiohttp.ClientSession() as http, http.get(bot.http + "/metrics") as answer:
        metrics = await answer.text()
    assert _metric(metrics, "complaint_desk_messages_waiting") == 0
    assert _metric(metrics, 'complaint_desk_messages_out_total{outcome="sent"}') >= 2
