"""What a turn writes about the complaint: the complaint row, evidence, the hand-off
ticket. Functions of the turn (its session, slots and clock); the transaction is the
turn's, committed by the engine with the replies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from actions.facts import load_facts
from bot.dialogue.turn import Turn
from bot.dialogue.wording import Wording
from bot.store import Complaint, Evidence, Ticket
from bot.store.db import complaints_since, habitual_window_start
from bot.store.models import Priority
from handoff import tickets


def save_complaint(turn: Turn) -> Complaint:
    """Create or update the complaint row from the slots (nothing waits for the end)."""
    complaint = turn.complaint
    if complaint is None:
        assert turn.conversation.id is not None and turn.customer.id is not None
        complaint = Complaint(
            conversation_id=turn.conversation.id,
            customer_id=turn.customer.id,
            first_words=str(turn.slots.get("first_words") or ""),
        )
    slots = turn.slots
    complaint.complaint_type = str(slots.get("complaint_type") or "other")
    complaint.motive = slots.get("motive")
    complaint.desired_outcome = slots.get("desired_outcome")
    complaint.facts = {
        name: slots[name] for name in load_facts().slots if slots.get(name) is not None
    } | ({"notes": slots["notes"]} if slots.get("notes") else {})
    complaint.signals = list(slots.get("signals") or [])
    complaint.major = bool(slots.get("major"))
    complaint.major_reasons = list(slots.get("major_reasons") or [])
    complaint.habitual = bool(slots.get("habitual"))
    complaint.updated_at = turn.now
    turn.session.add(complaint)
    turn.session.flush()
    turn.complaint = complaint
    turn.slots["complaint_id"] = complaint.id
    return complaint


def add_evidence(turn: Turn, *, kind: str, file_id: str) -> Evidence:
    """A photo or file the customer sent, kept with the complaint (its caption too)."""
    assert turn.conversation.id is not None
    evidence = Evidence(
        conversation_id=turn.conversation.id,
        complaint_id=turn.slots.get("complaint_id"),
        kind=kind,
        file_id=file_id,
        caption=turn.text,
    )
    turn.session.add(evidence)
    return evidence


def prior_complaints(turn: Turn) -> int:
    """The customer's complaints in the habitual-complainant window, this one left out."""
    assert turn.customer.id is not None
    since = habitual_window_start(turn.now)
    count = complaints_since(turn.session, customer_id=turn.customer.id, since=since)
    return count - (1 if turn.complaint is not None else 0)


SAME_PROBLEM_WINDOW = timedelta(days=30)
"""A complaint a person had within this time, about the same problem, makes a new one a
"came back" (major, domain §4). Within `reopen_window` of its resolution the old ticket
is reopened instead."""


def earlier_complaints(turn: Turn) -> list[dict[str, Any]]:
    """The customer's complaints of the last 30 days that reached a person (a ticket),
    this conversation's left out, newest first: what the complaint actions compare a new
    complaint with (its type, and the order number among its facts)."""
    assert turn.customer.id is not None
    rows = turn.session.exec(
        select(Complaint, Ticket)
        .join(Ticket, col(Ticket.complaint_id) == col(Complaint.id))
        .where(
            Complaint.customer_id == turn.customer.id,
            col(Complaint.conversation_id) != turn.conversation.id,
            Complaint.created_at >= turn.now - SAME_PROBLEM_WINDOW,
        )
        .order_by(col(Complaint.created_at).desc(), col(Ticket.id).desc())
    ).all()
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for complaint, ticket in rows:
        if complaint.id in seen:
            continue
        seen.add(complaint.id or 0)
        out.append({
            "complaint_type": complaint.complaint_type,
            "ticket": ticket.id,
            "facts": {k: v for k, v in (complaint.facts or {}).items() if k != "notes"},
        })  # fmt: skip
    return out


def open_ticket(
    turn: Turn,
    wording: Wording,
    *,
    kind: str,
    priority: int = Priority.NORMAL,
    supervisor: bool = False,
) -> Ticket:
    """The hand-off record, with the read-back summary for the agents' card; if the
    customer still has an open ticket (from an earlier conversation), this conversation
    joins it and the customer's next lines go to its topic."""
    assert turn.conversation.id is not None and turn.customer.id is not None
    summary = dict(turn.slots.get("summary") or {})
    ticket, joined = tickets.open_or_join(
        turn.session,
        conversation_id=turn.conversation.id,
        customer_id=turn.customer.id,
        complaint_id=turn.complaint.id if turn.complaint else None,
        kind=kind,
        priority=max(priority, int(turn.slots.get("priority") or 0)),
        supervisor=supervisor or bool(turn.slots.get("major")),
        summary=summary,
        summary_text=wording.summary_text(summary, turn.language) if summary else "",
        now=turn.now,
    )
    if joined:
        turn.relay_ticket_id = ticket.id
    else:
        turn.ticket_id = ticket.id
    turn.slots["ticket_id"] = ticket.id
    turn.slots["ticket_ref"] = f"#{ticket.id}"
    return ticket
