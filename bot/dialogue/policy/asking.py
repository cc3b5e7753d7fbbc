"""The policy's ground floor: what every step uses —
asking a question again (``reprompt``), restating, asking a fact, reading the story
again, the queue's wait, a question answered in passing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from actions.complaint import MOTIVE_THRESHOLD, slot_buttons
from actions.facts import OTHER, asks_back, load_facts
from actions.waits import waited
from bot.dialogue import records, survey, tracker
from bot.dialogue.policy.rules import (
    CONFIRM_BUTTONS,
    MAX_WORDS,
    MENU_BUTTONS,
    SAFE_BUTTONS,
    TYPE_BUTTONS,
    UNSURE_BUTTONS,
    is_short,
    outcome_buttons,
    waiting_topic,
    without_denials,
)
from bot.nlu.labels import COMPLAINT_TYPES
from bot.nlu.model import says_self_harm
from bot.payloads import Choice, chosen
from bot.store import Ticket
from bot.store.db import open_tickets
from bot.store.models import ConversationStatus, Priority, Stage
from handoff import queue
from handoff.events import StaffEvent
from handoff.hours import (
    NO_CALLBACK,
    callback_slots_soon,
    slot_label,
    slot_payload,
    when_label,
)

if TYPE_CHECKING:
    from bot.dialogue.services import TurnServices
    from bot.dialogue.turn import Turn


OFFERS = re.compile(
    r"\b(do you|d'?you|do u|should i|can i|shall i|want me to|need me to)\b"
    r"|要不要|需要.{0,6}吗|可以.{0,4}吗"
)
"""An offer or a question put without a question mark ("do u need a pic of my porch")."""


def summary_buttons() -> list[dict[str, str]]:
    """The read-back's question: all correct, or change something."""
    return [
        {"title": "button.correct", "payload": Choice("summary", "yes").pack()},
        {"title": "button.change", "payload": Choice("summary", "change").pack()},
    ]


