"""Steps 1 and 2: the greeting or the first words, empathy before facts, safety first,
listening, and the restatement until it is confirmed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actions.complaint import mostly_entity
from actions.facts import confused, find_term, load_facts
from bot.dialogue import records
from bot.dialogue.intensity import AGITATED, intensity
from bot.dialogue.policy.readback import ReadBack
from bot.dialogue.policy.rules import (
    COMPLAINT_CONFIDENCE,
    CONFIRM_BUTTONS,
    FACT_ENTITIES,
    MAX_DENIALS,
    MAX_RESTATEMENTS,
    MAX_UNCLEAR,
    MENU_BUTTONS,
    SAFE_BUTTONS,
    full_account,
    is_complaint,
    vague,
    waiting_topic,
)
from bot.nlu.labels import COMPLAINT_TYPES
from bot.payloads import chosen
from bot.store.models import ConversationStatus, Stage

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn


class Listening(ReadBack):
    """Steps 1 and 2 (see the module)."""

    # --- step 1: no topic yet -------------------------------------------------------

    async def _stage_idle(self, turn: Turn) -> None:
        if chosen(turn.payload, "menu") == "complain":
            self._greet_briefly(turn)
            turn.say("utter_ask_tell_more")
            turn.stage = Stage.LISTENING
            return
        if chosen(turn.payload, "menu") == "question":
            turn.say("utter_offer_help")
            return
        if turn.payload is not None:
            self.reprompt(turn)
            return
        if turn.text and waiting_topic(turn.text, turn.language) == "bot":
            # "are you a bot?": said plainly, with what the bot is for; not a question
            # to page a person about.
            self._greet_briefly(turn)
            turn.say("utter_who_am_i", MENU_BUTTONS)
            return
        if turn.text and turn.intent != "greet" and confused(turn.text):
            # "what?", "huh?", "你说什么?": nothing to act on yet, nor to page a person
            # for; say what the bot does and let them choose.
            self._greet_briefly(turn)
            turn.say("utter_idle_confused", MENU_BUTTONS)
            return
        intent = turn.intent
        answer = self.services.faq.answer(turn.text, turn.language) if intent == "inquiry" else None
        if is_complaint(turn, faq_matched=answer is not None):
            await self._start_complaint(turn)
        elif intent == "greet" or not turn.text:
            if turn.slots.get("greeted"):
                turn.say("utter_offer_help")
            else:
                self._greet(turn)
        elif intent == "inquiry" and turn.intent_confidence >= COMPLAINT_CONFIDENCE:
            await self._inquiry(turn, answer)
        elif intent == "praise":
            self._greet_briefly(turn)
            turn.say("utter_praise_thanks")
        elif intent == "thank":
            turn.say("utter_thank_reply")
        elif intent == "goodbye":
            turn.say("utter_goodbye")
            turn.conversation.status = ConversationStatus.CLOSED
            turn.conversation.closed_at = turn.now
            turn.stage = Stage.CLOSED
        elif intent in ("affirm", "deny") and turn.intent_confidence >= COMPLAINT_CONFIDENCE:
            self._greet_briefly(turn)
            turn.say("utter_offer_help")
        else:
            self._greet_briefly(turn)
            turn.say("utter_not_understood", MENU_BUTTONS)

    # --- step 2: empathy, then restate -------------------------------------------------

    async def _start_complaint(self, turn: Turn) -> None:
        assert turn.parse is not None
        turn.slots.update(
            complaint_from=turn.message_id,
            first_words=turn.text,
            complaint_texts=[turn.text],
            restatements=0,
            complaints_90d=records.prior_complaints(turn),
            earlier_complaints=records.earlier_complaints(turn),
        )
        await self.services.tracker.act(turn, "action_record_complaint")
        records.save_complaint(turn)
        self._greet_briefly(turn)
        agitated = intensity(turn.text, turn.parse) >= AGITATED
        came_back = turn.slots.get("came_back")
        if came_back:
            # They told a person about this before and it is not sorted: say that we
            # know, so they need not tell it as new (domain §1, §4).
            turn.say("utter_empathy_came_back", ticket=f"#{came_back.get('ticket')}")
            self._mirror_wait(turn)
        elif turn.slots.get("major"):
            turn.say("utter_empathy_major")
            self._mirror_wait(turn)
        elif vague(turn):
            # "this is a joke", "气死我了": felt, not told. Empathy for the feeling, then
            # what happened; no type is guessed aloud (nor a safety question asked).
            turn.say(f"utter_empathy_{'strong' if agitated else 'mild'}")
            turn.say("utter_ask_tell_more")
            turn.stage = Stage.LISTENING
            return
        else:
            self._empathise(turn, "strong" if agitated else "mild")
        if turn.slots.get("complaint_type") == "safety" and self._ask_if_safe(turn):
            return
        if agitated and not turn.slots.get("major") and not full_account(turn):
            # Let an upset customer talk before anything else (先处理情感); one who
            # already told the whole story is not asked to tell it again.
            turn.say("utter_ask_tell_more")
            turn.stage = Stage.LISTENING
            return
        self._restate(turn)

    def _ask_if_safe(self, turn: Turn) -> bool:
        """A safety complaint first asks whether everyone is safe, unless the first
        message already said (then the advice fits what it said)."""
        injury = find_term(load_facts().slots["injury"], turn.text, turn.language)
        if injury is not None:
            self._safety_advice(turn, injury)
            return False
        turn.say("utter_ask_safe_now", SAFE_BUTTONS)
        turn.stage = Stage.SAFETY_CHECK
        return True

    async def _stage_safety_check(self, turn: Turn) -> None:
        """The answer to "is everyone safe?": a button, words that say it, or a plain
        yes. Anything else is heard as more of the story (the fact is asked later)."""
        payload = turn.payload or ""
        if chosen(payload, "safe") in ("yes", "hurt"):
            injury: str | None = "no" if chosen(payload, "safe") == "yes" else "yes"
        elif payload or not turn.text:
            self.reprompt(turn)
            return
        elif confused(turn.text):  # "啥意思", "what?": the question, put more plainly
            turn.say("utter_ask_safe_now_explained", SAFE_BUTTONS)
            return
        else:
            injury = find_term(load_facts().slots["injury"], turn.text, turn.language)
            if injury is None and turn.intent == "affirm":
                injury = "no"
        if injury is None:
            await self._hear_more(turn, fresh=False)
            turn.say("utter_safety_advice")
        else:
            self._safety_advice(turn, injury)
            records.save_complaint(turn)
        self._restate(turn)

    def _empathise(self, turn: Turn, level: str) -> None:
        """The acknowledgement names what kind of thing happened (a parcel that did not
        come, money taken wrongly, being left without an answer) when the type is known,
        in the customer's own words where they gave them: the product they named ("your
        headphones"), the sum taken ("$59.99") and how long they say they have waited
        ("10 days")."""
        typed = f"utter_empathy_{level}_{turn.slots.get('complaint_type')}"
        known = self.services.responses.packs[turn.language].responses
        amount = self._named_entity(turn, "amount")
        product = self._named_entity(turn, "product")
        if amount and f"{typed}_amount" in known:
            turn.say(f"{typed}_amount", amount=amount)
        elif product and f"{typed}_named" in known:
            turn.say(f"{typed}_named", what=product)
        else:
            turn.say(typed if typed in known else f"utter_empathy_{level}")
        self._mirror_wait(turn)

    async def _stage_listening(self, turn: Turn) -> None:
        """The customer tells more after an open question."""
        if turn.payload is not None or not turn.text:
            self.reprompt(turn)
            return
        if not turn.slots.get("complaint_id"):
            if turn.parse is not None:
                await self._start_complaint(turn)
            return
        if waiting_topic(turn.text, turn.language) == "bot":
            turn.say("utter_who_am_i_midway")  # "what the hell is this bot": not the story
            turn.say("utter_ask_tell_more")
            return
        if confused(turn.text):
            turn.say("utter_ask_tell_more_explained")  # "what?" to "what happened?"
            return
        if mostly_entity(turn.parse or {}, turn.text, FACT_ENTITIES):
            # "不对，订单号是SO…" after "not quite": a fact, not the story. Kept (it is not
            # read for the type: an order number alone reads as a delivery problem), and
            # the story is asked for again.
            await self._corrections(turn)
            turn.say("utter_noted_tell_more")
            return
        await self._hear_more(turn, fresh=bool(turn.slots.pop("misunderstood", False)))
        self._restate(turn)

    async def _stage_confirming(self, turn: Turn) -> None:
        if chosen(turn.payload, "confirm") == "yes" or (
            turn.payload is None and turn.intent == "affirm"
        ):
            await self._after_confirm(turn)
        elif chosen(turn.payload, "confirm") == "no" or (
            turn.payload is None and turn.intent == "deny"
        ):
            denials = int(turn.slots.get("restatements_denied") or 0) + 1
            turn.slots["restatements_denied"] = denials
            turn.slots["restatements"] = 0  # the type is not locked by a turned-down one
            if denials >= MAX_DENIALS:
                self._ask_type_or_person(turn)  # twice wrong: stop guessing
                return
            # A "no" to a closed question is followed by an open one.
            turn.say("utter_misunderstood_open")
            turn.slots["misunderstood"] = True
            turn.stage = Stage.LISTENING
        elif turn.payload is not None or not turn.text:
            self.reprompt(turn)
        elif self._answer_question(turn, "facts", faq=False):
            self.reprompt(turn)  # answered; the restatement stands
        elif confused(turn.text) or load_facts().is_non_answer(turn.text, turn.language):
            self._restate_again(turn)
        elif int(turn.slots.get("restatements") or 0) >= MAX_RESTATEMENTS:
            # Restated twice and not turned down: the type stands (it is not changed
            # behind their back by what they add); the added words still give facts.
            turn.slots["type_locked"] = True
            await self._hear_more(turn, fresh=False)
            await self._after_confirm(turn)
        else:
            await self._hear_more(turn, fresh=False)
            self._restate(turn)

    def _restate_again(self, turn: Turn) -> None:
        """ "what?", "你说什么?" to the restatement: it is put again in other words, and
        the reply is not part of the story (it would change the motive and show up in
        "in your words"). Twice lost: the types as buttons, and a person."""
        lost = int(turn.slots.get("restatements_unclear") or 0) + 1
        turn.slots["restatements_unclear"] = lost
        if lost > MAX_UNCLEAR:
            self._ask_type_or_person(turn)
            return
        complaint_type = str(turn.slots.get("complaint_type") or "other")
        turn.say(f"utter_restate_again_{complaint_type}", CONFIRM_BUTTONS, what=self._what(turn))

    async def _stage_choosing_type(self, turn: Turn) -> None:
        """After two denied restatements: the type the customer picks (or names in
        words: "it's a delivery problem", "是物流问题") is the type."""
        payload = turn.payload or ""
        picked = chosen(payload, "type")
        if picked is None and turn.text and not payload:
            picked = self._named_type(turn)
        if picked not in COMPLAINT_TYPES:
            self.reprompt(turn)
            return
        turn.slots.update(complaint_type=picked, type_locked=True)
        records.save_complaint(turn)
        await self._after_confirm(turn)
