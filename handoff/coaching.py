"""Coaching: an agent message with a phrase to avoid (shared/domain.md §7) is held,
and the agent is shown a better way to say it. The phrases are data:
bot/dialogue/forbidden.yml, the same list the bot's own wording is checked against."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

FORBIDDEN = Path(__file__).resolve().parent.parent / "bot" / "dialogue" / "forbidden.yml"


@cache
def _phrases() -> tuple[str, ...]:
    raw = yaml.safe_load(FORBIDDEN.read_text(encoding="utf-8"))
    phrases = {str(p).lower() for lang in ("zh", "en") for p in raw.get(lang, [])}
    return tuple(sorted(phrases, key=len, reverse=True))


def phrase_to_avoid(text: str) -> str | None:
    """The first phrase to avoid found in the text (the longest one), if any."""
    lowered = text.lower()
    return next((phrase for phrase in _phrases() if phrase in lowered), None)
