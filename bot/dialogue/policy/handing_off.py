"""Step 5's end and after: handing the case to a person (or escalating it), the close,
and the conversation while a person has it — the queue, call-backs, a waiting ticket
raised, media passed on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import select

from actions.facts import confused
from bot.dialogue import records
from bot.dialogue.faq import Answer
from bot.dialogue.policy.asking import Asking
from bot.dialogue.policy.rules import (
    MEETS_BUTTONS,
    MENU_BUTTONS,
    RAISE_WHILE_WAITING,
    about_safety,
    acknowledges,
    is_fragment,
    is_threat,
    message_size,
    safety_said,
    says_something,
    typed_meets,
    waiting_topic,
)
from bot.payloads import SlotPick, chosen
from bot.store import FollowUp, Ticket
from bot.store.models import Priority, TicketStatus
from handoff.events import StaffEvent
from handoff.hours import (
    NO_CALLBACK,
    callback_slots,
    parse_slot,
    slot_label,
    slot_payload,
    when_label,
)

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn


class HandingOff(Asking):
    """The hand-off and the conversation while a person has the case."""

    async def _hand_off(self, turn: Turn) -> None:
        """The actions say what happens next and schedule the promises; the customer also
        hears why they wait, their place in the queue and an estimate (§5)."""
        await self.services.tracker.act(turn, "action_handoff")
        await self.services.tracker.act(turn, "action_schedule_follow_up")
        if turn.ticket_id is None:
            return
        settings = self.services.settings
        hours, local = settings.hours, turn.now.astimezone(settings.tz)
        if hours is not None and not hours.is_open(local):
            # Nobody is in: say when they are, and offer a call-back (shared/domain.md §5).
            responses = self.services.responses
            buttons = [
                {"title": slot_label(slot, turn.language, responses), "payload": slot_payload(slot)}
                for slot in callback_slots(hours, local)
            ]
            buttons.append({"title": "button.no_callback", "payload": NO_CALLBACK})
            if turn.slots.get("handoff_kind") == "complaint":
                turn.say("utter_closing")
            turn.say(
                "utter_handoff_after_hours",
                buttons,
                back=when_label(hours.next_opening(local), turn.language, responses),
            )
            return
        wait = self._queue_wait(turn, turn.ticket_id)
        if wait is not None:
            turn.say("utter_queue_place", place=wait[0], wait=wait[1])
            turn.slots.update(told_place=wait[0], wait_minutes=wait[2], callback_offered=False)
        if turn.slots.get("handoff_kind") == "complaint":
            # Step 5: ask whether what happens next meets what they hoped for; a long
            # wait then gets the offer of a call-back (after the answer).
            turn.say("utter_meets_expectation", MEETS_BUTTONS)
            turn.slots["meets_asked"] = True
        elif wait is not None:
            self._offer_callback_if_long(turn, wait[2])

    async def _escalate(self, turn: Turn, *, kind: str, response: str) -> None:
        """Threat of harm or a third insult: a supervisor takes over now."""
        turn.say(response)
        await self._record_what_is_known(turn)
        records.open_ticket(
            turn, self.services.wording, kind=kind, priority=Priority.URGENT, supervisor=True
        )
        turn.slots["handoff_kind"] = kind
        await self._hand_off(turn)

    async def _handoff_now(self, turn: Turn) -> None:
        """The customer asked for a person: hand off at once with what is known."""
        turn.say("utter_handoff_request_human")
        await self._record_what_is_known(turn)
        records.open_ticket(turn, self.services.wording, kind="request_human")
        turn.slots["handoff_kind"] = "request_human"
        await self._hand_off(turn)

    async def _close(self, turn: Turn) -> None:
        """Tell the customer what happens next and by when, then hand off."""
        records.save_complaint(turn)
        priority = int(turn.slots.get("priority") or 0)
        records.open_ticket(turn, self.services.wording, kind="complaint", priority=priority)
        turn.slots["handoff_kind"] = "complaint"
        await self._hand_off(turn)

    def _meets_expectation(
        self, turn: Turn, tickets: list[Ticket], met: bool, *, hoped_for: bool = False
    ) -> None:
        """The answer to "does that meet what you hoped for?": thanks and the close, or
        what they had hoped for goes to the agent (and the topic shows it was not met).
        `hoped_for`: the "no" already says what they wanted ("不是，我想要退款"), which the
        agent sees with the message; it is not asked for again."""
        if turn.slots.get("meets_answered"):
            return  # answered already (Telegram removes the keyboard; a terminal may not)
        turn.slots["meets_answered"] = True
        if met:
            turn.say("utter_closing")
        else:
            for ticket in tickets[-1:]:
                turn.staff_events.append(
                    StaffEvent(
                        ticket.id or 0, "staff.expectation_not_met", {"ticket": f"#{ticket.id}"}
                    )
                )
            turn.say("utter_expectation_noted" if hoped_for else "utter_expectation_not_met")
        if any(ticket.status == TicketStatus.WAITING for ticket in tickets[-1:]):
            self._offer_callback_if_long(turn, int(turn.slots.get("wait_minutes") or 0))

    def _say_place(self, turn: Turn, ticket: Ticket) -> None:
        """Where the ticket is in the queue and about how long, the same estimate as at
        the hand-off; outside business hours, when people are back."""
        back = self._back_at(turn)
        if back is not None:
            turn.say("utter_waiting_after_hours", back=back)
            return
        wait = self._queue_wait(turn, ticket.id or 0)
        if wait is None:
            turn.say("utter_handoff_waiting")
            return
        told = int(turn.slots.get("told_place") or 0)
        if told and wait[0] > told:
            # A place that moves back is explained: urgent cases go first (§5, fair order).
            turn.say("utter_waiting_moved_back", was=told, place=wait[0], wait=wait[1])
        else:
            turn.say("utter_waiting_place", place=wait[0], wait=wait[1])
        turn.slots["told_place"] = wait[0]
        self._offer_callback_if_long(turn, wait[2])

    def _raise_waiting(
        self,
        turn: Turn,
        ticket: Ticket,
        signals: list[str],
        *,
        priority: int = Priority.HIGH,
        said: str = "utter_waiting_raised",
        again: str | None = None,
    ) -> None:
        """A waiting customer now mentions the press or an earlier contact (or something
        unsafe: priority 2): the ticket moves up and a supervisor hears of it (in the
        topic and privately), once: a ticket already raised is not raised again on every
        such message (`again` is said then, else the usual acknowledgement)."""
        if ticket.supervisor_flag and ticket.priority >= priority:
            if again is None:
                self._acknowledge_waiting(turn)
            else:
                turn.say(again)
            return
        ticket.priority = max(ticket.priority, priority)
        ticket.supervisor_flag = True
        turn.session.add(ticket)
        turn.staff_events.append(
            StaffEvent(
                ticket.id or 0,
                "staff.raised_while_waiting",
                {
                    "ticket": f"#{ticket.id}",
                    # in the staff's language (the desk's: DEFAULT_LANGUAGE), as on the card
                    "signals": "; ".join(
                        self.services.responses.label(
                            f"staff.flag_{name}", self.services.settings.default_language
                        )
                        for name in signals
                    ),
                },
                alert=True,
            )
        )
        turn.say(said)

    def _book_callback(self, turn: Turn, ticket: Any) -> None:
        """A call-back slot pressed after hours: a follow-up for the agent on duty."""
        settings = self.services.settings
        if turn.payload == NO_CALLBACK or ticket is None:
            in_hours = turn.slots.get("callback_offered") and self._open_now(turn)
            turn.say("utter_callback_declined_waiting" if in_hours else "utter_callback_declined")
            return
        slot = parse_slot(turn.payload or "", settings.tz)
        if slot is None or slot <= turn.now:
            turn.say("utter_choice_expired")
            return
        assert turn.conversation.id is not None
        booked = turn.session.exec(
            select(FollowUp).where(
                FollowUp.ticket_id == ticket.id,
                FollowUp.kind == "callback",
                FollowUp.status == "pending",
            )
        ).first() or FollowUp(
            ticket_id=ticket.id, conversation_id=turn.conversation.id, kind="callback", due_at=slot
        )
        booked.due_at, booked.note = slot, turn.customer.phone or ""
        turn.session.add(booked)  # one appointment per ticket: a second press moves it
        when = slot_label(slot, turn.language, self.services.responses)
        turn.say("utter_callback_booked", when=when)
        staff_when = slot_label(slot, settings.default_language, self.services.responses)
        turn.staff_events.append(
            StaffEvent(ticket.id, "staff.callback_booked", {"when": staff_when})
        )

    async def _while_handed_off(self, turn: Turn) -> None:
        """A person has the case: the message joins its ticket and is shown to them.

        While the ticket waits the bot keeps talking: how long and where in the queue,
        how to send photos or video, whether anything else is needed, FAQ questions; a
        new threat, media or repeat-contact signal raises the ticket and alerts a
        supervisor. Anything else is acknowledged once. Once an agent has the ticket the
        bot is silent (the agent answers), except that a threat is still flagged.
        """
        tickets = self._relay(turn)
        if SlotPick.parse(turn.payload, self.services.settings.tz) is not None:
            self._book_callback(turn, tickets[-1] if tickets else None)
            return
        if chosen(turn.payload, "meets") in ("yes", "no"):
            self._meets_expectation(turn, tickets, chosen(turn.payload, "meets") == "yes")
            return
        if is_threat(turn):
            self._flag_threat(turn, tickets)
            return
        if any(ticket.status == TicketStatus.ASSIGNED for ticket in tickets) or not turn.text:
            return
        typed = typed_meets(turn)
        if typed is not None:  # "ok thanks" / "不是，我想要退款" instead of a button
            met, rest = typed
            self._meets_expectation(turn, tickets, met, hoped_for=says_something(rest))
            return
        if tickets and safety_said(turn) and not about_safety(tickets[-1]):
            # "the heater caught fire and burned my hand" after a question was passed on:
            # the safety advice first, and the ticket urgent (safety first, domain §5).
            self._raise_waiting(
                turn,
                tickets[-1],
                ["safety"],
                priority=Priority.URGENT,
                said="utter_safety_while_waiting",
                again="utter_safety_while_waiting_again",
            )
            return
        topic = waiting_topic(turn.text, turn.language)
        if topic is None and confused(turn.text):
            topic = "ping"  # "what?" after the hand-off: where they stand, not "noted"
        parse = turn.parse or {}
        scores, phrases = parse.get("signal_scores") or {}, set(parse.get("signal_phrases") or [])
        sure = message_size(turn) >= (4 if turn.language == "en" else 8)
        raised = {
            name
            for name in turn.signals & {"major_media", "repeat_contact"}
            if name in phrases or (sure and float(scores.get(name) or 0) >= RAISE_WHILE_WAITING)
        }
        if raised and tickets and topic != "send_media":  # "视频怎么发" is not the press
            self._raise_waiting(turn, tickets[-1], sorted(raised))
            return
        if topic is None and acknowledges(turn):
            # "ok thanks, I'll wait": not "I've added this to your case"; said once
            if not turn.slots.get("thanked_waiting"):
                turn.say("utter_thank_reply_waiting")
                turn.slots["thanked_waiting"] = True
            return
        answer = None
        if topic is None and turn.intent == "inquiry":
            answer = self.services.faq.answer(turn.text, turn.language)
        if topic in ("how_long", "ping"):  # "are you still there?": where they are
            if tickets:
                self._say_place(turn, tickets[-1])
            else:
                self._acknowledge_waiting(turn)
        elif topic is not None:
            turn.say(f"utter_waiting_{topic}")
        elif answer is not None:
            turn.say(f"faq:{answer.topic}", answer=answer.text)
        else:
            self._acknowledge_waiting(turn)

    def _media_handed_off(self, turn: Turn, media: dict[str, Any]) -> None:
        """A photo, voice message, shared number... while a person has the case: kept
        as before (evidence, the phone number) and shown to the agents as it is, caption
        and all. The bot says only what the person cannot say yet: while the ticket
        waits, that it was passed on; once an agent has it, nothing (the agent answers)."""
        kind = media.get("kind")
        if kind in ("photo", "document"):
            records.add_evidence(turn, kind=str(kind), file_id=str(media["file_id"]))
        elif kind == "contact":
            turn.customer.phone = str(media.get("phone_number") or "") or None
            turn.slots["phone"] = turn.customer.phone
        tickets = self._relay(turn)
        if turn.text and is_threat(turn):
            self._flag_threat(turn, tickets)
        elif any(ticket.status == TicketStatus.ASSIGNED for ticket in tickets):
            return
        elif kind in ("photo", "document"):
            turn.say("utter_evidence_received")
        elif kind == "contact":
            turn.say("utter_contact_received")
        elif kind == "sticker":
            self._acknowledge_waiting(turn)
        else:  # voice, video, location: the person can play or open it, the bot cannot
            turn.say("utter_handoff_waiting")

    async def _inquiry(self, turn: Turn, answer: Answer | None) -> None:
        self._greet_briefly(turn)
        if answer is not None:
            turn.say(f"faq:{answer.topic}", answer=answer.text)
            turn.say("utter_faq_more")
            return
        if is_fragment(turn):
            # "so my headphones": not a question a person should be paged for yet.
            turn.say("utter_not_understood", MENU_BUTTONS)
            return
        turn.say("utter_faq_no_match")
        records.open_ticket(turn, self.services.wording, kind="inquiry")
        turn.slots["handoff_kind"] = "inquiry"
        await self._hand_off(turn)
