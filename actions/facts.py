"""The facts each complaint type needs (data/facts.yml) and how an answer is read.

Shared by the actions (which validate) and the engine (which draws the buttons), so
the action server and the bot read the same file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"
OTHER = "other"
NEGATIVE_YESNO = "no"
NOT_GIVEN = "not_given"
"""A fact asked twice and answered with nothing usable: recorded as not given (the
summary says so) instead of storing "idk" or "the one from last week" as the value."""
_EDGE_PUNCTUATION = " \t\n.,!?;:~…。，！？；：、\"'“”‘’()（）"

# Order numbers: a shop prefix and digits, '#' and digits, or a long bare number. The
# same shapes as nlu_data/*/entities.yml, anchored: an answer must be one whole number.
ORDER_ID = re.compile(r"(?:[A-Za-z]{2,4}[-_]?\d{6,20}|#\d{5,20}|\d{10,20})")
_ORDER_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])" + ORDER_ID.pattern + r"(?![A-Za-z0-9])")
_AMOUNT = re.compile(r"(\d+(?:[.,]\d{1,2})?)")


@dataclass(frozen=True)
class Slot:
    """One fact: how it is asked and how an answer is read."""

    name: str
    kind: str
    entities: tuple[str, ...] = ()  # NLU entities that fill the slot when the customer said it
    choices: tuple[str, ...] = ()
    negative: str | None = None
    bucket_days: tuple[int, ...] = ()
    terms: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    from_wait: bool = False
    """A date read from a wait the customer states ("2 weeks and still nothing": two
    weeks ago), when no date was said."""

    def options(self) -> tuple[str, ...]:
        """The button values, in order, ``other`` last where free text is allowed."""
        if self.kind == "yesno":
            return ("yes", "no")
        if self.kind in ("choice", "date"):
            return (*self.choices, OTHER)
        if self.negative:
            return (self.negative,)
        return ()


@dataclass(frozen=True)
class FactSpec:
    slots: dict[str, Slot]
    types: dict[str, tuple[str, ...]]
    essential: dict[str, tuple[str, ...]]
    outcome_defaults: dict[str, str]
    outcome_motives: dict[str, str]
    outcome_terms: dict[str, dict[str, tuple[str, ...]]]
    non_answers: dict[str, frozenset[str]] = field(default_factory=dict)

    def volunteered(self) -> tuple[str, ...]:
        """Slots kept whenever the customer gives them, whatever the type asks: those no
        type asks for (a contact), and facts that mean one thing wherever they are said
        (an order number, a sum) — "order 55120934" in a safety complaint is kept."""
        asked = {name for names in self.types.values() for name in names}
        return tuple(
            name
            for name, slot in self.slots.items()
            if name not in asked or slot.kind in ("order_id", "amount")
        )

    def is_non_answer(self, text: str, language: str) -> bool:
        """ "idk", "whatever", "就这样", "what?": a reply that answers nothing.

        Also any short question ("what repair?", "啥意思？"): a customer who asks back
        has not answered, and their question is not a fact about the complaint.
        """
        stripped = text.strip()
        core = stripped.strip(_EDGE_PUNCTUATION).lower()
        if not core:
            return True
        for lang in (language, *[other for other in self.non_answers if other != language]):
            if core in self.non_answers.get(lang, frozenset()):
                return True
        question = asks_back(text)
        return question and not any(char.isdigit() for char in core) and len(core) <= 40

    def outcome(self, motive: str | None, text: str, language: str) -> str | None:
        """The outcome the customer's words name, else the motive's default."""
        named = self.named_outcome(text, language)
        if named is not None:
            return named
        return self.outcome_defaults.get(motive) if motive else None

    def named_outcome(self, text: str, language: str) -> str | None:
        """An outcome the customer asked for in so many words ("refund", "换货")."""
        return longest_match(self.outcome_terms, text, language)

    def required(self, complaint_type: str | None, *, major: bool = False) -> tuple[str, ...]:
        """The slots asked for a type; only the essential ones for a major complaint."""
        kind = complaint_type if complaint_type in self.types else "other"
        return self.essential[kind] if major else self.types[kind]


@cache
def load_facts(path: Path = DATA / "facts.yml") -> FactSpec:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    slots = {}
    for name, spec in raw["slots"].items():
        terms = {
            lang: {str(value): tuple(words) for value, words in by_value.items()}
            for lang, by_value in (spec.get("terms") or {}).items()
        }
        entity = spec.get("entity")
        slots[name] = Slot(
            name=name,
            kind=spec["kind"],
            entities=tuple(entity) if isinstance(entity, list) else (entity,) if entity else (),
            choices=tuple(spec.get("choices", ())),
            negative=None if spec.get("negative") is None else str(spec["negative"]),
            bucket_days=tuple(spec.get("bucket_days", ())),
            terms=terms,
            from_wait=bool(spec.get("from_wait", False)),
        )
    types = {name: tuple(spec["slots"]) for name, spec in raw["types"].items()}
    essential = {name: tuple(spec["essential"]) for name, spec in raw["types"].items()}
    for kind, names in types.items():
        unknown = [slot for slot in names if slot not in slots]
        if unknown:
            raise ValueError(f"facts.yml: type {kind} names unknown slots {unknown}")
    outcomes = raw["outcomes"]
    return FactSpec(
        slots=slots,
        types=types,
        essential=essential,
        outcome_defaults=dict(outcomes["defaults"]),
        outcome_motives=dict(outcomes["motives"]),
        outcome_terms={
            lang: {value: tuple(words) for value, words in by_value.items()}
            for lang, by_value in outcomes["terms"].items()
        },
        non_answers={
            lang: frozenset(str(phrase).lower() for phrase in phrases)
            for lang, phrases in (raw.get("non_answers") or {}).items()
        },
    )


@cache
def load_policy(path: Path = DATA / "policy.yml") -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["rules"])


def policy_for(slots: dict[str, Any]) -> str | None:
    """The first policy rule whose conditions hold for what is known."""
    for rule in load_policy():
        if all(
            slots.get(key) in (wanted if isinstance(wanted, list) else [wanted])
            for key, wanted in rule["when"].items()
        ):
            return str(rule["name"])
    return None


def bucket(slot: Slot, day: date, today: date) -> str | None:
    """A date as the slot's bucket (e.g. within_7_days); None for a future date."""
    days = (today - day).days
    if days < 0:
        return None
    for limit, choice in zip(slot.bucket_days, slot.choices, strict=False):
        if days <= limit:
            return choice
    return slot.choices[-1]


