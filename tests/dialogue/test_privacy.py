"""/forget erases a customer's personal data and keeps anonymous figures; logs mask
phone numbers and e-mails."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from bot.dialogue import Engine
from bot.logmask import MaskingFilter, mask
from bot.store import Complaint, Conversation, Customer, Evidence, Message, Ticket
from tests.dialogue.conftest import Customer as Talker


async def test_forget_asks_first_then_erases_all_but_anonymous_figures(
    engine: Engine, anna: Talker
) -> None:
    await anna.say("my phone is 13800138000, I was charged twice for order SO20241105123")
    await anna.tap("Yes")
    await anna.answer_questions()
    await anna.tap("Yes, all correct")
    assert anna.status == "handed_off"
    await anna.say("/forget")
    assert anna.keys == ["utter_forget_confirm"]
    assert anna.buttons == ["Yes, erase everything", "No, keep it"]
    await anna.tap("No, keep it")
    assert anna.keys == ["utter_forget_kept"]
    with engine.db.session() as session:
        assert session.exec(select(Message)).first() is not None  # nothing erased yet
    await anna.say("/forget")
    await anna.tap("Yes, erase everything")
    assert anna.keys == ["utter_forget_done"] and anna.status == "closed"
    with engine.db.session() as session:
        words = " ".join(m.text + (m.payload or "") for m in session.exec(select(Message)))
        customer = session.exec(select(Customer)).one()
        complaint = session.exec(select(Complaint)).one()
        ticket = session.exec(select(Ticket)).one()
        conversations = session.exec(select(Conversation)).all()
        evidence = session.exec(select(Evidence)).all()
    for personal in ("13800138000", "SO20241105123", "charged twice", "Anna"):
        assert personal not in words
        assert personal not in str(ticket.summary_data) + ticket.summary
        assert personal not in str(complaint.facts) + complaint.first_words
    assert (customer.name, customer.phone, customer.telegram_id) == ("", None, -(customer.id or 0))
    assert all(c.slots == {} for c in conversations) and evidence == []
    # what the reports count is still there, pointing to nobody
    assert complaint.complaint_type == "billing" and ticket.status == "cancelled"
    assert ticket.summary_data.get("complaint_type") == "billing"
    # writing again: a stranger, greeted without a name from before
    await anna.say("hello")
    with engine.db.session() as session:
        assert len(session.exec(select(Customer)).all()) == 2


async def test_forget_before_any_complaint_is_fine(engine: Engine, anna: Talker) -> None:
    await anna.say("/forget")
    await anna.tap("Yes, erase everything")
    assert anna.keys == ["utter_forget_done"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call me on +86 138 0013 8000", "call me on ***************00"),
        ("13800138000", "*********00"),
        ("write to anna.lee@example.com", "write to a***@example.com"),
        ("order SO20241105123, 45.90 yuan", "order SO20241105123, 45.90 yuan"),
        ("update 1002 failed", "update 1002 failed"),
        ("set STAFF_CHAT_ID=-1001234567890", "set STAFF_CHAT_ID=-1001234567890"),
        ("user 5012345678 blocked the bot", "user ********78 blocked the bot"),
    ],
)
def test_phone_numbers_and_emails_are_masked(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_the_filter_masks_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.mask")
    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.mask"):
        log.info("customer phone %s", "13800138000")
        try:
            raise ValueError("bad email bob@example.org")
        except ValueError:
            log.exception("failed")
    assert "13800138000" not in caplog.text and "*********00" in caplog.text
    assert "bob@example.org" not in caplog.text and "b***@example.org" in caplog.text


def test_retention_deletes_old_transcripts_of_closed_conversations(engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.store.privacy import expire

    now = datetime(2026, 11, 22, tzinfo=UTC)
    old, recent = now - timedelta(days=100), now - timedelta(days=5)
    with engine.db.session() as session:
        person = Customer(telegram_id=5, name="Old")
        session.add(person)
        session.flush()
        closed = Conversation(customer_id=person.id or 0, chat_id=5, status="closed")
        still_open = Conversation(customer_id=person.id or 0, chat_id=5, status="open")
        closed.updated_at = still_open.updated_at = old
        session.add_all([closed, still_open])
        session.flush()
        for conversation in (closed, still_open):
            for when, text in ((old, "ancient"), (recent, "fresh")):
                session.add(
                    Message(
                        conversation_id=conversation.id or 0,
                        direction="in",
                        text=f"{text} {conversation.status}",
                        created_at=when,
                    )
                )
        session.commit()
        assert expire(session, before=now - timedelta(days=90)) == 1
        left = sorted(m.text for m in session.exec(select(Message)))
    assert left == ["ancient open", "fresh closed", "fresh open"]
