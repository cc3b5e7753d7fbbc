"""Conversation quality, measured on scripted customers (tests/dialogue/customers.yml).

A scripted customer sends an opening message, then answers whatever the bot asks
from its persona. Each conversation is scored on what shared/domain.md asks of a good
agent: empathy before the first fact question, no fact asked again, a read-back with
type, motive, facts, desired outcome and the customer's words; and on listening: junk
answers ("idk", "就这样") not stored, a correction typed at the read-back applied, the
empathy line naming something in the customer's own words, a question asked while
waiting answered.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import select

from actions.facts import load_facts
from bot.dialogue.engine import Engine
from bot.dialogue.responses import Responses
from bot.dialogue.turn import Incoming, Reply
from bot.dialogue.wording import SAME_PARAGRAPH
from bot.store import Ticket

MAX_TURNS = 25
SUMMARY_FIELDS = ("complaint_type", "motive", "desired_outcome", "facts", "customer_words")


@dataclass(frozen=True)
class Customer:
    id: str
    lang: str
    name: str
    kind: str
    type: str
    opening: str
    more: str
    given: tuple[str, ...]
    answers: dict[str, str]
    outcome: str
    open_answer: str
    expect: dict[str, Any]
    junk: dict[str, str] = field(default_factory=dict)
    """Per fact slot, a non-answer typed the first time it is asked ("idk")."""
    correction: str = ""
    """Typed at the first read-back instead of "yes" ("no, it's 55120934 and …")."""
    corrected: dict[str, str] = field(default_factory=dict)
    """What the ticket holds after the correction: fact slots, or `desired_outcome`."""
    waiting: str = ""
    """A question typed after the hand-off ("how long will this take?")."""


def load_customers(path: Path) -> list[Customer]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["customers"]
    return [
        Customer(
            id=str(item["id"]),
            lang=str(item["lang"]),
            name=str(item["name"]),
            kind=str(item.get("kind", "type")),
            type=str(item["type"]),
            opening=str(item["opening"]),
            more=str(item.get("more") or item["opening"]),
            given=tuple(item.get("given") or ()),
            answers={str(k): str(v) for k, v in (item.get("answers") or {}).items()},
            outcome=str(item.get("outcome") or "@other"),
            open_answer=str(item.get("open_answer") or "-"),
            expect=dict(item.get("expect") or {}),
            junk={str(k): str(v) for k, v in (item.get("junk") or {}).items()},
            correction=str(item.get("correction") or ""),
            corrected={str(k): str(v) for k, v in (item.get("corrected") or {}).items()},
            waiting=str(item.get("waiting") or ""),
        )
        for item in raw
    ]


@dataclass
class Played:
    """One scripted conversation and its scores."""

    customer: Customer
    exchanges: list[tuple[str, list[Reply]]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    typed: list[bool] = field(default_factory=list)
    """Per turn: typed text (parsed by the NLU) rather than a pressed button."""
    continued: list[bool] = field(default_factory=list)
    """Per turn: a press whose first reply takes the pressed message's place (an edit)."""
    status: str = "open"
    ticket: dict[str, Any] = field(default_factory=dict)
    complaint_type: str | None = None
    abuse_strikes: int = 0
    used: set[str] = field(default_factory=set)
    """Junk answers and the correction already typed (each is typed once)."""
    after: list[str] = field(default_factory=list)
    """Responses to the question typed while waiting."""

    @property
    def responses(self) -> list[str]:
        return [
            key for _, replies in self.exchanges for reply in replies for key in reply.responses
        ]

    @property
    def asked(self) -> list[str]:
        """Fact slots asked, in order (closed questions only)."""
        slots = load_facts().slots
        asked = []
        for key in self.responses:
            name = key.removeprefix("utter_ask_")
            if key.startswith("utter_ask_") and name in slots:
                asked.append(name)
        return asked

    @property
    def empathy_first(self) -> bool:
        keys = self.responses
        empathy = next((i for i, k in enumerate(keys) if k.startswith("utter_empathy_")), None)
        slots = load_facts().slots
        first_fact = next(
            (i for i, k in enumerate(keys) if k.removeprefix("utter_ask_") in slots), None
        )
        if empathy is None:
            return False
        return first_fact is None or empathy < first_fact

    @property
    def reasked(self) -> list[str]:
        """Facts asked although the customer already gave them, or asked twice unprompted."""
        again = [slot for slot in self.asked if slot in self.customer.given]
        keys = self.responses
        seen: set[str] = set()
        for index, key in enumerate(keys):
            slot = key.removeprefix("utter_ask_")
            if slot not in load_facts().slots:
                continue
            previous = keys[index - 1] if index else ""
            if slot in seen and not previous.startswith("utter_invalid_"):
                again.append(slot)
            seen.add(slot)
        return again

    @property
    def api_calls(self) -> int:
        """Bot API calls to the customer in Telegram, as bot/telegram/app.py makes them:
        a sendMessage per reply, and per button press an edit of the pressed message —
        which is the first reply itself when the press continues that message in place
        (answerCallbackQuery not counted)."""
        calls = 0
        for (_, replies), typed, continued in zip(
            self.exchanges, self.typed, self.continued, strict=True
        ):
            calls += len(replies) + (0 if typed or (continued and replies) else 1)
        return calls

    @property
    def junk_stored(self) -> list[str]:
        """Junk answers that ended up in the ticket's facts or desired outcome."""
        summary = self.ticket.get("summary_data") or {}
        stored = [str(v).lower() for v in (summary.get("facts") or {}).values()]
        stored.append(str(summary.get("outcome_text") or "").lower())
        return [
            junk
            for junk in self.customer.junk.values()
            if any(junk.lower().strip(" .!?。！？") in value for value in stored)
        ]

    @property
    def correction_applied(self) -> bool | None:
        """Whether every field the correction names holds its new value (None: no
        correction in this persona)."""
        if not self.customer.correction:
            return None
        summary = self.ticket.get("summary_data") or {}
        facts = summary.get("facts") or {}
        return all(
            str(summary.get(name) if name in summary else facts.get(name)) == value
            for name, value in self.customer.corrected.items()
        )

    @property
    def waiting_answered(self) -> bool | None:
        if not self.customer.waiting:
            return None
        return any(
            key.startswith("utter_waiting_") and key != "utter_handoff_waiting"
            for key in self.after
        )

    def empathy_named(self, template_words: set[str]) -> bool | None:
        """Whether the first empathy paragraph holds a word the customer typed before it
        that is in no empathy or greeting template (so it came from what they said).
        None: no empathy was said."""
        typed: set[str] = set()
        for said, replies in self.exchanges:
            typed |= words(said, self.customer.lang)
            for reply in replies:
                paragraph = _empathy_paragraph(reply)
                if paragraph is not None:
                    mine = words(paragraph, self.customer.lang) - template_words
                    return bool(mine & typed)
        return None

    @property
    def summary_missing(self) -> list[str]:
        summary = self.ticket.get("summary_data") or {}
        missing = [name for name in SUMMARY_FIELDS if not summary.get(name)]
        if "desired_outcome" in missing and summary.get("outcome_text"):
            missing.remove("desired_outcome")
        return missing