def find_term(slot: Slot, text: str, language: str) -> str | None:
    """The choice whose words appear in the text."""
    return longest_match(slot.terms, text, language)


CONFUSED_EN = frozenset(
    (  # noqa: SIM905 - a word list reads better as words
        "what whats what's huh eh hm hmm um uh why how who sorry pardon come again say "
        "said mean meant you your do does did is it this that are the a now so ok okay "
        "wait i i'm im don't dont not understand get confused lost me"
    ).split()
)
"""Words of a message that only says the customer is lost ("what do you mean?",
"sorry, I don't understand"): no fact, no request."""
CONFUSED_ZH = frozenset(
    "什么啥你您说的意思啊嗯哦呃怎么了回事谁是吗呢吧这那个没懂不明白听看我哈干嘛"
)


def confused(text: str) -> bool:
    """A short message made only of confusion words, in either language: "what?",
    "huh", "what do you mean", "你说什么?", "啥意思"."""
    letters = re.sub(r"[^\w\s']", " ", text.lower())
    words = letters.split()
    if not words:
        return False
    if all(word in CONFUSED_EN for word in words):
        return len(words) <= 6
    han = "".join(words)
    return len(han) <= 8 and all(char in CONFUSED_ZH for char in han)


_DONT_KNOW = re.compile(
    r"(?i)^\s*(?:i\s+)?(?:idk|dunno|don'?t know|do not know|not sure|no idea|no clue|"
    r"can'?t remember|cannot remember|don'?t remember|who knows|can'?t recall)\b"
    r"|^\s*(?:我也)?(?:不知道|不清楚|不记得|记不清|记不得|忘了|忘记了|不晓得|不确定)"
)


