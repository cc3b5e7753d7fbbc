"""The policy's thresholds, word lists and readings of one message (a question back,
a fragment, a full account, a threat, safety said), shared by every step.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from actions.complaint import mostly_entity
from actions.facts import load_facts, settles_a_fact
from bot.nlu.labels import COMPLAINT_TYPES
from bot.payloads import Choice
from bot.store import Ticket

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn

COMPLAINT_CONFIDENCE = 0.4
"""Below this the bot asks what the customer wants instead of assuming a complaint."""
NEAR_TIE = 0.15
NEAR_TIE_FLOOR = 0.25
MAJOR_COMPLAIN_FLOOR = 0.1
REQUEST_HUMAN_CONFIDENCE = 0.5
MEDIA_OVER_THREAT = 0.9
MAX_RESTATEMENTS = 2
RAISE_WHILE_WAITING = 0.95
"""A waiting ticket is raised on a key phrase, or a model this sure about a message of a
few words at least: a raise alerts a supervisor, and small talk while waiting ("the
bank sent me a letter") or a fragment ("last week") can lean."""
MAX_DENIALS = 2
MAX_UNCLEAR = 2
"""Restatements put again in other words before the types are offered as buttons."""
"""Restatements the customer may turn down before the bot stops guessing the type."""
MIN_NOTE = 3
MAX_WORDS = 1000
"""Characters of the customer's story kept as "in your words" (the transcript has all)."""
"""Shorter free text at the read-back (a stray "3") repeats the question, not a note."""
# A button's outcome -> (motive, desired outcome).
OUTCOMES = {
    "refund": ("compensation", "refund"),
    "replacement": ("fix", "replacement"),
    "repair": ("fix", "repair"),
    "explanation": ("explanation", "explanation"),
    "apology": ("apology", "apology"),
}
OUTCOME_BUTTONS = [*OUTCOMES, "other"]
CONFIRM_BUTTONS = [
    {"title": "button.yes", "payload": Choice("confirm", "yes").pack()},
    {"title": "button.not_quite", "payload": Choice("confirm", "no").pack()},
]
TYPE_BUTTONS = [
    {"title": f"type.{name}", "payload": Choice("type", name).pack()} for name in COMPLAINT_TYPES
]
UNSURE_BUTTONS = [
    {"title": "button.yes", "payload": Choice("unsure", "yes").pack()},
    {"title": "button.unsure_no", "payload": Choice("unsure", "no").pack()},
]
SAFE_BUTTONS = [
    {"title": "button.all_safe", "payload": Choice("safe", "yes").pack()},
    {"title": "button.someone_hurt", "payload": Choice("safe", "hurt").pack()},
]
MEETS_BUTTONS = [
    {"title": "button.meets_yes", "payload": Choice("meets", "yes").pack()},
    {"title": "button.meets_no", "payload": Choice("meets", "no").pack()},
]
FORGET_BUTTONS = [
    {"title": "button.forget_yes", "payload": Choice("forget", "yes").pack()},
    {"title": "button.forget_no", "payload": Choice("forget", "no").pack()},
]
MENU_BUTTONS = [
    {"title": "menu.complain", "payload": Choice("menu", "complain").pack()},
    {"title": "menu.question", "payload": Choice("menu", "question").pack()},
    {"title": "menu.human", "payload": Choice("menu", "human").pack()},
]


def answers_nothing(turn: Turn) -> bool:
    """A reply that answers nothing ("idk", "你说啥"), or only a date, a number or an
    address where a choice was asked ("last week" to "what would you like?")."""
    if load_facts().is_non_answer(turn.text, turn.language):
        return True
    return mostly_entity(turn.parse or {}, turn.text, ("date", "order_id", "phone", "email"))


SHORT_SIZE = {"en": 4, "zh": 6}
"""Words (en) or characters (zh) of a message that is only a few words."""


def is_short(turn: Turn) -> bool:
    """A few words: "ok thanks", "are you still there", "好的谢谢"."""
    return message_size(turn) <= SHORT_SIZE.get(turn.language, 4)


def acknowledges(turn: Turn) -> bool:
    """ "ok thanks", "好的谢谢", "thanks bye" to "is that all correct?": a yes, not a note for
    the agent."""
    return turn.intent in ("thank", "goodbye") and is_short(turn)


_MEETS_NO = re.compile(
    r"^\s*(?:no+(?:pe)?\b(?!\s*(?:one|body|where)\b)|nah\b|not really\b|not quite\b|"
    r"not at all\b|not exactly\b|不是|不太|不满意|不符合|不行|不可以|不够)[\s,，.。!！~]*",
    re.IGNORECASE,
)
"""A typed "no" to "does that meet what you hoped for?" and where the rest begins ("no one
called me" is no answer to it)."""


def typed_meets(turn: Turn) -> tuple[bool, str] | None:
    """A typed answer to the hand-off's "does that meet what you hoped for?" while it is
    open: (met, the words after a "no"), or None when the message is not one ("will it
    take long?", a photo, a button)."""
    if turn.payload is not None or not turn.text.strip():
        return None
    if not turn.slots.get("meets_asked") or turn.slots.get("meets_answered"):
        return None
    denial = _MEETS_NO.match(turn.text)
    if denial:
        return False, turn.text[denial.end() :].strip()
    if turn.intent == "deny":
        return False, ""
    if turn.intent == "affirm" or acknowledges(turn):
        return True, ""
    return None


def says_something(text: str) -> bool:
    """More than a word or two: "我想要退款", "I wanted a refund" (not "really", "啊")."""
    text = text.strip()
    if re.search("[A-Za-z]", text):
        return len(text.split()) >= 2
    return len("".join(text.split())) >= 3


def short_reply(turn: Turn) -> bool:
    """A yes, no or thanks of a word or two ("对", "ok", "no"): no content of its own."""
    return turn.intent in ("affirm", "deny", "thank") and message_size(turn) <= (
        3 if turn.language == "en" else 4
    )


def message_size(turn: Turn) -> int:
    """How much the customer wrote: words in English, characters (spaces left out) in
    Chinese."""
    text = turn.text.strip()
    return len(text.split()) if turn.language == "en" else len("".join(text.split()))


def is_fragment(turn: Turn) -> bool:
    """A few words that are no question yet ("so my headphones", "关于那个")."""
    if turn.text.strip().endswith(("?", "？")):
        return False
    return message_size(turn) < (4 if turn.language == "en" else 6)


FULL_ACCOUNT_ENTITIES = ("order_id", "product", "date", "amount")
FACT_ENTITIES = ("order_id", "phone", "email", "date")
AROUND_A_FACT = {"en": 4, "zh": 6}
"""Words (en) or characters (zh) besides the fact that still make a message "just the
fact": "order number is SO…", "我的订单号是 SO…"."""


GIVEN_FACTS = ("order_id", "phone", "email")
"""Facts a customer types unasked at any question (a date is usually the answer to it)."""


def names_a_fact(turn: Turn) -> bool:
    """The message is an order number, phone or e-mail with at most a label around it,
    and not a question — a fact given, whatever the question was."""
    if turn.text.rstrip().endswith(("?", "？")):
        return False
    for entity in (turn.parse or {}).get("entities") or []:
        if entity.get("entity") not in GIVEN_FACTS:
            continue
        start, end = int(entity.get("start") or 0), int(entity.get("end") or 0)
        rest = turn.text[:start] + " " + turn.text[end:]
        words = re.findall(r"[A-Za-z']+", rest)
        chars = re.findall(r"[\u4e00-\u9fff]", rest)
        if len(words) <= AROUND_A_FACT["en"] and len(chars) <= AROUND_A_FACT["zh"]:
            return True
    return False


VAGUE_SIZE = {"en": 5, "zh": 8}
"""Shorter than this (words / characters) and naming nothing, a complaint is a feeling."""


def vague(turn: Turn) -> bool:
    """A first complaint that says how the customer feels, not what happened ("this is a
    joke", "worst company ever", "气死我了", "太差劲了"): short, with no product, order,
    date or sum in it and no word that settles a fact. The type model still guesses a
    type for it (气死我了 read as safety, 0.81); a person would ask what happened."""
    if message_size(turn) >= VAGUE_SIZE.get(turn.language, 5):
        return False
    entities = (turn.parse or {}).get("entities") or []
    if any(entity.get("entity") in (*FULL_ACCOUNT_ENTITIES, *FACT_ENTITIES) for entity in entities):
        return False
    return not settles_a_fact(turn.text, turn.language)


def full_account(turn: Turn) -> bool:
    """A first message that already tells the story: long, or of fair length with a
    concrete fact in it (an order number, the product, a date, a sum)."""
    size = message_size(turn)
    long_enough, fair = (40, 12) if turn.language == "en" else (60, 20)
    if size >= long_enough:
        return True
    entities = (turn.parse or {}).get("entities") or []
    return size >= fair and any(e.get("entity") in FULL_ACCOUNT_ENTITIES for e in entities)


CHANGE_WORDS = ("change", "correct", "edit", "fix that", "wrong", "改", "修改", "不对", "更正")
"""Short typed requests to change the read-back ("改一下", "change it"): the change buttons."""


def asks_to_change(text: str) -> bool:
    lowered = text.strip().lower()
    return len(lowered) <= 20 and any(word in lowered for word in CHANGE_WORDS)


_CLAUSES = re.compile(r"[,，.。;；!！?？]+|\s+but\s+|但是|而是")
_DENIED = re.compile(
    r"^\s*(?:no\b|nope\b|not\b|it'?s not\b|it is not\b|it isn'?t\b|isn'?t\b|"
    r"that'?s not\b|(?:it'?s got |it has |it'?s |has )?nothing to do with\b|"
    r"不对|不是(?![很太])|并不是|并非|没说|跟.{0,8}没关系|和.{0,8}没关系|与.{0,8}无关)",
    re.IGNORECASE,
)


def without_denials(text: str) -> str:
    """What a correction says is so, without what it says is not: "不对，是耳机坏了，不是快递"
    is about the earphones, "no, the headphones broke, not the delivery" too. The parts
    that deny ("不是快递", "not the delivery", a bare "no") are left out; if nothing is
    left, the text as it was."""
    parts = [part.strip() for part in _CLAUSES.split(text) if part and part.strip()]
    kept = [part for part in parts if not _DENIED.match(part)]
    if not kept or len(kept) == len(parts):
        return text
    return ", ".join(kept)


@cache
def waiting_topics() -> dict[str, dict[str, tuple[str, ...]]]:
    raw = yaml.safe_load((Path(__file__).parent.parent / "waiting.yml").read_text(encoding="utf-8"))
    return {
        topic: {lang: tuple(str(p).lower() for p in phrases) for lang, phrases in by.items()}
        for topic, by in raw["topics"].items()
    }


def waiting_topic(text: str, language: str) -> str | None:
    """What a waiting customer asks about (waiting.yml), in either language."""
    lowered = text.lower()
    for topic, by_language in waiting_topics().items():
        phrases = (*by_language.get(language, ()), *by_language.get("en", ()))
        if language != "zh":
            phrases += by_language.get("zh", ())
        if any(phrase in lowered for phrase in phrases):
            return topic
    return None


def is_complaint(turn: Turn, faq_matched: bool) -> bool:
    """A complaint when the model says so, or nearly says so and no FAQ fits.

    Plain descriptions of a fault ("the screen flickers all the time") sit between
    `complain` and `inquiry`; treating a near tie as a complaint costs an empathy line
    and a check question ("is that right?"), missing one costs the customer.
    """
    if turn.parse is None:
        return False
    ranking = {item["name"]: float(item["confidence"]) for item in turn.parse["intent_ranking"]}
    complain = ranking.get("complain", 0.0)
    major = turn.signals & {"major_media", "repeat_contact"}
    phrased = major & set(turn.parse.get("signal_phrases") or [])
    if phrased or (major and complain >= MAJOR_COMPLAIN_FLOOR):
        # "hello again" lights repeat_contact on the word "again" alone: a greeting.
        return True
    if turn.intent == "complain":
        return complain >= COMPLAINT_CONFIDENCE
    if faq_matched or complain < NEAR_TIE_FLOOR:
        return False
    if turn.intent in ("affirm", "deny"):
        # A yes/no with no question open is not an answer: "parcel still not here".
        return True
    if turn.intent not in ("inquiry", "praise"):
        return False  # a greeting, thanks or goodbye is what it says
    return turn.intent_confidence - complain <= NEAR_TIE


SAFETY_WHILE_WAITING = 0.7
"""How sure the type model must be that a waiting customer's complaint is about safety
before the ticket jumps the queue."""


def about_safety(ticket: Ticket) -> bool:
    """A safety complaint's ticket: its safety question and priority were settled when it
    was made, and more about the hazard is more of the same case."""
    return (ticket.summary_data or {}).get("complaint_type") == "safety"


def safety_said(turn: Turn) -> bool:
    """A complaint about something unsafe (fire, injury, health), said plainly."""
    if not is_complaint(turn, faq_matched=False):
        return False
    kind = turn.parse.get("complaint_type") if turn.parse else None
    return (
        kind is not None and kind["name"] == "safety" and kind["confidence"] >= SAFETY_WHILE_WAITING
    )


def is_threat(turn: Turn) -> bool:
    """A threat of harm ends the bot's part: a key phrase or a confident model only.

    "再不处理我就去12315" (if you don't fix it I'll go to the regulator) is major, not a
    threat, but its "if not…, I'll…" shape makes the model lean to threat. When the
    message is confidently major_media and no harm phrase matched, it counts as major.
    """
    if "threat_of_harm" not in turn.signals:
        return False
    parse = turn.parse or {}
    if "threat_of_harm" in (parse.get("signal_phrases") or []):
        return True
    scores = parse.get("signal_scores") or {}
    return float(scores.get("major_media") or 0) < MEDIA_OVER_THREAT


def outcome_buttons() -> list[dict[str, str]]:
    return [
        {"title": f"outcome.{name}", "payload": Choice("outcome", name).pack()}
        for name in OUTCOME_BUTTONS
    ]
