"""Tickets in the queue: order, position, estimated wait, which ticket a topic is.
What changes a ticket (open, take, transfer, resolve...) is handoff/tickets.py.

Order (shared/domain.md §4, §5): major and urgent first (priority), then declared VIP
tiers, then strict arrival order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median

from sqlmodel import Session, col, select

from bot.store import Customer, Ticket
from bot.store.models import OPEN_TICKET, Priority, TicketStatus

TIER_RANK = {"diamond": 0, "gold": 1, "silver": 2}
"""Declared VIP tiers, best first; every other tier ranks after them."""
DEFAULT_HANDLING_MINUTES = 15.0


def _rank(
    ticket: Ticket, tier: str, now: datetime | None, starve_after: timedelta | None
) -> tuple[int, int, datetime, int]:
    priority = ticket.priority
    if now is not None and starve_after is not None and now - ticket.created_at >= starve_after:
        priority = max(priority, Priority.HIGH)  # no starvation: a long wait joins the major band
    return (
        -priority,
        TIER_RANK.get(tier, len(TIER_RANK)),
        ticket.created_at,
        ticket.id or 0,
    )


def waiting_in_order(
    session: Session, *, now: datetime | None = None, starve_after: timedelta | None = None
) -> list[Ticket]:
    """Waiting tickets, next first. With `now` and `starve_after`, a ticket that has
    waited past the limit ranks with the major complaints (by arrival among them)."""
    rows = session.exec(
        select(Ticket, Customer.tier)
        .join(Customer, col(Customer.id) == Ticket.customer_id)
        .where(Ticket.status == TicketStatus.WAITING)
    ).all()
    return [
        ticket
        for ticket, tier in sorted(rows, key=lambda row: _rank(row[0], row[1], now, starve_after))
    ]


def position(
    session: Session,
    ticket_id: int,
    *,
    now: datetime | None = None,
    starve_after: timedelta | None = None,
) -> int:
    """1 for the next ticket an agent will take."""
    order = [t.id for t in waiting_in_order(session, now=now, starve_after=starve_after)]
    return order.index(ticket_id) + 1 if ticket_id in order else 0


def held_by(session: Session, agent_id: int) -> list[Ticket]:
    """The tickets an agent has now, oldest first."""
    return list(
        session.exec(
            select(Ticket)
            .where(Ticket.agent_id == agent_id, Ticket.status == TicketStatus.ASSIGNED)
            .order_by(col(Ticket.assigned_at))
        )
    )


def open_for_customer(session: Session, *, customer_id: int) -> Ticket | None:
    """The customer's open ticket (waiting or assigned), whatever the conversation."""
    return session.exec(
        select(Ticket)
        .where(Ticket.customer_id == customer_id, col(Ticket.status).in_(OPEN_TICKET))
        .order_by(col(Ticket.id).desc())
    ).first()


def estimated_wait_minutes(session: Session, place: int) -> int:
    """From how long recent tickets waited for an agent (the median of the last 20)."""
    recent = session.exec(
        select(Ticket)
        .where(col(Ticket.assigned_at).is_not(None))
        .order_by(col(Ticket.assigned_at).desc())
        .limit(20)
    ).all()
    waits = [(t.assigned_at - t.created_at).total_seconds() / 60 for t in recent if t.assigned_at]
    per_ticket = median(waits) if waits else DEFAULT_HANDLING_MINUTES
    return max(1, round(per_ticket * max(place, 1)))


def recently_resolved(session: Session, *, customer_id: int, since: datetime) -> Ticket | None:
    """The customer's latest ticket resolved since a time (a candidate to reopen)."""
    return session.exec(
        select(Ticket)
        .where(
            Ticket.customer_id == customer_id,
            Ticket.status == TicketStatus.RESOLVED,
            col(Ticket.resolved_at) >= since,
        )
        .order_by(col(Ticket.resolved_at).desc())
    ).first()


def ticket_for_topic(
    session: Session, *, chat_id: int, topic_id: int | None, reply_to: int | None
) -> Ticket | None:
    """The ticket a staff-group message belongs to: its forum topic, or the card it replies to."""
    if topic_id is not None:
        found = session.exec(
            select(Ticket).where(Ticket.staff_chat_id == chat_id, Ticket.topic_id == topic_id)
        ).first()
        if found is not None:
            return found
    if reply_to is not None:
        return session.exec(
            select(Ticket).where(
                Ticket.staff_chat_id == chat_id, Ticket.card_message_id == reply_to
            )
        ).first()
    return None
