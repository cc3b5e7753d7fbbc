"""The business steps of a complaint, as rasa-sdk actions.

They read the tracker (slots and the parsed user messages), return events and queue
responses on the dispatcher by name (``utter_*``); wording and sending are the
engine's. Button titles are label keys (``choice.<slot>.<value>``) that the engine
translates, payloads are what the engine reads back.

Why this module is over 400 lines: the rasa-sdk actions of one form (the complaint) and
the validation they share; the action server loads this one module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, EventType, ReminderScheduled, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.facts import (
    NEGATIVE_YESNO,
    NOT_GIVEN,
    OTHER,
    Slot,
    amount_in,
    bucket,
    confused,
    find_term,
    load_facts,
    order_id_in,
    policy_for,
    says_dont_know,
    settles_a_fact,
)
from actions.waits import wait_days, waited
from bot.payloads import Choice, SlotAnswer
from bot.store.models import Priority

MOTIVE_THRESHOLD = 0.8
"""Below this calibrated confidence (and with no outcome named in so many words) the
motive counts as unclear and step 3 asks for it. The motive model is trained on
messages that state a motive, so on ones that do not it still guesses, with less
confidence; asking is cheaper than assuming."""
VIP_TIERS = ("diamond", "gold")
MAJOR_SIGNALS = ("major_media", "repeat_contact")
HABITUAL_COUNT = 3
"""Complaints in 90 days, this one included, that make a customer habitual (习惯型)."""
SIGNAL_FLOORS = {"threat_of_harm": 0.8, "abusive": 0.8, "major_media": 0.7, "repeat_contact": 0.7}
"""What a signal must score before the conversation acts on it. The NLU reports a
signal from 0.5; acting on one (ending the bot's part, flagging a supervisor) needs
more than a lean, and short answers ("#66120934") can lean oddly. A key phrase scores
0.95, so it always counts."""
CAME_BACK = "came_back"
"""The major reason of a customer who comes back about a problem a person already had
(domain §4: "came back several times without a fix"), seen from the record, not the words."""
CARRIED_FACTS = (
    "product", "order_id", "defect", "delivery_issue", "billing_issue", "amount",
    "marketing_issue", "promotion_source", "staff_channel", "contact_channel",
    "safety_issue", "other_issue",
)  # fmt: skip
"""Facts of an earlier complaint about the same problem that still hold: not asked again
(the read-back shows them to check). Dates relative to "now", whether anyone is hurt and
how a repair stands may have changed, and are asked."""
MAJOR_FACTS = {
    ("staff_issue", "passed_around"): "passed_around",
    ("staff_issue", "wrong_information"): "wrong_information",
    ("staff_issue", "dismissive"): "dismissed",
    ("promised_callback", "yes"): "callback_missed",
    ("waiting_since", "earlier"): "long_wait",
}
"""Facts that make an ordinary complaint major (a reason on the card: staff.flag_<reason>)."""
# Intents that answer a closed question negatively / positively.
NEGATIVE_INTENTS = ("deny",)
POSITIVE_INTENTS = ("affirm",)
SURE_INTENT = 0.5
"""An answer is read as a yes, a no or small talk only when the model is this sure of it:
a text with no word the model knows ("idk" typed oddly, a name) gets even odds on every
intent, and its first one is no answer."""
SMALL_TALK = ("thank", "greet", "goodbye")


def slot_buttons(slot: Slot) -> list[dict[str, str]]:
    """The buttons of a closed question: title is a label key, payload sets the slot."""
    buttons = []
    for value in slot.options():
        if slot.kind == "yesno":
            title = f"button.{value}_plain"
        elif value == OTHER:
            title = "button.other"
        elif value == slot.negative:
            title = f"button.{value}"
        else:
            title = f"choice.{slot.name}.{value}"
        buttons.append({"title": title, "payload": SlotAnswer(slot.name, value).pack()})
    return buttons


def strong_signals(parse: Mapping[str, Any]) -> set[str]:
    """The signals of a parse that clear their floor."""
    scores = parse.get("signal_scores") or {}
    fired = set(parse.get("signals") or [])
    return {name for name in fired if float(scores.get(name, 1.0)) >= SIGNAL_FLOORS.get(name, 0.5)}


def _today(tracker: Tracker) -> date:
    today = tracker.get_slot("today")
    return date.fromisoformat(today) if today else datetime.now(UTC).date()


def _now(tracker: Tracker) -> datetime:
    now = tracker.get_slot("now")
    return datetime.fromisoformat(now) if now else datetime.now(UTC)


def _user_messages(tracker: Tracker) -> list[dict[str, Any]]:
    return [event for event in tracker.events if event.get("event") == "user"]


def _language(tracker: Tracker) -> str:
    return str(tracker.get_slot("language") or "zh")


def _order_key(value: Any) -> str:
    return re.sub(r"[\s#:\-]", "", str(value or "")).upper()


def earlier_same_problem(
    earlier: Sequence[Mapping[str, Any]], complaint_type: str | None, order_id: str | None
) -> Mapping[str, Any] | None:
    """The newest earlier complaint about this same problem: the same order number, or
    the same type when one of the two has no order number (two different order numbers
    are two problems). ``earlier``: the engine's ``earlier_complaints`` slot, newest first."""
    mine = _order_key(order_id)
    for item in earlier:
        theirs = _order_key((item.get("facts") or {}).get("order_id"))
        if mine and theirs:
            if mine == theirs:
                return item
        elif complaint_type and item.get("complaint_type") == complaint_type:
            return item
    return None


class ActionRecordComplaint(Action):
    """Classify the complaint from everything said so far and record its flags."""

    def name(self) -> str:
        return "action_record_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        parse = tracker.latest_message or {}
        text = str(parse.get("text") or "")
        language = _language(tracker)
        events: list[EventType] = []

        complaint_type = tracker.get_slot("complaint_type")
        if not tracker.get_slot("type_locked"):
            complaint_type = (parse.get("complaint_type") or {}).get("name") or "other"
            events.append(SlotSet("complaint_type", complaint_type))

        if not tracker.get_slot("motive_locked"):
            facts = load_facts()
            motive = parse.get("motive") or {}
            named = facts.named_outcome(text, language)
            if named is not None:
                chosen: str | None = facts.outcome_motives[named]
            elif float(motive.get("confidence") or 0) >= MOTIVE_THRESHOLD:
                chosen = motive.get("name")
            else:
                chosen = None  # unclear: step 3 asks what outcome they would like
            events.append(SlotSet("motive", chosen))
            outcome = facts.outcome(chosen, text, language) if chosen else None
            events.append(SlotSet("desired_outcome", outcome))

        signals = sorted(set(tracker.get_slot("signals") or []) | strong_signals(parse))
        reasons = [signal for signal in MAJOR_SIGNALS if signal in signals]
        # The same problem as a complaint a person already had (type and order number).
        # A type read from a feeling alone ("this is a joke", 气死我了) is a guess: it
        # counts once the words name something (a product, an order, a fact).
        concrete = (
            tracker.get_slot("type_locked")
            or bool(parse.get("entities"))
            or settles_a_fact(text, language)
        )
        order_slot = load_facts().slots["order_id"]
        same = earlier_same_problem(
            tracker.get_slot("earlier_complaints") or [],
            complaint_type if concrete else None,
            _extract(order_slot, dict(parse), text, language, _today(tracker)),
        )
        if same is not None:
            reasons.append(CAME_BACK)
        events.append(SlotSet("came_back", dict(same) if same is not None else None))
        prior = int(tracker.get_slot("complaints_90d") or 0)
        tier = str(tracker.get_slot("customer_tier") or "regular")
        priority = Priority.HIGH if reasons or tier in VIP_TIERS else Priority.NORMAL
        events += [
            SlotSet("signals", signals),
            SlotSet("major", bool(reasons)),
            SlotSet("major_reasons", reasons),
            SlotSet("habitual", prior + 1 >= HABITUAL_COUNT),
            SlotSet("priority", max(priority, int(tracker.get_slot("priority") or 0))),
        ]
        return events


class ValidateComplaintForm(FormValidationAction):
    """Fill the complaint's facts: from what was already said, then one question at a time.

    Extraction reads every user message of the complaint (entities and key words), so
    a fact the customer gave is never asked. Validation reads the answer to the
    requested slot; after two answers it cannot read, it keeps the customer's words.
    """

    def name(self) -> str:
        return "validate_complaint_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        facts = load_facts()
        return list(
            facts.required(
                tracker.get_slot("complaint_type"), major=bool(tracker.get_slot("major"))
            )
        )

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        facts = load_facts()
        required = await self.required_slots([], dispatcher, tracker, domain)
        language = _language(tracker)
        today = _today(tracker)
        found: dict[str, Any] = {}
        unsure: str | None = None
        for message in _user_messages(tracker):
            parse = message.get("parse_data") or {}
            text = str(message.get("text") or "")
            for name in (*required, *facts.volunteered()):
                if tracker.get_slot(name) is not None or name in found:
                    continue
                value = _extract(facts.slots[name], parse, text, language, today)
                if value is not None:
                    found[name] = value
            unsure = unsure or _unsure_order_id(parse, text)
        # Coming back about the same problem: what they told us then is not asked again.
        told_before = (tracker.get_slot("came_back") or {}).get("facts") or {}
        for name in (*required, *facts.volunteered()):
            given = tracker.get_slot(name) is not None or name in found
            if name in CARRIED_FACTS and not given and told_before.get(name) is not None:
                found[name] = told_before[name]
        events = [SlotSet(name, value) for name, value in found.items()]
        open_order = "order_id" in required and tracker.get_slot("order_id") is None
        if open_order and "order_id" not in found and unsure:
            # A number that may be the order number: the bot asks "is that it?" (a closed
            # question) instead of taking it, or asking for it as if it was never given.
            events.append(SlotSet("unsure_order_id", unsure))
        return events

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        candidates = tracker.slots_to_validate()
        requested = tracker.get_slot("requested_slot")
        events = [
            SlotSet(name, value)
            for name, value in candidates.items()
            if name != requested and (name in load_facts().slots or name.startswith("unsure_"))
        ]
        if requested not in candidates or requested not in load_facts().slots:
            return events
        slot = load_facts().slots[requested]
        value, problem = _validate(slot, candidates[requested], tracker)
        attempts = int(tracker.get_slot("invalid_attempts") or 0)
        corrected, changed = (
            _corrections(tracker, tracker.latest_message or {}, skip=requested)
            if problem and isinstance(candidates[requested], str)
            else ([], [])
        )
        if changed:
            # "算了,还是换货吧" or "no, the order is 30012288776" asked for a date: a change,
            # not a date. What it names is updated and the same question asked again,
            # not counted as a bad answer.
            if "desired_outcome" in changed:
                outcome = next(e["value"] for e in corrected if e["name"] == "desired_outcome")
                dispatcher.utter_message(response="utter_outcome_updated", outcome=outcome)
            else:
                dispatcher.utter_message(response="utter_correction_done")
            dispatcher.utter_message(response=f"utter_ask_{requested}", buttons=slot_buttons(slot))
            return [*events, *corrected, SlotSet(requested, None)]
        if problem is None:
            events += [SlotSet(requested, value), SlotSet("invalid_attempts", 0)]
        elif problem == "utter_invalid_choice_confused" and attempts == 0:
            # "what?", "你说什么?" to a question: not a wrong answer but a question back.
            # Said another way (the question's next wording), as a person would.
            dispatcher.utter_message(response=problem)
            dispatcher.utter_message(response=f"utter_ask_{requested}", buttons=slot_buttons(slot))
            events += [SlotSet(requested, None), SlotSet("invalid_attempts", attempts + 1)]
        elif problem == "utter_fact_not_given" or attempts >= 1:
            # "不知道" to a yes/no, or a second answer we cannot read: go on without it.
            # The fact is recorded as not given (the agent asks), never as "idk" or "the
            # blue one" under its name.
            dispatcher.utter_message(response="utter_fact_not_given")
            events += [SlotSet(requested, NOT_GIVEN), SlotSet("invalid_attempts", 0)]
        else:
            dispatcher.utter_message(response=problem, buttons=slot_buttons(slot))
            events += [SlotSet(requested, None), SlotSet("invalid_attempts", attempts + 1)]
        return events


def _changed_outcome(tracker: Tracker, answer: Any) -> tuple[str, str] | None:
    """The outcome (and its motive) the customer now names, when it differs from the one
    on record: "no, I want my money back", "算了,还是换货吧"."""
    if not isinstance(answer, str):
        return None
    facts = load_facts()
    named = facts.named_outcome(answer, _language(tracker))
    if named is None or named == tracker.get_slot("desired_outcome"):
        return None
    motive = facts.outcome_motives.get(named) or str(tracker.get_slot("motive") or "fix")
    return named, motive


_BARE_NUMBER = re.compile(r"(?<![\d$€£¥#])(?<!\d[.,])\d{6,20}(?!\d|[.,]\d|%)")
_ORDER_WORDS = re.compile(r"order|number|#|单号|订单|编号", re.IGNORECASE)


def _corrected_order_number(tracker: Tracker, parse: dict[str, Any], text: str) -> str | None:
    """A bare number of six or more digits typed at the read-back ("wrong number, it's
    55120934"), when the record holds an order number (so the customer is correcting
    it) or the message says it is one; not a phone number, sum or date."""
    previous = str(tracker.get_slot("order_id") or "")
    if previous in ("", NOT_GIVEN, "no_order_id") and not _ORDER_WORDS.search(text):
        return None
    taken = [
        str(entity.get("value") or "")
        for entity in parse.get("entities") or []
        if entity.get("entity") in ("phone", "amount", "date")
    ]
    for found in _BARE_NUMBER.finditer(text):
        number = found.group(0)
        if not any(number in value or value in number for value in taken if value):
            return number
    return None


def _unsure_order_id(parse: dict[str, Any], text: str) -> str | None:
    """A number in the message that has an order number's shape but no label ("快递没到
    30012288776"), or that the parser found by shape alone; not a phone number."""
    taken = {
        str(entity.get("value") or "")
        for entity in parse.get("entities") or []
        if entity.get("entity") in ("phone", "amount", "date")
    }
    for entity in parse.get("entities") or []:
        if entity.get("entity") == "order_id" and float(entity.get("confidence_entity", 1)) < 1:
            return str(entity.get("value"))
    found = order_id_in(text)
    if found and not any(found in value or value in found for value in taken if value):
        return found
    return None


def _extract(slot: Slot, parse: dict[str, Any], text: str, language: str, today: date) -> Any:
    """A value for the slot from one earlier message, or None."""
    for entity in parse.get("entities") or []:
        if entity.get("entity") not in slot.entities:
            continue
        if float(entity.get("confidence_entity", 1)) < 1:
            continue  # a shape alone: confirmed with the customer first (_unsure_order_id)
        if slot.kind == "date":
            day = (entity.get("additional_info") or {}).get("date")
            answer = bucket(slot, date.fromisoformat(day), today) if day else None
            if answer is not None:
                return answer
        elif slot.kind == "amount":
            amount = (entity.get("additional_info") or {}).get("amount")
            if amount is not None:
                return amount
        else:
            return entity.get("value")
    if slot.from_wait:
        phrase = waited(text, language)
        days = wait_days(phrase) if phrase else None
        if days is not None:
            return bucket(slot, today - timedelta(days=days), today)
    if slot.terms:
        return find_term(slot, text, language)
    return None


_NUMBERISH = re.compile(r"[A-Za-z0-9#\-]*\d[A-Za-z0-9#\-]*")
_NUMBER_WORDS = re.compile(r"(?i)\b(?:my|the|order|number|no|is|it'?s)\b|订单号?|单号|是")


def _tries_a_number(answer: str) -> bool:
    """An answer that is a try at an order number, if a wrong one ("SO2024", "#12",
    "12345"), not words with a digit in them ("2 weeks ago", "我2周前说过了")."""
    longest = max(_NUMBERISH.findall(answer), key=len, default="")
    if not longest:
        return False
    rest = _NUMBER_WORDS.sub("", answer.replace(longest, "", 1))
    return len(longest) >= 4 or len(re.sub(r"[\W_]", "", rest)) <= 3


def _validate(slot: Slot, raw: Any, tracker: Tracker) -> tuple[Any, str | None]:
    """The slot's value from an answer, or the response that says what was wrong."""
    answer = str(raw).strip()
    if answer in slot.options() and answer != OTHER:
        return answer, None
    parse = tracker.latest_message or {}
    intent = _sure_intent(parse)
    language = _language(tracker)
    if slot.kind == "order_id":
        # The parse's extractor knows every shape ("订单号 88231907", "Order no. 71230045.");
        # asked for the number, a bare one counts even where the parse alone is unsure.
        for entity in parse.get("entities") or []:
            if entity.get("entity") == "order_id" and entity.get("value"):
                return str(entity["value"]), None
        found = order_id_in(answer)
        if found:
            return found, None
        if slot.negative and (intent in NEGATIVE_INTENTS or _not_known(answer, language)):
            return slot.negative, None
        if not _tries_a_number(answer):
            # "what?", "你说什么?", "I already told you, 2 weeks ago": no try at a
            # number; the question said again, with where to find one.
            return None, "utter_invalid_order_id_words"
        return None, "utter_invalid_order_id"
    if slot.kind == "amount":
        for entity in parse.get("entities") or []:
            amount = (entity.get("additional_info") or {}).get("amount")
            if entity.get("entity") == "amount" and amount is not None:
                return amount, None
        number = amount_in(answer)
        if number is not None:
            return number, None
        if slot.negative and (intent in NEGATIVE_INTENTS or _not_known(answer, language)):
            return slot.negative, None
        return None, _unread(answer, "utter_invalid_amount")
    if slot.kind == "date":
        for entity in parse.get("entities") or []:
            day = (entity.get("additional_info") or {}).get("date")
            if entity.get("entity") == "date" and day:
                value = bucket(slot, date.fromisoformat(day), _today(tracker))
                return (value, None) if value else (None, "utter_invalid_date_future")
    if slot.kind == "yesno":
        if _not_known(answer, language):
            return None, "utter_fact_not_given"  # "不知道", "not sure": neither, and said
        if load_facts().is_non_answer(answer, language):
            return None, _unread(answer, "utter_invalid_choice")
        if intent in POSITIVE_INTENTS:
            return "yes", None
        if intent in NEGATIVE_INTENTS:
            return NEGATIVE_YESNO, None
    term = find_term(slot, answer, language)
    if term is not None:
        return term, None
    if slot.kind in ("choice", "date") and says_dont_know(answer):
        return None, "utter_fact_not_given"  # "idk", "记不清了": left for the agent, at once
    if slot.kind in ("choice", "date") and _describes(slot, answer, parse, language):
        # The customer described it in their own words: that is the "other" answer.
        return answer, None
    return None, _unread(answer, "utter_invalid_choice")


def _sure_intent(parse: Mapping[str, Any]) -> str | None:
    """The message's intent, if the model is sure enough of it to act on."""
    intent = parse.get("intent") or {}
    if float(intent.get("confidence") or 0.0) < SURE_INTENT:
        return None
    name = intent.get("name")
    return str(name) if name else None


def _unread(answer: str, problem: str) -> str:
    """What to say to an answer that could not be read: a question back ("what?",
    "你说什么?") gets the question said another way, anything else ``problem``."""
    return "utter_invalid_choice_confused" if confused(answer) else problem


def _not_known(answer: str, language: str) -> bool:
    """ "idk", "不记得" to a number: the customer does not have it (not a question back,
    with a question mark or without one: "什么意思", "what")."""
    stripped = answer.strip()
    return (
        load_facts().is_non_answer(answer, language)
        and not stripped.endswith(("?", "？"))
        and not confused(stripped)
    )


def _describes(slot: Slot, answer: str, parse: dict[str, Any], language: str) -> bool:
    """Whether free text is an answer in the customer's own words, not something else.

    Not: a reply that answers nothing ("idk", "就这样", "what repair?"), a yes or no,
    a change of mind about the outcome ("算了,还是换货吧": the outcome is updated
    instead), or a value that belongs to another fact (an e-mail address, an order
    number, a date: extraction files those under their own slot).
    """
    facts = load_facts()
    if len(answer) < 2 or facts.is_non_answer(answer, language):
        return False
    intent = _sure_intent(parse)
    if intent in NEGATIVE_INTENTS or intent in POSITIVE_INTENTS or intent in SMALL_TALK:
        return False  # "ok thanks" to "what went wrong with the delivery?" is no answer
    if facts.named_outcome(answer, language) is not None:
        return False
    if any(e.get("entity") in ("email", "phone", "order_id") for e in parse.get("entities") or []):
        return False  # another fact: filed under its own slot
    return not mostly_entity(parse, answer, ("amount", "date"))  # mostly a sum or a date


def mostly_entity(parse: Mapping[str, Any], text: str, kinds: tuple[str, ...]) -> bool:
    """Whether an entity of one of ``kinds`` makes up most of the text ("last week",
    "¥299"): a value of another kind than the one asked for."""
    return any(
        entity.get("entity") in kinds
        and len(str(entity.get("value") or "")) >= 0.6 * len(text.strip())
        for entity in parse.get("entities") or []
    )


def _currency_of(tracker: Tracker, amount: Any) -> str | None:
    """The currency the customer wrote with this sum ("£12.99": GBP), if they did."""
    if not isinstance(amount, int | float):
        return None
    for message in reversed(_user_messages(tracker)):
        for entity in (message.get("parse_data") or {}).get("entities") or []:
            info = entity.get("additional_info") or {}
            if entity.get("entity") != "amount" or not info.get("currency"):
                continue
            if abs(float(info.get("amount") or 0) - float(amount)) < 0.005:
                return str(info["currency"])
    return None


class ActionSummarise(Action):
    """Build the read-back: type, motive, desired outcome, facts, the customer's words."""

    def name(self) -> str:
        return "action_summarise"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        facts = load_facts()
        required = facts.required(
            tracker.get_slot("complaint_type"), major=bool(tracker.get_slot("major"))
        )
        # The type's facts first, in asking order, then any other fact the customer gave.
        order = [*required, *(name for name in facts.slots if name not in required)]
        known = {
            name: tracker.get_slot(name) for name in order if tracker.get_slot(name) is not None
        }
        # An ordinary complaint turns major from its facts (shared/seeds/): passed
        # around, told wrong things, brushed off, a promised call-back never made, a
        # long wait.
        reasons = list(tracker.get_slot("major_reasons") or [])
        reasons += [
            reason
            for (slot, value), reason in MAJOR_FACTS.items()
            if known.get(slot) == value and reason not in reasons
        ]
        # An order number given in the questions can show an earlier complaint about it.
        same = earlier_same_problem(
            tracker.get_slot("earlier_complaints") or [],
            tracker.get_slot("complaint_type"),
            known.get("order_id"),
        )
        if same is not None and CAME_BACK not in reasons:
            reasons.append(CAME_BACK)
        major = bool(tracker.get_slot("major")) or bool(reasons)
        priority = max(
            int(tracker.get_slot("priority") or 0), Priority.HIGH if major else Priority.NORMAL
        )
        summary = {
            "complaint_type": tracker.get_slot("complaint_type"),
            "motive": tracker.get_slot("motive"),
            "desired_outcome": tracker.get_slot("desired_outcome"),
            "outcome_text": tracker.get_slot("outcome_text"),
            "facts": known,
            "notes": tracker.get_slot("notes") or {},
            "customer_words": tracker.get_slot("first_words") or "",
            "major": major,
            "major_reasons": reasons,
            "habitual": bool(tracker.get_slot("habitual")),
            "signals": tracker.get_slot("signals") or [],
            "priority": priority,
            "language": _language(tracker),
            "amount_currency": _currency_of(tracker, known.get("amount")),
        }
        if summary["complaint_type"] == "safety" and known.get("injury") == "yes":
            summary["priority"] = Priority.URGENT
        dispatcher.utter_message(response="utter_summary", summary=summary)
        dispatcher.utter_message(
            response="utter_summary_confirm",
            buttons=[
                {"title": "button.correct", "payload": Choice("summary", "yes").pack()},
                {"title": "button.change", "payload": Choice("summary", "change").pack()},
            ],
        )
        return [
            SlotSet("summary", summary),
            SlotSet("priority", summary["priority"]),
            SlotSet("major", major),
            SlotSet("major_reasons", reasons),
        ]


class ActionApplyCorrection(Action):
    """Free text at the read-back: change every field it names.

    "no, it's 55120934 and I want my money back" changes the order number and the
    outcome. ``corrected`` lists what changed (empty: nothing this message names
    differs from the record, and the engine keeps the words as a note instead).
    """

    def name(self) -> str:
        return "action_apply_correction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events, changed = _corrections(tracker, tracker.latest_message or {})
        return [*events, SlotSet("corrected", changed)]


def _corrections(
    tracker: Tracker, latest: dict[str, Any], *, skip: str | None = None
) -> tuple[list[EventType], list[str]]:
    """The fields one message changes: the outcome it names, and every fact of the
    complaint it gives a different value for (``skip``: the fact being asked)."""
    facts = load_facts()
    text = str(latest.get("text") or "")
    events: list[EventType] = []
    changed: list[str] = []
    outcome = _changed_outcome(tracker, text)
    if outcome is not None:
        events += [
            SlotSet("desired_outcome", outcome[0]),
            SlotSet("motive", outcome[1]),
            SlotSet("motive_locked", True),
        ]
        changed.append("desired_outcome")
    required = facts.required(
        tracker.get_slot("complaint_type"), major=bool(tracker.get_slot("major"))
    )
    for name in (*required, *facts.volunteered()):
        if name == skip:
            continue
        slot = facts.slots[name]
        value = _extract(slot, latest, text, _language(tracker), _today(tracker))
        if value is None and slot.kind == "order_id":
            value = order_id_in(text) or _corrected_order_number(tracker, latest, text)
        if value is not None and value != tracker.get_slot(name):
            events.append(SlotSet(name, value))
            changed.append(name)
    return events, changed


URGENT_HANDOFFS = frozenset({"threat", "self_harm", "abuse"})
"""Hand-offs a supervisor takes at once (policy: _escalate): told as a major case."""


class ActionHandoff(Action):
    """Tell the customer what happens next and by when, then pause the bot."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        kind = tracker.get_slot("handoff_kind") or "complaint"
        rule = policy_for(tracker.slots) if kind == "complaint" else None
        if rule:
            dispatcher.utter_message(response=f"utter_policy_{rule}")
        major = (
            bool(tracker.get_slot("major"))
            or int(tracker.get_slot("priority") or 0) >= Priority.URGENT
            or kind in URGENT_HANDOFFS
        )
        heard = tracker.get_slot("desired_outcome") == "be_heard"
        # Someone who only wants to be heard is not promised a call they did not ask for.
        next_steps = "utter_next_steps_major" if major else "utter_next_steps"
        if kind == "self_harm":  # they were just told a supervisor will contact them now
            next_steps = "utter_next_steps_self_harm"
        dispatcher.utter_message(
            response=next_steps if major or not heard else "utter_next_steps_heard",
            sla_seconds=int(tracker.get_slot("first_contact_sla_seconds") or 7200),
            ticket=tracker.get_slot("ticket_ref"),
        )
        # The close itself (does that meet what you hoped for? thanks) is the engine's:
        # it depends on the business hours (after hours a call-back is offered instead).
        return [SlotSet("policy", rule), ConversationPaused()]


class ActionScheduleFollowUp(Action):
    """Promise-keeping: the first contact and the progress report each get a due time."""

    def name(self) -> str:
        return "action_schedule_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ticket = tracker.get_slot("ticket_ref")
        now = _now(tracker)
        due = {
            "first_contact": int(tracker.get_slot("first_contact_sla_seconds") or 7200),
            "progress_report": int(tracker.get_slot("progress_sla_seconds") or 3 * 86400),
        }
        return [
            ReminderScheduled(
                f"EXTERNAL_{kind}_due",
                now + timedelta(seconds=seconds),
                entities=[{"entity": "ticket", "value": ticket}],
                name=f"{kind}:{ticket}",
                kill_on_user_message=False,
            )
            for kind, seconds in due.items()
        ]
