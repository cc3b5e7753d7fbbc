"""`python -m bot chat`: be the customer in a terminal, on the embedded defaults.

Works with piped input (one customer line per line) so conversations can be scripted:
bot messages are printed as ``bot> `` lines, buttons as ``  [1] label``; a button is
chosen by its number or its label. End of input ends the chat.

At a terminal, lines typed (or pasted) within MERGE_WINDOW of each other while the
customer tells their story are one message, as in Telegram; piped lines are never
merged, so a script is one turn per line whatever the timing.
"""

from __future__ import annotations

import asyncio
import sys
import zlib
from select import select as readable
from typing import TextIO

from sqlmodel import col, select

from bot.config import Settings
from bot.dialogue import MAX_MERGED, Button, Engine, Incoming, Reply
from bot.nlu import NluService
from bot.nlu.text import detect_language
from bot.store import Conversation, Database, Message
from bot.store.db import active_conversation, find_customer
from bot.store.models import ConversationStatus

TERMINAL_USER = -1
"""The terminal customer's id: negative, so it never meets a real Telegram user."""
DEFAULT_NAMES = {"zh": "顾客", "en": "Guest"}


def terminal_user(name: str | None, user: int | None) -> int:
    """The terminal customer's id: ``--user N`` is customer -N; ``--name`` alone gives
    each name its own customer (the same name continues its conversation); neither is
    the one default customer. Always negative: never a real Telegram user."""
    if user is not None:
        return -abs(user) if user else TERMINAL_USER
    if not name:
        return TERMINAL_USER
    return -(2 + zlib.crc32(name.strip().encode("utf-8")) % 1_000_000_000)


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


def more_lines(source: TextIO, window: float) -> tuple[list[str], bool]:
    """The lines that follow within `window` seconds of each other (a terminal delivers
    a line at a time, so select() sees each one), and whether input ended meanwhile."""
    lines: list[str] = []
    while len(lines) < MAX_MERGED and readable([source], [], [], window)[0]:
        line = source.readline()
        if not line:
            return lines, True
        if line.strip():
            lines.append(line.rstrip("\r\n"))
    return lines, False


def close_open_conversations(db: Database, user_id: int) -> None:
    with db.session() as session:
        customer = find_customer(session, telegram_id=user_id)
        if customer is None:
            return
        for conversation in session.exec(
            select(Conversation).where(
                Conversation.customer_id == customer.id,
                Conversation.status != ConversationStatus.CLOSED,
            )
        ):
            conversation.status = ConversationStatus.CLOSED
            session.add(conversation)
        session.commit()


async def chat(
    settings: Settings,
    *,
    name: str | None,
    language: str | None,
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
    window = settings.merge_window.total_seconds() if interactive else 0.0
    ended = False
    try:
        while not ended:
            if interactive:
                out.write("you> ")
                out.flush()
            line = await loop.run_in_executor(None, source.readline)
            if not line:
                break
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if not interactive:
                out.write(f"you> {line}\n")  # a scripted chat reads as a transcript
            payload = choose(line, buttons)
            if window > 0 and payload is None and engine.gathers(user_id):
                more, ended = await loop.run_in_executor(None, more_lines, source, window)
                line = "\n".join([line, *more])
            if name is None:
                # No --name: "Guest" or "顾客" in the language the customer writes in.
                guessed = language or detect_language(line, settings.default_language)[0]
                name = DEFAULT_NAMES.get(guessed, DEFAULT_NAMES["en"])
            result = await engine.handle(
                Incoming(
                    user_id=user_id,
                    chat_id=user_id,
                    name=name,
                    text=line,
                    payload=payload,
                    language_hint=language or settings.default_language,
                    channel="terminal",
                )
            )
            for reply in result.replies:
                out.write(format_reply(reply) + "\n")
            if result.replies:
                # The numbers pick from this turn's buttons; after a turn without any,
                # "1" is typed text, as in Telegram (not a press of an older keyboard).
                buttons = [button for reply in result.replies for button in reply.buttons]
            out.flush()
    finally:
        await engine.close()
        db.dispose()
    return 0
