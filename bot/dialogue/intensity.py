"""How upset a message reads: an agitated customer gets a stronger acknowledgement and
an open question to tell more before anything else (shared/domain.md §1, 激动型)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from bot.nlu.labels import Parse

AGITATED = 2
"""Score from which a message counts as agitated."""
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_BANGS = re.compile(r"[!！]{2,}|[?？]{2,}|[!！][?？]|[?？][!！]")


@cache
def _words() -> dict[str, tuple[str, ...]]:
    raw = yaml.safe_load((Path(__file__).parent / "intensity.yml").read_text(encoding="utf-8"))
    return {lang: tuple(word.lower() for word in words) for lang, words in raw.items()}


def intensity(text: str, parse: Parse) -> int:
    """0 calm, 1 annoyed, 2+ agitated: shouting, strong words, abuse, venting, repeats."""
    score = 0
    if _BANGS.search(text) or text.count("!") + text.count("！") >= 3:
        score += 1
    if len(_CAPS_WORD.findall(text)) >= 2:
        score += 1
    lowered = text.lower()
    hits = sum(1 for words in _words().values() for word in words if word in lowered)
    score += min(hits, 2)
    signals = set(parse.get("signals") or [])
    if "abusive" in signals:
        score += 2
    if "repeat_contact" in signals:
        score += 1
    motive = parse.get("motive")
    if motive and motive["name"] == "venting" and motive["confidence"] >= 0.5:
        score += 1
    return score
