"""Hand-off rules in the engine: one open ticket per customer, after-hours call-backs,
cancelling while waiting."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from bot.config import Settings
from bot.dialogue import Engine
from bot.nlu.model import TriageModel
from bot.store import Conversation, FollowUp, Ticket
from tests.dialogue.conftest import NOW, Customer, make_engine

BILLING = "I was charged twice for order SO20241105123, $45.90 each time, refund please"


async def _hand_off(customer: Customer) -> None:
    await customer.say(BILLING)
    await customer.tap("Yes")
    await customer.answer_questions()
    await customer.tap("Yes, all correct")
    assert customer.status == "handed_off", customer.keys


async def test_a_customer_has_one_open_ticket_even_across_conversations(
    engine: Engine, anna: Customer
) -> None:
    await _hand_off(anna)
    first = anna.ticket()
    # the conversation ends some other way (an operator closed it), the ticket stays open
    with engine.db.session() as session:
        conversation = session.get(Conversation, anna.conversation_id)
        assert conversation is not None
        conversation.status = "closed"
        session.add(conversation)
        session.commit()
    await anna.say("I want to speak to a person about this right now")
    assert anna.status == "handed_off"
    with engine.db.session() as session:
        tickets = session.exec(select(Ticket)).all()
    assert [t.id for t in tickets] == [first.id]  # no second ticket in the queue
    assert tickets[0].conversation_id == anna.conversation_id  # it follows the customer
    assert f"#{first.id}" in anna.text


async def test_after_hours_the_hand_off_says_when_and_offers_call_back_slots(
    settings: Settings, model: TriageModel
) -> None:
    # NOW is Sunday 11:00 in Asia/Shanghai: closed, back Monday 09:00
    closed = settings.model_copy(update={"business_hours": "Mon-Fri 09:00-18:00"})
    engine = make_engine(closed, model)
    try:
        anna = Customer(engine)
        await _hand_off(anna)
        assert anna.keys[-1] == "utter_handoff_after_hours"
        assert "utter_queue_place" not in anna.keys
        assert "Mon 23 Nov, 09:00" in anna.text
        assert anna.buttons == [
            "Mon 23 Nov, 09:00–10:00",
            "Mon 23 Nov, 10:00–11:00",
            "Mon 23 Nov, 11:00–12:00",
            "No need, just reply here",
        ]
        await anna.say("the second charge also caused an overdraft fee")
        assert anna.keys == ["utter_handoff_waiting"]
        await anna.press("cb:2026-11-23T10:00")  # still live after a typed message
        assert anna.keys == ["utter_callback_booked"] and "Mon 23 Nov, 10:00–11:00" in anna.text
        await anna.press("cb:2026-11-23T11:00")  # a second choice moves the appointment
        with engine.db.session() as session:
            booked = session.exec(select(FollowUp).where(FollowUp.kind == "callback")).all()
        assert len(booked) == 1
        assert booked[0].due_at == datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 11:00 local
        await anna.press("cb:2026-11-20T09:00")  # never offered (forged, or long gone)
        assert anna.keys == ["utter_choice_expired", "utter_handoff_waiting"]
        li = Customer(engine, user_id=2002, name="李雷", lang="zh")
        await li.say("同一笔订单SO20241105123扣了我两次钱，每次45.9元，我要退款")
        await li.tap("对")
        await li.answer_questions()
        await li.tap("都对")
        assert "11月23日（周一）09:00" in li.text
        assert li.buttons[-1] == "不用了，在这里回复我就好"
        await li.tap("不用了")
        assert li.keys == ["utter_callback_declined"]
    finally:
        await engine.close()
        engine.db.dispose()


async def test_cancel_while_waiting_cancels_the_ticket(engine: Engine, anna: Customer) -> None:
    await _hand_off(anna)
    await anna.say("/cancel")
    assert anna.keys == ["utter_cancel"] and anna.status == "closed"
    ticket = anna.ticket()
    assert (ticket.status, ticket.resolution) == ("cancelled", "cancelled by the customer")
    assert ticket.resolved_at == NOW


async def test_after_hours_how_long_says_when_people_are_back_before_and_after_the_hand_off(
    settings: Settings, model: TriageModel
) -> None:
    """Out of hours, "how long will this take?" is answered with when the team is back, at
    the read-back and while the ticket waits (the same day as the hand-off names)."""
    closed = settings.model_copy(update={"business_hours": "Mon-Fri 09:00-18:00"})
    engine = make_engine(closed, model)
    try:
        anna = Customer(engine)
        await anna.say(BILLING)
        await anna.tap("Yes")
        await anna.answer_questions()
        assert anna.keys[-1] == "utter_summary_confirm"
        await anna.say("how long will this take?")
        assert anna.keys == ["utter_summary_how_long_after_hours", "utter_summary_confirm"]
        assert "Mon 23 Nov, 09:00" in anna.text
        await anna.tap("Yes, all correct")
        await anna.tap("No need")
        await anna.say("how long will this take?")
        assert anna.keys == ["utter_waiting_after_hours"]
        assert "Mon 23 Nov, 09:00" in anna.text
    finally:
        await engine.close()
        engine.db.dispose()