def says_dont_know(text: str) -> bool:
    """A short reply that says the customer does not know: "idk", "not sure tbh",
    "记不清了" (not a choice they meant, nor a question back)."""
    return len(text) <= 40 and _DONT_KNOW.match(text) is not None


def asks_back(text: str) -> bool:
    """Whether a reply is put as a question ("what repair?", "你说啥", "有吗")."""
    core = text.strip().strip(_EDGE_PUNCTUATION).lower()
    return text.strip().endswith(("?", "？")) or core.endswith(("吗", "呢", "啥"))


def _plain(text: str) -> str:
    return text.lower().replace("'", "").replace("\u2019", "")


_ENDINGS = "s|es|ed|d|ing|y|ment|ments|al"


@cache
def _word_pattern(word: str) -> re.Pattern[str]:
    """A term as it occurs in text: Latin words whole, with an ending ("stain" in
    "stained", "mould" in "mouldy", "reimburse" in "reimbursement", "smoke" in "smoking";
    not "late" in "later" or "chocolate", nor "ad" in "bad"); Chinese as is. A `*` in a
    term stands for a few words between ("charged * twice": "charged me £12.99 twice";
    "扣了*两次": "扣了我299元两次")."""
    plain = _plain(word)
    if "*" in plain:
        parts = [part.strip() for part in plain.split("*")]
        latin = any(re.search("[a-z]", part) for part in parts)
        gap = r"(?:\s+\S+){0,2}\s+" if latin else r"[^。！？!?，,.]{0,8}?"
        return re.compile(gap.join(_word_pattern(part).pattern for part in parts))
    if not re.search("[a-z]", plain):
        return re.compile(re.escape(plain))
    endings = _ENDINGS if len(plain) > 3 else "s"  # "ads", never "add" for "ad"
    forms = rf"{re.escape(plain)}(?:{endings})?"
    if plain.endswith("e") and plain[-2:-1].isalpha():
        forms += rf"|{re.escape(plain[:-1])}(?:ing|y)"  # replace → replacing, smoke → smoky
    return re.compile(rf"(?<![a-z])(?:{forms})(?![a-z])")


def settles_a_fact(text: str, language: str) -> bool:
    """Whether the text has a word that settles one of the facts ("never arrived",
    "charged twice", "黑屏"): it says what happened, not only how the customer feels."""
    return any(
        slot.terms and find_term(slot, text, language) for slot in load_facts().slots.values()
    )


def longest_match(
    terms: dict[str, dict[str, tuple[str, ...]]], text: str, language: str
) -> str | None:
    """The value whose word occurs in the text, the longest word winning; the
    message's language is tried first, then the others (mixed-language chat).
    Apostrophes do not count: "hasnt arrived" is "hasn't arrived"."""
    lowered = _plain(text)
    for lang in (language, *[other for other in terms if other != language]):
        best: tuple[int, str] | None = None
        for value, words in terms.get(lang, {}).items():
            for word in words:
                if (best is None or len(word) > best[0]) and _word_pattern(word).search(lowered):
                    best = (len(word), value)
        if best is not None:
            return best[1]
    return None


def order_id_in(text: str) -> str | None:
    found = _ORDER_ID_IN_TEXT.search(text)
    return found.group(0) if found else None


def amount_in(text: str) -> float | None:
    found = _AMOUNT.search(text.replace(",", "") if text.count(",") == 1 else text)
    return float(found.group(1).replace(",", ".")) if found else None
