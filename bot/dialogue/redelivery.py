"""An update the bot has handled before: nothing is done again, what is still owed is
sent (a crash between saving a turn and sending it loses nothing).
"""

from __future__ import annotations

import logging

from sqlmodel import Session, col, func, select

from bot.dialogue.turn import Button, Incoming, Reply, TurnResult
from bot.store import Conversation, Message, StaffPost, Ticket
from bot.store.db import find_customer, staff_post_waiting, without_card

log = logging.getLogger(__name__)


def redelivered(session: Session, incoming: Incoming) -> TurnResult:
    """An update handled before (Telegram delivered it again, or the process stopped
    after the turn was saved): nothing is done again, but replies of that turn not
    yet sent are returned to be sent, and a ticket whose card was never posted and
    tickets with posts for their topic still waiting are named, so a crash between
    saving and sending loses nothing."""
    result = TurnResult(replies=[], conversation_id=0, status="", stage="", duplicate=True)
    customer = find_customer(session, telegram_id=incoming.user_id)
    if customer is None:
        return result
    conversation = session.exec(
        select(Conversation)
        .where(Conversation.customer_id == customer.id)
        .order_by(col(Conversation.id).desc())
    ).first()
    if conversation is None or conversation.id is None:
        return result
    last_in = session.exec(
        select(func.max(Message.id)).where(
            Message.conversation_id == conversation.id, Message.direction == "in"
        )
    ).one()
    unsent = session.exec(
        select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "out",
            col(Message.id) > (last_in or 0),
            col(Message.external_id).is_(None),
            col(Message.delivered).is_(True),
        )
        .order_by(col(Message.id))
    ).all()
    on_the_way = [row.id for row in unsent if row.send_started_at is not None]
    if on_the_way:
        log.warning(
            "replies %s were on their way to Telegram when the bot stopped; not sent again",
            on_the_way,
        )
    unsent = [row for row in unsent if row.send_started_at is None]
    result.replies = [
        Reply(
            text=row.text,
            buttons=[Button(**button) for button in row.buttons],
            responses=[row.response] if row.response else [],
            row_id=row.id,
        )
        for row in unsent
    ]
    result.conversation_id = conversation.id
    result.status, result.stage = conversation.status, conversation.stage
    card_missing = session.exec(
        select(Ticket.id).where(
            Ticket.conversation_id == conversation.id,
            *without_card(),
        )
    ).first()
    result.ticket_id = card_missing
    result.staff_posts = list(
        session.exec(
            select(StaffPost.ticket_id)
            .join(Ticket, col(Ticket.id) == col(StaffPost.ticket_id))
            .where(Ticket.conversation_id == conversation.id, *staff_post_waiting())
            .distinct()
        )
    )
    return result
