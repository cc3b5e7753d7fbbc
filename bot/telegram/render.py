"""Replies as Telegram messages: inline keyboards. Escaping and the 4,096 cut: bot/html_text.py."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.dialogue import Button
from bot.html_text import TEXT_LIMIT, escape, split_text
from bot.payloads import MAX_BYTES, PayloadError

__all__ = ["CALLBACK_LIMIT", "TEXT_LIMIT", "escape", "keyboard", "split_text"]

CALLBACK_LIMIT = MAX_BYTES


def keyboard(buttons: list[Button]) -> InlineKeyboardMarkup | None:
    """One button a row; two a row when there are many short ones."""
    if not buttons:
        return None
    for button in buttons:
        if len(button.payload.encode()) > CALLBACK_LIMIT:  # made in bot/payloads.py, or data
            raise PayloadError(f"callback_data over {CALLBACK_LIMIT} bytes: {button.payload!r}")
    short = len(buttons) > 4 and all(len(b.label) <= 14 for b in buttons)
    width = 2 if short else 1
    rows = [
        [InlineKeyboardButton(b.label, callback_data=b.payload) for b in buttons[i : i + width]]
        for i in range(0, len(buttons), width)
    ]
    return InlineKeyboardMarkup(rows)
