"""Step 5: the read-back — confirmed, corrected (every field a message names), or added
to as a note for the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actions.facts import OTHER, confused, load_facts, says_dont_know
from bot.dialogue.policy.asking import summary_buttons
from bot.dialogue.policy.gathering import Gathering
from bot.dialogue.policy.rules import (
    MIN_NOTE,
    TYPE_BUTTONS,
    acknowledges,
    asks_to_change,
    outcome_buttons,
    says_something,
    short_reply,
    without_denials,
)
from bot.nlu.labels import COMPLAINT_TYPES
from bot.payloads import Choice, chosen
from bot.store.models import Stage

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn


class ReadBack(Gathering):
    """Step 5's read-back (see the module)."""

    async def _stage_summary(self, turn: Turn) -> None:
        typed = turn.payload is None and bool(turn.text)
        if typed and await self._apply_correction(turn):
            return  # "no, it's 55120934 and I want my money back": changed, read back
        if typed and self._named_field(turn):
            await self._stage_correcting(turn)  # "the order number": change that one
            return
        if typed and self._answer_question(turn, "summary"):
            self.reprompt(turn)  # "how long will this take?": answered, then the question
            return
        if chosen(turn.payload, "summary") == "yes" or (
            turn.payload is None and (turn.intent == "affirm" or acknowledges(turn))
        ):
            await self._close(turn)
        elif (
            chosen(turn.payload, "summary") == "change"
            or (turn.payload is None and turn.intent == "deny")
            or (typed and asks_to_change(turn.text))
        ):
            told = without_denials(turn.text) if typed else turn.text
            if told.strip() != turn.text.strip() and says_something(told):
                # "不对，是扣了三次": what is wrong is said; kept for the agent, not "which
                # item?" (no field of the read-back holds it)
                await self._add_note(turn)
                return
            turn.say("utter_ask_which_change", self._change_buttons(turn))
            turn.stage = Stage.CORRECTING
        elif typed and (confused(turn.text) or says_dont_know(turn.text)):
            # "what?", "idk": what the two buttons do, said plainly (never a yes)
            turn.say("utter_summary_confirm_explained", summary_buttons())
        elif turn.payload is not None or len(turn.text) < MIN_NOTE:
            self.reprompt(turn)
        else:
            await self._add_note(turn)

    async def _apply_correction(self, turn: Turn) -> bool:
        """Change every field the customer's words name; say "updated" only if one changed,
        then read back again."""
        changed = await self._corrections(turn)
        if not changed:
            return False
        if changed == ["desired_outcome"]:
            turn.say("utter_outcome_updated", outcome=turn.slots.get("desired_outcome"))
        else:
            turn.say("utter_correction_done")  # several fields: the read-back shows them
        await self._summarise(turn)
        return True

    async def _add_note(self, turn: Turn) -> None:
        """Words that change no field are kept for the agent, and said to be kept; a
        non-answer ("就这样", "nvm") is not kept: the read-back question stands."""
        if load_facts().is_non_answer(turn.text, turn.language):
            turn.stage = Stage.SUMMARY
            self.reprompt(turn)
            return
        self._note(turn, "correction")
        turn.say("utter_note_added")
        await self._summarise(turn)

    async def _stage_correcting(self, turn: Turn) -> None:
        payload = turn.payload or ""
        if not payload and turn.text and self._answer_question(turn, "summary"):
            self.reprompt(turn)  # "do u need a pic?" to "which item?": answered, then that
            return
        target = chosen(payload, "change")
        if not payload and turn.text:
            target = self._named_field(turn)
            payload = Choice("change", target).pack() if target else ""
        if target == "complaint_type":
            turn.say("utter_ask_complaint_type", TYPE_BUTTONS)
            turn.stage = Stage.CORRECTING_TYPE
        elif target == "desired_outcome":
            turn.slots["motive_locked"] = False
            turn.say("utter_ask_outcome", outcome_buttons())
            turn.stage = Stage.EXPECTATION
        elif target in load_facts().slots:
            turn.slots[target] = None
            turn.slots["correcting"] = True
            self._ask(turn, target)
            turn.slots["requested_slot"] = target
        elif target == OTHER or (not payload and turn.text):
            if turn.text and not payload:
                if await self._apply_correction(turn):
                    return
                if len(turn.text.strip()) < MIN_NOTE or confused(turn.text) or short_reply(turn):
                    self.reprompt(turn)  # "对", "what?" to "which item?": the items again
                else:
                    await self._add_note(turn)
                return
            turn.say("utter_ask_other_text")
            turn.stage = Stage.NOTE
        else:
            self.reprompt(turn)

    async def _stage_correcting_type(self, turn: Turn) -> None:
        picked = chosen(turn.payload, "type")
        if picked not in COMPLAINT_TYPES:
            turn.say("utter_invalid_choice")
            turn.stage = Stage.CORRECTING
            turn.say("utter_ask_which_change", self._change_buttons(turn))
            return
        turn.slots.update(complaint_type=picked, type_locked=True)
        turn.say("utter_correction_done")
        await self._continue_facts(turn)

    async def _stage_note(self, turn: Turn) -> None:
        if turn.payload is not None or not turn.text:
            self.reprompt(turn)
            return
        if not await self._apply_correction(turn):
            await self._add_note(turn)
