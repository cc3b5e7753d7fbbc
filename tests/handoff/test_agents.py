"""Agents at work, end to end against the Bot API double: transfer, the private chat
(/queue, /take, /mine, /away, /available, capacity), /promise with its reminder,
check-ins and supervisor alerts while a ticket waits, after-hours call-backs, cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.store import Agent, FollowUp
from tests.handoff.helpers import (
    button,
    card_of,
    complained,
    complaint,
    last_to,
    press,
    taken,
    ticket_of,
)
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import (
    AGENTS,
    OUTSIDER,
    STAFF_CHAT,
    SUPERVISORS,
    UNSTARTED,
    mentioned,
    texts,
)

pytestmark = [pytest.mark.staff, pytest.mark.flood(group_per_minute=600)]
ADA, BO = AGENTS
SUE = next(iter(SUPERVISORS))


async def _dm(double: BotApiDouble, user_id: int, text: str) -> str:
    """A member of staff writes to the bot privately; returns the bot's answer."""
    before = len(double.sent_to(user_id))
    double.user_sends(user_id, text)
    await double.wait_for(lambda: len(double.sent_to(user_id)) > before, 20, f"answer to {text}")
    return texts(double.sent_to(user_id)[before:])


def _topic(double: BotApiDouble, thread: int) -> str:
    return texts([m for m in double.sent_to(STAFF_CHAT) if m.get("message_thread_id") == thread])