def _answer(value: str, slot: str | None, prefix: str) -> tuple[str | None, str | None]:
    """(text, payload) for a persona's answer; "@x" presses the button with value x."""
    if value.startswith("@"):
        choice = value[1:]
        return choice, f"{prefix}:{slot}={choice}" if slot else f"{prefix}:{choice}"
    return value, None


def _answer_for(customer: Customer, slot: str) -> str:
    """The persona's answer; for a question it did not expect (the bot read another
    type), the first button, as a person in a hurry would tap."""
    options = load_facts().slots[slot].options()
    return customer.answers.get(slot, "@" + options[0] if options else "-")


def next_move(
    customer: Customer, keys: list[str], last_slot: str | None, used: set[str] | None = None
) -> tuple[str | None, str | None, str | None]:
    """What the scripted customer says to the bot's last message: (text, payload, slot).
    A junk answer or the correction is typed once (noted in `used`)."""
    slots = load_facts().slots
    used = set() if used is None else used
    for key in reversed(keys):
        name = key.removeprefix("utter_ask_")
        if key.startswith("utter_ask_") and name in customer.junk and name not in used:
            used.add(name)
            return customer.junk[name], None, name
        if key == "utter_summary_confirm" and customer.correction and "@correction" not in used:
            used.add("@correction")
            return customer.correction, None, last_slot
        name = key.removeprefix("utter_ask_")
        if key.startswith("utter_ask_") and key.endswith("_open"):
            return customer.open_answer, None, last_slot
        if key in ("utter_ask_tell_more", "utter_misunderstood_open"):
            return customer.more, None, last_slot
        if key == "utter_ask_safe_now":
            hurt = customer.answers.get("injury", "@no") not in ("@no", "no")
            return "", "safe:hurt" if hurt else "safe:yes", last_slot
        if key.startswith("utter_restate_"):
            return "yes", "confirm:yes", last_slot
        if key == "utter_ask_outcome":
            text, payload = _answer(customer.outcome, None, "outcome")
            return text, payload, last_slot
        if key == "utter_ask_outcome_other":
            return customer.outcome.lstrip("@"), None, last_slot
        if key == "utter_ask_other_text" and last_slot:
            return customer.answers.get(last_slot, "-").lstrip("@"), None, last_slot
        if key.startswith("utter_ask_") and name in slots:
            text, payload = _answer(_answer_for(customer, name), name, "slot")
            return text, payload, name
        if key.startswith("utter_invalid_") and last_slot:
            text, payload = _answer(_answer_for(customer, last_slot), last_slot, "slot")
            return text, payload, last_slot
        if key == "utter_summary_confirm":
            return "yes", "summary:yes", last_slot
    return None, None, last_slot


