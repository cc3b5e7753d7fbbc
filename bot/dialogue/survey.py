"""The customer's side of a follow-up question (bot/telegram/followups.py asks it).

Satisfaction survey (shared/domain.md §6): was your problem solved? (yes / no) -> on
no, what is still not right (open) and the ticket reopens with a supervisor alert ->
a 1-5 rating with buttons -> an optional comment. A score of 2 or less alerts the
supervisors with the transcript. After-service check: is it working well? (yes / no;
no reopens the ticket). Answers are kept on the follow-up row (`data`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.payloads import FollowUpAnswer
from bot.store import FollowUp, Ticket
from bot.store.models import ConversationStatus, Stage
from handoff import tickets
from handoff.events import StaffEvent

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn

STAGES = (
    Stage.SURVEY_SOLVED,
    Stage.SURVEY_WHY,
    Stage.SURVEY_RATING,
    Stage.SURVEY_COMMENT,
    Stage.AFTER_SERVICE,
)
LOW_SCORE = 2
_DIGIT = re.compile(r"^\s*([1-5])\s*(分|星|/\s*5)?\s*$")


def rating_buttons(follow_up_id: int) -> list[dict[str, str]]:
    return [
        {"title": f"{n} ★", "payload": FollowUpAnswer("sv", f"r{n}", follow_up_id).pack()}
        for n in range(1, 6)
    ]


class Survey:
    """Answers to follow-up questions; everything it needs comes with the turn."""

    async def handle(self, turn: Turn) -> None:
        row = self._row(turn)
        if row is None:  # the follow-up is gone: back to a normal conversation
            turn.stage = Stage.IDLE
            turn.say("utter_offer_help")
            return
        handler = getattr(self, f"_{turn.stage}")
        await handler(turn, row)

    def reprompt(self, turn: Turn) -> None:
        """The open question again (after a photo, a sticker, a stale button)."""
        follow_up_id = int(turn.slots.get("follow_up_id") or 0)
        if turn.stage == Stage.SURVEY_SOLVED:
            turn.say("utter_survey_solved_again", yes_no("sv", follow_up_id))
        elif turn.stage == Stage.SURVEY_WHY:
            turn.say("utter_survey_why")
        elif turn.stage == Stage.SURVEY_RATING:
            turn.say("utter_survey_rating", rating_buttons(follow_up_id))
        elif turn.stage == Stage.SURVEY_COMMENT:
            skip = [
                {
                    "title": "button.skip",
                    "payload": FollowUpAnswer("sv", "skip", follow_up_id).pack(),
                }
            ]
            turn.say("utter_survey_comment", skip)
        else:
            turn.say("utter_after_service_again", yes_no("as", follow_up_id))

    def _row(self, turn: Turn) -> FollowUp | None:
        follow_up_id = turn.slots.get("follow_up_id")
        return turn.session.get(FollowUp, follow_up_id) if follow_up_id else None

    def _answer(self, turn: Turn, row: FollowUp) -> str | None:
        """yes / no from the buttons or from typed words (affirm / deny)."""
        pressed = FollowUpAnswer.parse(turn.payload)
        if pressed is not None:
            return pressed.answer
        if turn.payload is None and turn.intent in ("affirm", "deny"):
            return "yes" if turn.intent == "affirm" else "no"
        return None

    def _keep(self, turn: Turn, row: FollowUp, **data: Any) -> None:
        if row.answered_at is None:
            row.answered_at = turn.now
        row.status, row.outcome = "done", "answered"
        row.data = {**row.data, **data}
        turn.session.add(row)

    # --- the survey ------------------------------------------------------------------

    async def _survey_solved(self, turn: Turn, row: FollowUp) -> None:
        answer = self._answer(turn, row)
        if answer == "yes":
            self._keep(turn, row, solved=True)
            self._ask_rating(turn, row, "utter_survey_glad")
        elif answer == "no":
            self._keep(turn, row, solved=False)
            turn.say("utter_survey_why")
            turn.stage = Stage.SURVEY_WHY
        else:
            self.reprompt(turn)

    async def _survey_why(self, turn: Turn, row: FollowUp) -> None:
        if not turn.text:
            turn.say("utter_survey_why")
            return
        self._keep(turn, row, why=turn.text)
        ticket = self._reopen(turn, row, "staff.survey_not_solved", why=turn.text)
        self._ask_rating(
            turn, row, "utter_survey_reopened", ticket=f"#{ticket.id}" if ticket else ""
        )

    def _ask_rating(self, turn: Turn, row: FollowUp, key: str, **values: Any) -> None:
        turn.say(key, **values)
        turn.say("utter_survey_rating", rating_buttons(row.id or 0))
        turn.stage = Stage.SURVEY_RATING

    async def _survey_rating(self, turn: Turn, row: FollowUp) -> None:
        pressed = FollowUpAnswer.parse(turn.payload)
        score = pressed.score if pressed is not None else None
        if turn.payload is None and (match := _DIGIT.match(turn.text)):
            score = int(match.group(1))
        if score is None:
            turn.say("utter_survey_rating", rating_buttons(row.id or 0))
            return
        self._keep(turn, row, rating=score)
        if score <= LOW_SCORE and row.ticket_id is not None:
            turn.staff_events.append(
                StaffEvent(
                    row.ticket_id,
                    "staff.survey_low",
                    {"ticket": f"#{row.ticket_id}", "rating": score},
                    alert=True,
                    transcript=True,
                )
            )
        turn.stage = Stage.SURVEY_COMMENT
        self.reprompt(turn)

    async def _survey_comment(self, turn: Turn, row: FollowUp) -> None:
        if turn.payload is None and turn.text:
            self._keep(turn, row, comment=turn.text)
        turn.say("utter_survey_thanks")
        self._done(turn)

    # --- after a repair or replacement ---------------------------------------------------

    async def _after_service(self, turn: Turn, row: FollowUp) -> None:
        answer = self._answer(turn, row)
        if answer == "yes":
            self._keep(turn, row, working=True)
            turn.say("utter_after_service_good")
            self._done(turn)
        elif answer == "no":
            self._keep(turn, row, working=False)
            ticket = self._reopen(turn, row, "staff.after_service_not_ok")
            turn.say("utter_after_service_reopened", ticket=f"#{ticket.id}" if ticket else "")
            self._done(turn)
        else:
            self.reprompt(turn)

    # --- shared ---------------------------------------------------------------------------

    def _reopen(self, turn: Turn, row: FollowUp, key: str, **values: Any) -> Ticket | None:
        """Not solved: the same ticket goes back to the queue, its topic reopens, the
        supervisors are alerted."""
        ticket = turn.session.get(Ticket, row.ticket_id) if row.ticket_id else None
        if ticket is None:
            return None
        if tickets.reopen(turn.session, ticket, now=turn.now):
            turn.reopened = True
        turn.relay_ticket_id = ticket.id
        turn.slots["reopened_ticket_id"] = ticket.id
        assert ticket.id is not None
        turn.staff_events.append(
            StaffEvent(ticket.id, key, {"ticket": f"#{ticket.id}", **values}, alert=True)
        )
        return ticket

    def _done(self, turn: Turn) -> None:
        """The questions are over: back to the agents if reopened, else closed."""
        reopened = turn.slots.pop("reopened_ticket_id", None)
        turn.slots.pop("follow_up_id", None)
        if reopened:
            turn.conversation.status, turn.stage = ConversationStatus.HANDED_OFF, Stage.HANDED_OFF
            turn.slots["ticket_id"] = reopened
        else:
            turn.conversation.status, turn.stage = ConversationStatus.CLOSED, Stage.CLOSED
            turn.conversation.closed_at = turn.now


def yes_no(prefix: str, follow_up_id: int) -> list[dict[str, str]]:
    """The closed question's buttons: sv (survey) or as (after-service), yes / no."""
    return [
        {
            "title": "button.yes_plain",
            "payload": FollowUpAnswer(prefix, "yes", follow_up_id).pack(),
        },
        {"title": "button.no_plain", "payload": FollowUpAnswer(prefix, "no", follow_up_id).pack()},
    ]
