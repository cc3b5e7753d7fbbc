"""Text for Telegram's HTML parse mode, with nothing of Telegram in it: escaping what
people wrote, and cutting a long text under the 4,096-character limit. Used by the
Telegram side, the staff desk and the reports alike (the reports and the desk write rows
for the sender; they never import python-telegram-bot for this)."""

from __future__ import annotations

import html
import re

TEXT_LIMIT = 4096
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