async def test_transfer_to_another_agent_then_back_to_the_queue(
    double: BotApiDouble, customers: Any
) -> None:
    anna, card, thread = await complained(double, customers)
    assert "available" in await _dm(double, BO, "/available")  # Bo is known by name now
    assert (await press(double, ADA, card, "Take")).startswith("It's yours")
    # someone outside staff cannot even open the picker
    assert "Only agents" in await press(double, OUTSIDER, card, "Transfer")
    # Bo does not hold the ticket: he cannot move it either
    assert "Only the agent who has the ticket" in await press(double, BO, card, "Transfer")
    await press(double, ADA, card, "Transfer")
    await double.wait_for(lambda: "Transfer ticket" in _topic(double, thread), 20, "picker")
    picker = next(m for m in double.sent_to(STAFF_CHAT) if "Transfer ticket" in m["text"])
    labels = [b["text"] for row in picker["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["Bo", str(SUE), "Back to the queue"]  # Sue has not acted yet: her id
    before = len(double.sent_to(601))
    await press(double, ADA, picker, "Bo")
    await double.wait_for(lambda: "Ada → Bo" in _topic(double, thread), 20, "transfer note")
    ticket = ticket_of(anna)
    assert (ticket.status, ticket.agent_id, ticket.agent_name) == ("assigned", BO, "Bo")
    await double.wait_for(lambda: len(double.sent_to(601)) > before, 20, "customer told")
    told = texts(double.sent_to(601)[before:])
    assert "Bo from our support team is taking over" in told and "won't need to repeat" in told
    await double.wait_for(lambda: "handed to you by Ada" in texts(double.sent_to(BO)), 20)
    handed = next(m for m in double.sent_to(BO) if "handed to you" in m["text"])
    link = handed["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert link == f"https://t.me/c/{str(STAFF_CHAT).removeprefix('-100')}/{thread}"
    # the old keyboard is gone: the picker cannot be pressed twice
    assert not double.messages[(STAFF_CHAT, picker["message_id"])].get("reply_markup")
    # Bo, now holding it, relays; Ada no longer can
    double.user_sends(ADA, "Ada again here", chat_id=STAFF_CHAT, thread_id=thread)
    double.user_sends(BO, "Hi Anna, Bo here, checking now.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "Bo here" in texts(double.sent_to(601)), 20, "relay by Bo")
    assert "Ada again here" not in texts(double.sent_to(601))
    # back to the queue
    await press(double, BO, card, "Transfer")
    await double.wait_for(lambda: _topic(double, thread).count("Transfer ticket") == 2, 20)
    second = [m for m in double.sent_to(STAFF_CHAT) if "Transfer ticket" in m["text"]][-1]
    await press(double, BO, second, "Back to the queue")
    await double.wait_for(lambda: "back in the queue" in _topic(double, thread), 20)
    assert ticket_of(anna).status == "waiting" and ticket_of(anna).agent_id is None
    await double.wait_for(lambda: "pick up your case shortly" in texts(double.sent_to(601)), 20)


@pytest.mark.staff(AGENT_CAPACITY="1")
async def test_private_queue_take_mine_away_and_capacity(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await complaint(double, customers)
    ben = await complaint(double, customers, 602, "Ben")
    first, second = ticket_of(anna).id, ticket_of(ben).id
    listing = await _dm(double, ADA, "/queue")
    assert "Waiting: 2 · you hold 0 of 1" in listing
    assert listing.index(f"1. #{first} ") < listing.index(f"2. #{second} ")
    assert "Anna" in listing and "Ben" in listing
    taken = await _dm(double, ADA, "/take")
    assert f"Ticket #{first} is yours" in taken
    assert ticket_of(anna).agent_id == ADA
    note = next(m for m in double.sent_to(ADA) if f"Ticket #{first} is yours" in m["text"])
    assert note["reply_markup"]["inline_keyboard"][0][0]["text"] == "Open the topic"
    await double.wait_for(lambda: "Ada from our support team" in texts(double.sent_to(601)), 20)
    # capacity 1: a second ticket is refused, by command and by button
    assert "maximum" in await _dm(double, ADA, f"/take {second}")
    ben_card = card_of(double, "Ben")
    assert ben_card is not None
    assert "maximum" in await press(double, ADA, ben_card, "Take")
    assert ticket_of(ben).status == "waiting"
    mine = await _dm(double, ADA, "/mine")
    assert f"#{first}" in mine and "Anna" in mine and f"#{second}" not in mine
    # bad input gets a clear answer
    assert "/take 12" in await _dm(double, BO, "/take soon")
    assert "could not be found" in await _dm(double, BO, "/take 999")
    assert "not waiting" in await _dm(double, BO, f"/take {first}")
    # away: nobody can transfer to Bo; available again: they can
    assert "marked away" in await _dm(double, BO, "/away")
    with anna.db.session() as session:
        bo = session.get(Agent, BO)
        assert bo is not None and not bo.available
    card = card_of(double, "Anna")
    assert card is not None
    await press(double, ADA, card, "Transfer")
    await double.wait_for(lambda: "Transfer ticket" in texts(double.sent_to(STAFF_CHAT)), 20)
    picker = next(m for m in double.sent_to(STAFF_CHAT) if "Transfer ticket" in m["text"])
    assert "Bo (away)" in [b["text"] for r in picker["reply_markup"]["inline_keyboard"] for b in r]
    assert "Bo is away" in await press(double, ADA, picker, "Bo (away)")
    assert ticket_of(anna).agent_id == ADA
    assert "available again" in await _dm(double, BO, "/available")
    # the staff menu is set for each member of staff
    assert [c["command"] for c in double.chat_commands[ADA]][-5:] == [
        "queue",
        "take",
        "mine",
        "away",
        "available",
    ]
    # a customer typing /queue gets no queue: it is an unknown command to them
    carla = customers(603, "Carla", "en")
    answer = texts(await carla.say("/queue"))
    assert "Waiting" not in answer and "Anna" not in answer and "Ben" not in answer


@pytest.mark.staff(PROMISE_REMINDER="2s", HANDOFF_TICK="0.3s")
async def test_a_promise_gets_a_due_time_a_line_and_a_reminder(
    double: BotApiDouble, customers: Any
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    double.user_sends(ADA, "/promise soon", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "/promise 2d" in _topic(double, thread), 20, "usage")
    double.user_sends(ADA, "/promise 5s send the repair date", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "Promise by Ada" in _topic(double, thread), 20, "promise line")
    assert "send the repair date" in _topic(double, thread)
    assert "repair date" not in texts(double.sent_to(601))  # internal, like /note
    with anna.db.session() as session:
        promise = session.exec(select(FollowUp).where(FollowUp.kind == "promise")).one()
    assert promise.note == "send the repair date" and promise.agent_id == ADA
    assert timedelta(seconds=3) < promise.due_at - datetime.now(UTC) < timedelta(seconds=6)
    await double.wait_for(
        lambda: "Reminder for ticket" in texts(double.sent_to(ADA)), 20, "reminder"
    )
    assert "send the repair date" in texts(double.sent_to(ADA))
    # the private reminder goes first, then the line in the topic
    await double.wait_for(lambda: "Reminder for ticket" in _topic(double, thread), 20, "in topic")
    assert "send the repair date" in await _dm(double, ADA, "/mine")


@pytest.mark.unstarted
@pytest.mark.staff(CHECKIN_INTERVAL="2s", UNTAKEN_ALERT="3s", HANDOFF_TICK="0.3s")
async def test_while_waiting_the_customer_hears_and_supervisors_are_alerted(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await complaint(double, customers)
    await double.wait_for(
        lambda: "number 1 in line" in texts(double.sent_to(601)), 20, "a check-in"
    )
    await double.wait_for(lambda: "nobody has taken it" in texts(double.sent_to(SUE)), 20)
    alert = texts(double.sent_to(SUE))
    assert f"Ticket #{ticket_of(anna).id}" in alert
    # Max never pressed Start: the same alert mentions him in the staff group
    await double.wait_for(lambda: mentioned(double, UNSTARTED[0], "nobody has taken it"), 20)
    # a more urgent case goes ahead: the next check-in explains the place that moved back
    await customers(603, "Ben", "zh").say("再不给我解决我就去你们店里捅人")
    await double.wait_for(
        lambda: (
            "from number 1 to number 2" in texts(double.sent_to(601))
            or "number 2 instead of 1" in texts(double.sent_to(601))
        ),
        20,
        "the moved-back check-in",
    )
    card = card_of(double, "Anna")
    assert card is not None
    await press(double, ADA, card, "Take")
    await double.wait_for(lambda: ticket_of(anna).status == "assigned", 20)
    settled = len(double.sent_to(601))
    await asyncio.sleep(4)
    later = double.sent_to(601)[settled:]
    assert "in line" not in texts(later), "check-ins stop once an agent has the case"
    alerts = texts(double.sent_to(SUE))
    assert alerts.count(f"Ticket #{ticket_of(anna).id} has waited") == 1  # once per wait


def _closed_all_day_today(zone: str) -> str:
    """Business hours on one day that is not today (so the desk is closed now)."""
    today = datetime.now(ZoneInfo(zone)).weekday()
    day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][(today + 2) % 7]
    return f"{day} 09:00-18:00"


@pytest.mark.staff(
    BUSINESS_HOURS=_closed_all_day_today("Asia/Shanghai"),
    TIMEZONE="Asia/Shanghai",
    CHECKIN_INTERVAL="1s",
    HANDOFF_TICK="0.3s",
)
async def test_after_hours_the_customer_books_a_call_back(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await complaint(double, customers)
    offer = next(m for m in double.sent_to(601) if "back on" in m.get("text", ""))
    slots = [b["text"] for row in offer["reply_markup"]["inline_keyboard"] for b in row]
    assert len(slots) == 4 and slots[-1] == "No need, just reply here"
    assert all(slot.endswith(("09:00–10:00", "10:00–11:00", "11:00–12:00")) for slot in slots[:3])
    assert "number 1 in the queue" not in texts(double.sent_to(601))  # no estimate at night
    # the customer adds a detail first: the slots stay live
    await anna.say("also the bank charged me a fee for this")
    booked = await anna.press(offer["message_id"], button(offer, slots[0]))
    assert "Booked" in texts(booked) and slots[0] in texts(booked)
    with anna.db.session() as session:
        callback = session.exec(select(FollowUp).where(FollowUp.kind == "callback")).one()
    local = callback.due_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert (local.hour, local.minute) == (9, 0) and callback.ticket_id == ticket_of(anna).id
    await double.wait_for(
        lambda: "booked a call-back" in texts(double.sent_to(STAFF_CHAT)), 20, "staff note"
    )
    await asyncio.sleep(2)
    assert "in line now" not in texts(double.sent_to(601)), "no check-ins while closed"


async def test_cancel_while_waiting_closes_the_ticket_and_its_topic(
    double: BotApiDouble, customers: Any
) -> None:
    anna, card, thread = await complained(double, customers)
    answer = await anna.say("/cancel")
    assert "stopped" in texts(answer) or "leave it there" in texts(answer)
    ticket = ticket_of(anna)
    assert ticket.status == "cancelled"
    await double.wait_for(lambda: "customer cancelled" in _topic(double, thread), 20)
    await double.wait_for(lambda: double.topics[(STAFF_CHAT, thread)].get("closed"), 20)
    # the old card's Take does nothing now
    assert "not waiting (it is cancelled)" in await press(double, ADA, card, "Take")
    assert ticket_of(anna).agent_id is None


async def test_forget_deletes_the_topic_and_cancels_the_ticket(
    double: BotApiDouble, customers: Any
) -> None:
    anna, _, thread = await complained(double, customers)
    assert (STAFF_CHAT, thread) in double.topics
    await anna.say("/forget")
    confirm = last_to(double, 601, "Erase everything?")
    # pressed through the double: the test's own helper finds customers by Telegram id,
    # which is exactly what gets erased
    double.user_presses(601, confirm["message_id"], button(confirm, "Yes, erase everything"))
    await double.wait_for(lambda: "your data is erased" in texts(double.sent_to(601)), 20)
    await double.wait_for(lambda: (STAFF_CHAT, thread) not in double.topics, 20, "topic gone")
    assert ticket_of_any(anna).status == "cancelled"
    assert [c["command"] for c in double.commands["en"]][-1] == "forget"


def ticket_of_any(customer: Any) -> Any:
    """The only ticket (its customer no longer has a Telegram id to find it by)."""
    from bot.store import Ticket

    with customer.db.session() as session:
        return session.exec(select(Ticket)).one()
