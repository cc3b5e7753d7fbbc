"""Forgetting a customer (`/forget`), keeping anonymous statistics.

Erased: the transcript (every message but the confirmation itself) and the raw updates
kept in the inbox, photos and files, held agent drafts and lines for the staff group not
posted yet, the conversation's slots, the complaint's facts and own words, the ticket's
summary and resolution text, follow-up notes and free-text answers, and the customer's
name, phone and Telegram id (replaced by a placeholder, so their next message starts
afresh as a stranger). Kept, without anything that points to a person:
complaint type, motive and flags, ticket timings, status and agent, SLA outcomes,
survey ratings and solved / not solved — what the reports count.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, select

from bot.store.models import (
    Complaint,
    Conversation,
    ConversationStatus,
    Customer,
    Evidence,
    FollowUp,
    HeldMessage,
    InboundUpdate,
    Message,
    StaffPost,
    Ticket,
)

KEPT_SUMMARY = ("complaint_type", "motive", "desired_outcome", "major_reasons", "habitual")
KEPT_ANSWERS = ("solved", "rating", "working")


def forget(session: Session, customer: Customer, *, keep_message: int | None = None) -> list[int]:
    """Erase a customer's personal data in this session; returns their ticket ids."""
    conversations = [
        c.id
        for c in session.exec(select(Conversation).where(Conversation.customer_id == customer.id))
    ]
    session.execute(
        delete(Message).where(
            col(Message.conversation_id).in_(conversations), col(Message.id) != (keep_message or 0)
        )
    )
    session.execute(delete(Evidence).where(col(Evidence.conversation_id).in_(conversations)))
    # the raw updates as Telegram sent them (the inbox) carry the same words
    session.execute(
        delete(InboundUpdate).where(
            col(InboundUpdate.chat_key) == customer.telegram_id,
            col(InboundUpdate.done_at).is_not(None),
        )
    )
    for conversation in session.exec(
        select(Conversation).where(col(Conversation.id).in_(conversations))
    ):
        conversation.slots = {}
        session.add(conversation)
    for complaint in session.exec(select(Complaint).where(Complaint.customer_id == customer.id)):
        complaint.facts, complaint.first_words, complaint.desired_outcome = {}, "", None
        session.add(complaint)
    tickets = list(session.exec(select(Ticket).where(Ticket.customer_id == customer.id)))
    ticket_ids = [t.id for t in tickets if t.id is not None]
    session.execute(delete(HeldMessage).where(col(HeldMessage.ticket_id).in_(ticket_ids)))
    # lines for the staff group (posted or not) carry the customer's words too
    session.execute(delete(StaffPost).where(col(StaffPost.ticket_id).in_(ticket_ids)))
    for ticket in tickets:
        data = ticket.summary_data or {}
        ticket.summary_data = {k: data[k] for k in KEPT_SUMMARY if k in data}
        ticket.summary = ""
        if ticket.resolution:
            ticket.resolution = "(erased)"
        session.add(ticket)
    for row in session.exec(
        select(FollowUp).where(col(FollowUp.conversation_id).in_(conversations))
    ):
        row.note = ""
        row.data = {k: row.data[k] for k in KEPT_ANSWERS if k in row.data}
        session.add(row)
    customer.name, customer.phone, customer.variations = "", None, {}
    customer.telegram_id = -(customer.id or 0)  # never a real Telegram id
    session.add(customer)
    return ticket_ids


def prune_posted(session: Session, *, before: datetime) -> int:
    """Lines for topics that have their outcome and were written before `before` are
    deleted (the nightly clean-up: they may quote the customer); rows still waiting stay.
    Returns how many went. The caller commits."""
    gone = session.execute(
        delete(StaffPost).where(
            col(StaffPost.outcome).is_not(None), col(StaffPost.created_at) < before
        )
    )
    return int(getattr(gone, "rowcount", 0) or 0)


def prune_inbox(session: Session, *, before: datetime) -> int:
    """Raw updates handled before `before` are deleted (the nightly clean-up: they hold
    what customers wrote); updates not yet handled stay. Returns how many went. The
    caller commits."""
    gone = session.execute(
        delete(InboundUpdate).where(
            col(InboundUpdate.done_at).is_not(None), col(InboundUpdate.done_at) < before
        )
    )
    return int(getattr(gone, "rowcount", 0) or 0)


def expire(session: Session, *, before: datetime) -> int:
    """RETENTION_DAYS: transcripts and evidence of conversations closed before `before`
    are deleted (the figures stay); returns how many messages went."""
    old = select(Conversation.id).where(
        Conversation.status == ConversationStatus.CLOSED, col(Conversation.updated_at) < before
    )
    gone = session.execute(
        delete(Message).where(
            col(Message.conversation_id).in_(old), col(Message.created_at) < before
        )
    )
    session.execute(
        delete(Evidence).where(
            col(Evidence.conversation_id).in_(old), col(Evidence.created_at) < before
        )
    )
    session.commit()
    return int(gone.rowcount)  # type: ignore[attr-defined]