async def play(engine: Engine, customer: Customer, user_id: int) -> Played:
    played = Played(customer=customer)
    text: str | None = customer.opening
    payload: str | None = None
    slot: str | None = None
    result = None
    for _ in range(MAX_TURNS):
        if text is None and payload is None:
            break
        started = time.perf_counter()
        result = await engine.handle(
            Incoming(
                user_id=user_id,
                chat_id=user_id,
                name=customer.name,
                text=text,
                payload=payload,
                language_hint=customer.lang,
                channel="script",
            )
        )
        played.latencies.append(time.perf_counter() - started)
        played.typed.append(payload is None)
        played.continued.append(result.continues)
        played.exchanges.append((text or "", result.replies))
        if result.status != "open":
            break
        keys = [key for reply in result.replies for key in reply.responses]
        text, payload, slot = next_move(customer, keys, slot, played.used)
    if result is not None and result.status == "handed_off" and customer.waiting:
        waited = await engine.handle(
            Incoming(
                user_id=user_id,
                chat_id=user_id,
                name=customer.name,
                text=customer.waiting,
                language_hint=customer.lang,
                channel="script",
            )
        )
        played.after = [key for reply in waited.replies for key in reply.responses]
    if result is not None:
        played.status = result.status
        with engine.db.session() as session:
            ticket = session.exec(
                select(Ticket).where(Ticket.conversation_id == result.conversation_id)
            ).first()
            if ticket is not None:
                played.ticket = ticket.model_dump()
        played.abuse_strikes = sum(
            1 for key in played.responses if key.startswith("utter_abuse_strike_")
        )
        summary = played.ticket.get("summary_data") or {}
        played.complaint_type = summary.get("complaint_type")
    return played


