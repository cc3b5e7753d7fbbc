"""Replies as Telegram messages: escaped HTML, inline keyboards, the 4,096 limit."""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.dialogue import Button

TEXT_LIMIT = 4096
CALLBACK_LIMIT = 64
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s*")


def escape(text: str) -> str:
    """Customer words inside our messages are text, never markup."""
    return html.escape(text, quote=False)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a line, else a sentence, else a space."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() < limit]
            cut = ends[-1] if ends and ends[-1] >= limit // 2 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest.strip():
        pieces.append(rest)
    return pieces


def keyboard(buttons: list[Button]) -> InlineKeyboardMarkup | None:
    """One button a row; two a row when there are many short ones."""
    if not buttons:
        return None
    for button in buttons:
        if len(button.payload.encode()) > CALLBACK_LIMIT:
            raise ValueError(f"callback_data over 64 bytes: {button.payload!r}")
    short = len(buttons) > 4 and all(len(b.label) <= 14 for b in buttons)
    width = 2 if short else 1
    rows = [
        [InlineKeyboardButton(b.label, callback_data=b.payload) for b in buttons[i : i + width]]
        for i in range(0, len(buttons), width)
    ]
    return InlineKeyboardMarkup(rows)
