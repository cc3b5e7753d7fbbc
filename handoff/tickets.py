"""A ticket's life, as functions that take the session: open (or join the customer's
open one), take, transfer, reopen, cancel, resolve, and an agent's promises on it.

Every function changes rows and leaves the commit to the caller, so the change lands in
the same transaction as the decision that made it (a turn, a staff button, a command).
What follows from a change — a line in the ticket's topic, an alert — is the caller's,
as rows of its own (`StaffEvent`s of the turn, the desk's notes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

from bot.store import FollowUp, Ticket
from bot.store.db import open_tickets
from bot.store.models import OPEN_TICKET, TicketStatus
from handoff.queue import open_for_customer

CANCELLED_BY_CUSTOMER = "cancelled by the customer"


def open_or_join(
    session: Session,
    *,
    conversation_id: int,
    customer_id: int,
    complaint_id: int | None,
    kind: str,
    priority: int,
    supervisor: bool,
    summary: dict[str, Any],
    summary_text: str,
    now: datetime,
) -> tuple[Ticket, bool]:
    """The hand-off record, and whether it is an existing one. One open ticket per
    customer: if one is still open (from an earlier conversation), this conversation
    joins it — its priority and supervisor flag only ever rise — instead of queueing
    again."""
    existing = open_for_customer(session, customer_id=customer_id)
    if existing is not None:
        existing.conversation_id = conversation_id
        existing.priority = max(existing.priority, priority)
        existing.supervisor_flag = existing.supervisor_flag or supervisor
        existing.updated_at = now
        session.add(existing)
        return existing, True
    ticket = Ticket(
        conversation_id=conversation_id,
        customer_id=customer_id,
        complaint_id=complaint_id,
        kind=kind,
        priority=priority,
        supervisor_flag=supervisor,
        summary=summary_text,
        summary_data=summary,
    )
    session.add(ticket)
    session.flush()
    return ticket, False


def reopen(
    session: Session, ticket: Ticket, *, now: datetime, conversation_id: int | None = None
) -> bool:
    """A resolved ticket the customer comes back to waits in the queue again, with no
    agent, its waiting clock restarted; whether it was closed (an open one is left as it
    is). The conversation it now belongs to, if given."""
    if conversation_id is not None:
        ticket.conversation_id = conversation_id
    if ticket.status in OPEN_TICKET:
        session.add(ticket)
        return False
    ticket.status, ticket.resolved_at, ticket.updated_at = TicketStatus.WAITING, None, now
    ticket.agent_id, ticket.agent_name = None, None
    ticket.checked_in_at, ticket.untaken_alert_at = now, None
    session.add(ticket)
    return True


def cancel(session: Session, ticket: Ticket, *, now: datetime) -> None:
    """The customer no longer wants a person (/cancel, /forget)."""
    ticket.status, ticket.resolved_at, ticket.updated_at = TicketStatus.CANCELLED, now, now
    ticket.resolution = CANCELLED_BY_CUSTOMER
    session.add(ticket)


def cancel_open(session: Session, *, conversation_id: int, now: datetime) -> list[int]:
    """Cancel the conversation's open tickets; their ids."""
    cancelled = []
    for ticket in open_tickets(session, conversation_id=conversation_id):
        cancel(session, ticket, now=now)
        assert ticket.id is not None
        cancelled.append(ticket.id)
    return cancelled


def take(
    session: Session,
    *,
    ticket_id: int,
    agent_id: int,
    agent_name: str,
    now: datetime,
) -> bool:
    """Assign a waiting ticket; a conditional UPDATE, so of two agents exactly one wins.
    The caller commits, with what the decision says (bot/telegram/staff/)."""
    result = session.execute(
        sa.update(Ticket)
        .where(col(Ticket.id) == ticket_id, col(Ticket.status) == TicketStatus.WAITING)
        .values(
            status=TicketStatus.ASSIGNED,
            agent_id=agent_id,
            agent_name=agent_name,
            assigned_at=now,
            updated_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def transfer(
    session: Session,
    *,
    ticket_id: int,
    agent_id: int | None,
    agent_name: str | None,
    now: datetime,
) -> bool:
    """Hand an open ticket to another agent, or back to the queue (agent_id None, where
    the waiting clock's check-ins and alerts start again). The caller commits."""
    values: dict[str, object] = {"agent_id": agent_id, "agent_name": agent_name, "updated_at": now}
    if agent_id is None:
        values.update(status=TicketStatus.WAITING, checked_in_at=None, untaken_alert_at=None)
    else:
        values.update(status=TicketStatus.ASSIGNED)
    result = session.execute(
        sa.update(Ticket)
        .where(col(Ticket.id) == ticket_id, col(Ticket.status).in_(OPEN_TICKET))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def resolve(session: Session, *, ticket_id: int, resolution: str, now: datetime) -> bool:
    """Resolve a ticket not resolved yet; the caller commits."""
    result = session.execute(
        sa.update(Ticket)
        .where(col(Ticket.id) == ticket_id, col(Ticket.status) != TicketStatus.RESOLVED)
        .values(
            status=TicketStatus.RESOLVED, resolution=resolution, resolved_at=now, updated_at=now
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def promise(
    session: Session, ticket: Ticket, *, agent_id: int, note: str, due: datetime
) -> FollowUp:
    """An agent's promise on the ticket (`/promise 2d …`): a follow-up due then, which
    reminds them before and alerts a supervisor if it is missed (bot/telegram/followups)."""
    row = FollowUp(
        ticket_id=ticket.id,
        conversation_id=ticket.conversation_id,
        kind="promise",
        due_at=due,
        agent_id=agent_id,
        note=note,
    )
    session.add(row)
    return row


def keep_promises(session: Session, ticket_id: int) -> list[str]:
    """`/done`: the ticket's open promises are kept (no missed-promise alert), and missed
    ones are settled late (they stay on record as late); their notes."""
    promises = session.exec(
        select(FollowUp).where(
            FollowUp.ticket_id == ticket_id,
            FollowUp.kind == "promise",
            or_(FollowUp.status == "pending", FollowUp.outcome == "missed"),
        )
    ).all()
    for row in promises:
        late = row.outcome == "missed"
        row.status, row.outcome = "done", "kept_late" if late else "kept"
        session.add(row)
    return [row.note for row in promises]
