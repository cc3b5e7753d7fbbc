"""`python -m bot chat`: be the customer in a terminal, on the embedded defaults.

Works with piped input (one customer line per line) so conversations can be scripted:
bot messages are printed as ``bot> `` lines, buttons as ``  [1] label``; a button is
chosen by its number or its label. End of input ends the chat.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from sqlmodel import col, select

from bot.config import Settings
from bot.dialogue import Button, Engine, Incoming, Reply
from bot.nlu import NluService
from bot.store import Conversation, Database, Message
from bot.store.db import active_conversation, find_customer

TERMINAL_USER = -1
"""The terminal customer's id: negative, so it never meets a real Telegram user."""


def format_reply(reply: Reply) -> str:
    lines = [f"bot> {line}" if line else "bot>" for line in reply.text.split("\n")]
    lines += [f"  [{number}] {button.label}" for number, button in enumerate(reply.buttons, 1)]
    return "\n".join(lines)


def choose(line: str, buttons: list[Button]) -> str | None:
    """The payload of the button the line names (its number or its label), if any."""
    wanted = line.strip()
    if wanted.isdigit() and 1 <= int(wanted) <= len(buttons):
        return buttons[int(wanted) - 1].payload
    for button in buttons:
        if button.label.strip().lower() == wanted.lower():
            return button.payload
    return None


def last_buttons(db: Database, user_id: int) -> list[Button]:
    """The buttons of the bot's last message in the open conversation (after a restart)."""
    with db.session() as session:
        customer = find_customer(session, telegram_id=user_id)
        conversation = (
            active_conversation(session, customer_id=customer.id)
            if customer and customer.id
            else None
        )
        if conversation is None:
            return []
        last = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.direction == "out")
            .order_by(col(Message.id).desc())
        ).first()
        return [Button(b["label"], b["payload"]) for b in (last.buttons if last else [])]


def close_open_conversations(db: Database, user_id: int) -> None:
    with db.session() as session:
        customer = find_customer(session, telegram_id=user_id)
        if customer is None:
            return
        for conversation in session.exec(
            select(Conversation).where(
                Conversation.customer_id == customer.id, Conversation.status != "closed"
            )
        ):
            conversation.status = "closed"
            session.add(conversation)
        session.commit()


async def chat(
    settings: Settings,
    *,
    name: str,
    language: str,
    user_id: int = TERMINAL_USER,
    fresh: bool = False,
    source: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
) -> int:
    db = Database(settings.database_url)
    db.upgrade()
    if fresh:
        close_open_conversations(db, user_id)
    engine = Engine(settings, db=db, nlu=NluService(settings))
    interactive = source.isatty()
    if interactive:
        sys.stderr.write("Write as the customer; Ctrl-D ends the chat.\n")
    buttons = last_buttons(db, user_id)
    loop = asyncio.get_running_loop()
    try:
        while True:
            if interactive:
                out.write("you> ")
                out.flush()
            line = await loop.run_in_executor(None, source.readline)
            if not line:
                break
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            payload = choose(line, buttons)
            result = await engine.handle(
                Incoming(
                    user_id=user_id,
                    chat_id=user_id,
                    name=name,
                    text=line,
                    payload=payload,
                    language_hint=language,
                    channel="terminal",
                )
            )
            for reply in result.replies:
                out.write(format_reply(reply) + "\n")
                if reply.buttons:
                    buttons = reply.buttons
            out.flush()
    finally:
        await engine.close()
        db.dispose()
    return 0
