"""Steps 3 and 4: what the customer wants, then the facts by closed questions, never
asked twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actions.facts import OTHER, asks_back, load_facts, order_id_in
from bot.dialogue import records
from bot.dialogue.policy.handing_off import HandingOff
from bot.dialogue.policy.rules import (
    OUTCOMES,
    answers_nothing,
    names_a_fact,
    outcome_buttons,
)
from bot.payloads import SlotAnswer, chosen
from bot.store.models import Stage

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn


class Gathering(HandingOff):
    """Steps 3 and 4 (see the module)."""

    # --- step 3: the expectation ----------------------------------------------------------

    async def _after_confirm(self, turn: Turn) -> None:
        motive = turn.slots.get("motive")
        if motive is None:
            turn.say("utter_ask_outcome", outcome_buttons())
            turn.stage = Stage.EXPECTATION
            return
        turn.say(f"utter_expectation_{motive}")
        await self._continue_facts(turn)

    async def _stage_expectation(self, turn: Turn) -> None:
        payload = turn.payload or ""
        choice = chosen(payload, "outcome")
        if choice is not None:
            if choice == OTHER:
                turn.say("utter_ask_outcome_other")
                turn.stage = Stage.EXPECTATION_TEXT
                return
            if choice not in OUTCOMES:
                self.reprompt(turn)
                return
            motive, outcome = OUTCOMES[choice]
            turn.slots.update(motive=motive, desired_outcome=outcome, motive_locked=True)
        elif payload or not turn.text:
            self.reprompt(turn)
            return
        elif self._answer_question(turn, "facts", faq=False):
            self.reprompt(turn)  # "are you a bot?", "how long?": answered, then asked again
            return
        elif answers_nothing(turn):
            # "你说啥", "whatever", "last week": ask once more, then go on without it.
            if not turn.slots.get("outcome_unclear"):
                turn.slots["outcome_unclear"] = True
                # "啥意思?" / "what do you mean?": the question said another way
                core = turn.text.strip(" ?？!！。.").lower()
                asked_back = asks_back(turn.text) or (
                    core.endswith("意思") or core in ("what", "huh")
                )
                key = "utter_ask_outcome_explained" if asked_back else "utter_invalid_choice"
                turn.say(key, outcome_buttons())
                return
            turn.slots.update(motive=None, desired_outcome=None, motive_locked=True)
            turn.say("utter_fact_not_given")
            await self._continue_facts(turn)
            return
        else:
            self._outcome_from_text(turn)
        turn.say(f"utter_expectation_{turn.slots['motive']}")
        await self._continue_facts(turn)

    async def _stage_expectation_text(self, turn: Turn) -> None:
        if turn.payload is not None or not turn.text:
            await self._stage_expectation(turn)
            return
        self._outcome_from_text(turn)
        turn.say(f"utter_expectation_{turn.slots['motive']}")
        await self._continue_facts(turn)

    # --- step 4: facts, closed questions ----------------------------------------------------

    async def _continue_facts(self, turn: Turn) -> None:
        """Fill what the customer already said, then ask the next missing fact or sum up."""
        turn.stage = Stage.FACTS
        await self.services.tracker.act(turn, "validate_complaint_form")
        records.save_complaint(turn)
        requested = turn.slots.get("requested_slot")
        if requested is None:
            await self._summarise(turn)
            return
        if not turn.slots.get("facts_introduced"):
            turn.say("utter_facts_intro")
            turn.slots["facts_introduced"] = True
        self._ask(turn, str(requested))

    async def _stage_facts(self, turn: Turn) -> None:
        requested = turn.slots.get("requested_slot")
        if requested is None:
            await self._continue_facts(turn)
            return
        payload = turn.payload or ""
        unsure = turn.slots.pop(f"unsure_{requested}", None)
        if chosen(payload, "unsure") == "yes" and unsure:
            turn.slots[str(requested)] = unsure
            await self.services.tracker.act(turn, "validate_complaint_form")
            records.save_complaint(turn)
            await self._next_fact(turn)
            return
        if chosen(payload, "unsure") == "no":
            self._ask(turn, str(requested))  # the open question now
            return
        if (answer := SlotAnswer.parse(payload)) is not None:
            name, value = answer.slot, answer.value
            if name != requested:
                self.reprompt(turn)
                return
            if value == OTHER:
                turn.say("utter_ask_other_text")
                turn.stage = Stage.FACT_OTHER
                return
            candidate: Any = value
        elif payload or not turn.text:
            self.reprompt(turn)
            return
        elif self._answer_question(turn, "facts"):
            self.reprompt(turn)  # "how long will this take?": answered, then the question
            return
        elif (
            load_facts().slots[str(requested)].kind in ("choice", "date", "yesno")
            and names_a_fact(turn)
        ) and (noted := [name for name in await self._corrections(turn) if name != requested]):
            # "订单号是 SO…" while asked when it was bought: kept, said so, and the
            # question stands (not "I didn't catch which one you chose"). Asked for a
            # number or a contact, the question's own checks say what fits where.
            fact = self.services.responses.label_or(f"slot.{noted[0]}", turn.language, noted[0])
            # "I've noted your order number", not "Order number: noted"
            turn.say("utter_noted_fact", fact=fact.lower() if turn.language == "en" else fact)
            self._ask(turn, str(requested))
            return
        else:
            candidate = turn.text
        await self._answer(turn, str(requested), candidate)

    async def _answer(self, turn: Turn, slot_name: str, candidate: Any) -> None:
        await self.services.tracker.act(
            turn, "validate_complaint_form", candidates={slot_name: candidate}
        )
        records.save_complaint(turn)
        value = turn.slots.get(slot_name)
        if value is None:
            turn.stage = Stage.FACTS
            return  # the action said what was wrong, with the buttons again
        slot = load_facts().slots[slot_name]
        if slot.negative is not None and value == slot.negative:
            turn.say(f"utter_ask_{slot_name}_open")
            turn.slots["open_slot"] = slot_name
            turn.stage = Stage.FACT_OPEN
            return
        await self._next_fact(turn)

    async def _next_fact(self, turn: Turn) -> None:
        requested = turn.slots.get("requested_slot")
        if requested is None or turn.slots.get("correcting"):
            turn.slots["correcting"] = False
            await self._summarise(turn)
            return
        self._ask(turn, str(requested))

    async def _stage_fact_other(self, turn: Turn) -> None:
        if turn.payload is not None or not turn.text:
            turn.stage = Stage.FACTS
            await self._stage_facts(turn)
            return
        await self._answer(turn, str(turn.slots.get("requested_slot")), turn.text)

    async def _stage_fact_open(self, turn: Turn) -> None:
        typed = turn.payload is None and bool(turn.text)
        if typed and "desired_outcome" in await self._corrections(turn):
            # "算了，还是给我补发吧": a change of mind, not how to find the order.
            turn.say("utter_outcome_updated", outcome=turn.slots.get("desired_outcome"))
        elif (
            typed
            and turn.slots.get("open_slot") == "order_id"
            and (found := order_id_in(turn.text))
        ):
            turn.slots["order_id"] = found  # they found it after all: the number, not a note
        elif typed and not load_facts().is_non_answer(turn.text, turn.language):
            notes = dict(turn.slots.get("notes") or {})
            notes[str(turn.slots.get("open_slot"))] = turn.text
            turn.slots["notes"] = notes
        turn.stage = Stage.FACTS
        await self.services.tracker.act(turn, "validate_complaint_form")
        records.save_complaint(turn)
        await self._next_fact(turn)
