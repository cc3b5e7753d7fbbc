"""Conversation quality, measured on scripted customers (tests/dialogue/customers.yml).

A scripted customer sends an opening message, then answers whatever the bot asks
from its persona. Each conversation is scored on what shared/domain.md asks of a good
agent: empathy before the first fact question, no fact asked again, a read-back with
type, motive, facts, desired outcome and the customer's words.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import select

from actions.facts import load_facts
from bot.dialogue.engine import Engine
from bot.dialogue.turn import Incoming, Reply
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
    customer: Customer, keys: list[str], last_slot: str | None
) -> tuple[str | None, str | None, str | None]:
    """What the scripted customer says to the bot's last message: (text, payload, slot)."""
    slots = load_facts().slots
    for key in reversed(keys):
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
        text, payload, slot = next_move(customer, keys, slot)
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
        "summaries_complete": _share(not run.summary_missing for run in complaints),
        "type_as_scripted": _share(run.complaint_type == run.customer.type for run in complaints),
        "turn_p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
        "turn_p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        if latencies
        else 0.0,
    }


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(bool(v) for v in values) / len(values) if values else 0.0