def figures(runs: list[Played]) -> dict[str, Any]:
    """The issue's quality figures over all scripted conversations."""
    latencies = sorted(x for run in runs for x in run.latencies)
    complaints = [run for run in runs if run.ticket]
    return {
        "conversations": len(runs),
        "turns": len(latencies),
        "handed_off": sum(run.status == "handed_off" for run in runs),
        "empathy_before_first_fact_question": _share(run.empathy_first for run in runs),
        "facts_reasked": sum(len(run.reasked) for run in runs),
        "facts_reasked_by_language": {
            lang: sum(len(run.reasked) for run in runs if run.customer.lang == lang)
            for lang in ("zh", "en")
        },
        "api_calls_by_language": {
            lang: [run.api_calls for run in complaints if run.customer.lang == lang]
            for lang in ("zh", "en")
        },
        "junk_stored_by_language": {
            lang: (
                sum(len(run.junk_stored) for run in runs if run.customer.lang == lang),
                sum(len(run.customer.junk) for run in runs if run.customer.lang == lang),
            )
            for lang in ("zh", "en")
        },
        "corrections_applied_by_language": _counted(runs, lambda run: run.correction_applied),
        "waiting_answered_by_language": _counted(runs, lambda run: run.waiting_answered),
        "empathy_named_by_language": _counted(
            runs, lambda run: run.empathy_named(template_words(run.customer.lang))
        ),
        "summaries_complete": _share(not run.summary_missing for run in complaints),
        "type_as_scripted": _share(run.complaint_type == run.customer.type for run in complaints),
        "turn_p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
        "turn_p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        if latencies
        else 0.0,
    }


def _empathy_paragraph(reply: Reply) -> str | None:
    """The paragraph of the reply that holds its empathy line, if it has one (parts are
    paragraphs, except those the engine runs on: after a brief greeting, and
    SAME_PARAGRAPH)."""
    index = -1
    previous = ""
    for key in reply.responses:
        if index < 0 or not (previous == "utter_greet_brief" or key in SAME_PARAGRAPH):
            index += 1
        if key.startswith("utter_empathy_"):
            return reply.text.split("\n\n")[index]
        previous = key
    return None


def _counted(runs: list[Played], score: Any) -> dict[str, tuple[int, int]]:
    """Per language: (conversations where `score` is true, where it applies)."""
    counted: dict[str, tuple[int, int]] = {}
    for lang in ("zh", "en"):
        scores = [score(run) for run in runs if run.customer.lang == lang]
        applies = [value for value in scores if value is not None]
        counted[lang] = (sum(bool(value) for value in applies), len(applies))
    return counted


def words(text: str, language: str) -> set[str]:
    """Words to compare a reply with what the customer typed: numbers ("59.99"), and
    English words of 3+ letters, lowercased; for Chinese, every two characters in a
    row."""
    numbers = set(re.findall(r"\d+(?:[.,]\d+)?", text))
    if language == "zh":
        han = re.findall(r"[\u4e00-\u9fff]+", text)
        return numbers | {run[i : i + 2] for run in han for i in range(len(run) - 1)}
    return numbers | set(re.findall(r"[a-z']{3,}", text.lower()))


_TEMPLATE_WORDS: dict[str, set[str]] = {}


def template_words(language: str) -> set[str]:
    """The words of every empathy and greeting template (placeholders left out): a
    word of the customer's that is not among them came from what they said."""
    if language not in _TEMPLATE_WORDS:
        responses = Responses()
        pack = responses.packs[language].responses
        found: set[str] = set()
        for key in pack:
            if key.startswith(("utter_empathy_", "utter_greet")):
                for text in responses.variations(key, language):
                    found |= words(re.sub(r"\{[a-z_]+\}", " ", text), language)
        _TEMPLATE_WORDS[language] = found
    return _TEMPLATE_WORDS[language]


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(bool(v) for v in values) / len(values) if values else 0.0