class Asking:
    """State and the moves every step makes."""

    def __init__(self, services: TurnServices) -> None:
        self.services = services
        self.survey = survey.Survey()

    def _greet(self, turn: Turn) -> None:
        turn.say("utter_greet_returning" if turn.slots.get("returning") else "utter_greet")
        turn.slots["greeted"] = True

    def _greet_briefly(self, turn: Turn) -> None:
        if not turn.slots.get("greeted"):
            turn.say("utter_greet_brief")
            turn.slots["greeted"] = True

    def _named_entity(self, turn: Turn, name: str) -> str | None:
        """A product or sum as the customer typed it, if they did (a word shouted in
        capitals is said back in lower case)."""
        for message in tracker.user_events(turn):
            for entity in (message.get("parse_data") or {}).get("entities") or []:
                if entity.get("entity") == name:
                    value = str(entity.get("value"))
                    return value.lower() if value.isupper() and len(value) > 3 else value
        return None

    def _what(self, turn: Turn) -> str:
        """The thing restated: the product the customer named, else a generic word."""
        named = self._named_entity(turn, "product")
        if named:
            return named
        generic = (
            "item" if turn.slots.get("complaint_type") in ("product_quality", "safety") else "order"
        )
        return self.services.responses.label(f"value.{generic}", turn.language)

    def _restate(self, turn: Turn) -> None:
        complaint_type = str(turn.slots.get("complaint_type") or "other")
        turn.say(f"utter_restate_{complaint_type}", CONFIRM_BUTTONS, what=self._what(turn))
        turn.slots["restatements"] = int(turn.slots.get("restatements") or 0) + 1
        turn.stage = Stage.CONFIRMING

    def _ask(self, turn: Turn, slot: str) -> None:
        unsure = turn.slots.get(f"unsure_{slot}")
        if unsure:
            # "Order 30012288776 — is that right?": a closed question, not an open one.
            turn.say(f"utter_confirm_{slot}", UNSURE_BUTTONS, value=unsure)
        else:
            turn.say(f"utter_ask_{slot}", slot_buttons(load_facts().slots[slot]))
        turn.stage = Stage.FACTS

    def _ask_type_or_person(self, turn: Turn) -> None:
        """The types as buttons, and a person as the last one."""
        turn.say("utter_ask_type_or_person", [*TYPE_BUTTONS, MENU_BUTTONS[2]])
        turn.stage = Stage.CHOOSING_TYPE

    def _change_buttons(self, turn: Turn) -> list[dict[str, str]]:
        summary = turn.slots.get("summary") or {}
        buttons = [
            {"title": "slot.complaint_type", "payload": Choice("change", "complaint_type").pack()},
            {
                "title": "slot.desired_outcome",
                "payload": Choice("change", "desired_outcome").pack(),
            },
        ]
        buttons += [
            {"title": f"slot.{name}", "payload": Choice("change", name).pack()}
            for name in (summary.get("facts") or {})
        ]
        buttons.append({"title": "button.other", "payload": Choice("change", "other").pack()})
        return buttons

    def reprompt(self, turn: Turn) -> None:
        """Ask the open question again (a stale button, /start mid-way)."""
        stage = turn.stage
        if stage == Stage.CONFIRMING:
            self._restate(turn)
        elif stage in (Stage.EXPECTATION,):
            turn.say("utter_ask_outcome", outcome_buttons())
        elif stage in (Stage.FACTS,) and turn.slots.get("requested_slot"):
            self._ask(turn, str(turn.slots["requested_slot"]))
        elif stage == Stage.SUMMARY:
            turn.say("utter_summary_confirm", summary_buttons())
        elif stage == Stage.CORRECTING:
            turn.say("utter_ask_which_change", self._change_buttons(turn))
        elif stage == Stage.CHOOSING_TYPE:
            self._ask_type_or_person(turn)
        elif stage == Stage.SAFETY_CHECK:
            turn.say("utter_ask_safe_now", SAFE_BUTTONS)
        elif stage == Stage.FACT_OPEN and turn.slots.get("open_slot"):
            turn.say(f"utter_ask_{turn.slots['open_slot']}_open")  # the open follow-up
        elif stage in (Stage.FACT_OTHER, Stage.NOTE):
            turn.say("utter_ask_other_text")  # "type it in your own words"
        elif stage == Stage.EXPECTATION_TEXT:
            turn.say("utter_ask_outcome_other")
        elif stage in (Stage.LISTENING, Stage.FACT_OPEN):
            turn.say("utter_ask_tell_more")
        elif stage in survey.STAGES:
            self.survey.reprompt(turn)
        elif turn.conversation.status == ConversationStatus.HANDED_OFF:
            turn.say("utter_handoff_waiting")
        else:
            turn.say("utter_offer_help", MENU_BUTTONS)

    # --- step 5: read back, confirm, hand off ---------------------------------------------

    async def _summarise(self, turn: Turn) -> None:
        turn.slots["requested_slot"] = None
        await self.services.tracker.act(turn, "action_summarise")
        records.save_complaint(turn)
        turn.stage = Stage.SUMMARY

    async def _corrections(self, turn: Turn) -> list[str]:
        """Apply what this message names (outcome, facts, contact); the changed fields."""
        await self.services.tracker.act(turn, "action_apply_correction", silent=True)
        changed = list(turn.slots.pop("corrected", None) or [])
        if changed:
            records.save_complaint(turn)
        return changed

    def _note(self, turn: Turn, key: str) -> None:
        notes = dict(turn.slots.get("notes") or {})
        notes[key] = turn.text
        turn.slots["notes"] = notes

    async def _hear_more(self, turn: Turn, *, fresh: bool) -> None:
        """Re-classify with what the customer added (alone, if they corrected us)."""
        texts = [*turn.slots.get("complaint_texts", []), turn.text]
        turn.slots["complaint_texts"] = texts
        # The read-back's "in your words" is the whole story as they told it.
        turn.slots["first_words"] = " / ".join(texts)[:MAX_WORDS]
        if fresh:  # a correction: what it says is so, not what it says is not
            latest = turn.parse
            told = without_denials(turn.text)
            if latest is not None and told != turn.text:
                reread = await self.services.nlu.parse_in_turn(told, today=turn.today)
                latest = {**reread, "text": turn.text, "entities": latest.get("entities", [])}
        else:
            latest = await self.services.nlu.parse_in_turn(
                " ".join(texts)[-4000:], today=turn.today
            )
        if latest is not None and turn.parse is not None:
            latest = {**latest, "signals": sorted(set(latest.get("signals") or []) | turn.signals)}
        await self.services.tracker.act(turn, "action_record_complaint", latest=latest)
        records.save_complaint(turn)

    def _relay(self, turn: Turn) -> list[Ticket]:
        """The message joins the conversation's open ticket, to be shown in its topic."""
        tickets = open_tickets(turn.session, conversation_id=turn.conversation.id or 0)
        if tickets:
            turn.relay_ticket_id = tickets[-1].id
        return tickets

    def _acknowledge_waiting(self, turn: Turn) -> None:
        if not turn.slots.get("waiting_acknowledged"):
            turn.say("utter_handoff_waiting")
            turn.slots["waiting_acknowledged"] = True

    def _flag_threat(self, turn: Turn, tickets: list[Ticket]) -> None:
        """A threat, or words of self-harm, while a person has the case: the ticket goes
        to the top with a supervisor's alert, and the customer hears it was passed on."""
        self_harm = says_self_harm(turn.text, self.services.settings.nlu_data_dir)
        for ticket in tickets:
            ticket.priority, ticket.supervisor_flag = Priority.URGENT, True
            turn.session.add(ticket)
            key = "staff.self_harm_flagged" if self_harm else "staff.threat_flagged"
            turn.staff_events.append(
                StaffEvent(ticket.id or 0, key, {"ticket": f"#{ticket.id}"}, alert=True)
            )
        turn.say("utter_self_harm_supervisor" if self_harm else "utter_threat_supervisor")

    def _open_now(self, turn: Turn) -> bool:
        hours = self.services.settings.hours
        return hours is None or hours.is_open(turn.now.astimezone(self.services.settings.tz))

    def _back_at(self, turn: Turn) -> str | None:
        """When the team is back, in the customer's words; None while it is in."""
        settings = self.services.settings
        local = turn.now.astimezone(settings.tz)
        if settings.hours is None or settings.hours.is_open(local):
            return None
        return when_label(
            settings.hours.next_opening(local), turn.language, self.services.responses
        )

    def _queue_wait(self, turn: Turn, ticket_id: int) -> tuple[int, str, int] | None:
        """The ticket's place in the queue, the estimated wait in words and minutes."""
        place = queue.position(
            turn.session,
            ticket_id,
            now=turn.now,
            starve_after=self.services.settings.starvation_limit,
        )
        if not place:
            return None
        minutes = queue.estimated_wait_minutes(turn.session, place)
        return place, self.services.responses.duration(60 * minutes, turn.language), minutes

    def _offer_callback_if_long(self, turn: Turn, minutes: int) -> None:
        """Past a few minutes' wait, "wait, or shall we get back to you?" (shared/domain.md
        §5): call-back slots as buttons, once per ticket, none once one is booked."""
        if minutes * 60 <= self.services.settings.callback_offer.total_seconds() or turn.slots.get(
            "callback_offered"
        ):
            return
        settings = self.services.settings
        local = turn.now.astimezone(settings.tz)
        responses = self.services.responses
        buttons = [
            {"title": slot_label(slot, turn.language, responses), "payload": slot_payload(slot)}
            for slot in callback_slots_soon(settings.hours, local)
        ]
        buttons.append({"title": "button.will_wait", "payload": NO_CALLBACK})
        turn.slots["callback_offered"] = True
        turn.say("utter_offer_callback_long", buttons)

    async def _record_what_is_known(self, turn: Turn) -> None:
        """Before an early hand-off: the facts said so far and the summary, silently."""
        if not turn.slots.get("complaint_id"):
            return
        await self.services.tracker.act(turn, "validate_complaint_form", silent=True)
        await self.services.tracker.act(turn, "action_summarise", silent=True)
        records.save_complaint(turn)

    def _safety_advice(self, turn: Turn, injury: str) -> None:
        """Someone hurt: medical help first; otherwise: stop using it. The answer is the
        "has anyone been hurt?" fact, so it is not asked again."""
        turn.slots["injury"] = injury
        turn.say("utter_safety_hurt" if injury == "yes" else "utter_safety_safe")

    @staticmethod
    def _mirror_wait(turn: Turn) -> None:
        """How long they say they have waited, in their words, after the empathy."""
        wait = waited(" ".join(turn.slots.get("complaint_texts") or [turn.text]), turn.language)
        if wait:
            turn.say("utter_empathy_waited", wait=wait)

    def _named_type(self, turn: Turn) -> str | None:
        """The one type whose button words (or their first word) the text contains."""
        typed = turn.text.lower()
        named = []
        for name in COMPLAINT_TYPES:
            label = self.services.responses.label(f"type.{name}", turn.language).lower()
            parts = [part.strip() for part in label.split("/") if part.strip()]
            # a label's key word: its first word ("delivery"), or a Chinese part's first
            # two characters ("物流", "售后"); "something else" only in full
            keys = [part[:2] if turn.language == "zh" else part.split()[0] for part in parts]
            if label in typed or (name != "other" and any(key in typed for key in keys)):
                named.append(name)
        return named[0] if len(named) == 1 else None

    def _named_field(self, turn: Turn) -> str | None:
        """The field a typed answer names ("the order number", "订单号"), if it only names one
        and gives no new value (a value is applied as a correction instead)."""
        typed = turn.text.strip().lower()
        if len(typed) > 30:
            return None
        named = [
            chosen(button["payload"], "change")
            for button in self._change_buttons(turn)
            if chosen(button["payload"], "change") != OTHER
            and (label := self.services.responses.label(button["title"], turn.language).lower())
            and (label in typed or (len(typed) >= 4 and typed in label))
        ]
        return named[0] if len(named) == 1 else None

    def _outcome_from_text(self, turn: Turn) -> None:
        motive = turn.parse.get("motive") if turn.parse else None
        name = motive["name"] if motive else "explanation"
        outcome = load_facts().outcome(name, turn.text, turn.language)
        if (motive["confidence"] if motive else 0.0) < MOTIVE_THRESHOLD:
            outcome = load_facts().outcome(None, turn.text, turn.language) or OTHER
        turn.slots.update(
            motive=name, desired_outcome=outcome, outcome_text=turn.text, motive_locked=True
        )

    def _answer_question(self, turn: Turn, stage: str, *, faq: bool = True) -> bool:
        """A question asked during the questions or at the read-back is answered; it is
        neither an answer nor a note for the agent. "How long will this take?" gets the
        first-contact time (or when people are back, out of hours); a question the FAQ
        knows gets its answer (``faq=False`` where a question may be the answer itself:
        "can I get a refund?" to "what would you like?")."""
        topic = waiting_topic(turn.text, turn.language)
        if topic == "bot":
            turn.say("utter_who_am_i_midway")  # "are you even a real person?"
            return True
        if topic == "ping" and is_short(turn):
            turn.say("utter_still_here")  # "are you still there?": yes, and the question
            return True
        question = asks_back(turn.text) or turn.intent == "inquiry"
        if topic == "send_media" and (question or OFFERS.search(turn.text.lower())):
            # "do u need a pic of my porch?": yes, here (a photo is kept as evidence at
            # any step); "I'll send photos later, the strap broke" is an answer, not this
            turn.say("utter_waiting_send_media")
            return True
        if not question:
            return False
        if topic == "how_long":
            back = self._back_at(turn)
            if back is not None:
                turn.say(f"utter_{stage}_how_long_after_hours", back=back)
            else:
                sla = self.services.responses.duration(
                    int(self.services.settings.first_contact_sla.total_seconds()), turn.language
                )
                turn.say(f"utter_{stage}_how_long", sla=sla)
            return True
        if faq and turn.intent == "inquiry":
            answer = self.services.faq.answer(turn.text, turn.language)
            if answer is not None:
                turn.say(f"faq:{answer.topic}", answer=answer.text)
                return True
        return False
