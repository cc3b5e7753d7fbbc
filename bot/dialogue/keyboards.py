"""Whether a pressed button still counts: a keyboard is live only while it is the bot's
latest, and a press on the latest message may replace it (one edit instead of two calls).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.dialogue.turn import Incoming
from bot.store import Message

LATEST_KEYBOARD = ("cb:", "sv:", "as:", "meets:")
"""Payloads valid on the latest keyboard even when it is not the latest message."""


def is_stale(session: Session, conversation_id: int, incoming: Incoming) -> bool:
    """A pressed button is live only on the bot's latest keyboard, and only once.
    Call-back slots and follow-up questions stay live while the customer writes more
    or the bot says something else (their keyboard is the latest one, not
    necessarily the latest message)."""
    latest = select(Message).where(Message.conversation_id == conversation_id)
    if (incoming.payload or "").startswith(LATEST_KEYBOARD):
        recent = session.exec(
            latest.where(Message.direction == "out").order_by(col(Message.id).desc()).limit(20)
        ).all()
        last = next((row for row in recent if row.buttons), None)
    else:
        last = session.exec(latest.order_by(col(Message.id).desc())).first()
    if last is None or last.direction != "out" or not last.buttons:
        return True
    if incoming.button_ref is not None and last.external_id not in (None, incoming.button_ref):
        return True
    return incoming.payload not in {button["payload"] for button in last.buttons}


def on_latest(session: Session, conversation_id: int, incoming: Incoming) -> bool:
    """Whether a press is on the keyboard of the chat's latest message (nothing was
    said after it by either side)."""
    last = session.exec(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(col(Message.id).desc())
    ).first()
    if last is None or last.direction != "out" or not last.buttons:
        return False
    if incoming.button_ref is not None and last.external_id != incoming.button_ref:
        return False
    return incoming.payload in {button["payload"] for button in last.buttons}
