"""The dialogue policy: the five steps of shared/domain.md §1, in order.

1 greet by name · 2 empathy before facts, restate to check understanding ·
3 find the expectation (motive) · 4 facts by closed questions, never re-asked ·
5 read back, say what happens next and by when, hand off.

Around them: FAQ answers for questions, thanks for praise, a person on request at any
point, /cancel, the three-strike abuse protocol, threats straight to a supervisor.
The conversation's ``stage`` says which question is open.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlmodel import select

from actions.complaint import MOTIVE_THRESHOLD, mostly_entity, slot_buttons
from actions.facts import OTHER, asks_back, confused, find_term, load_facts, order_id_in
from bot.dialogue import survey
from bot.dialogue.faq import Answer
from bot.dialogue.intensity import AGITATED, intensity
from bot.dialogue.mirror import waited
from bot.nlu.labels import COMPLAINT_TYPES
from bot.payloads import Choice, SlotPick, chosen
from bot.store import FollowUp, Ticket
from bot.store.db import open_tickets
from bot.store.models import ConversationStatus, Priority, Stage, TicketStatus
from bot.store.privacy import forget
from handoff import queue
from handoff.events import StaffEvent
from handoff.hours import (
    NO_CALLBACK,
    callback_slots,
    callback_slots_soon,
    parse_slot,
    slot_label,
    slot_payload,
    when_label,
)

if TYPE_CHECKING:
    from bot.dialogue.services import TurnServices
    from bot.dialogue.turn import Turn

COMPLAINT_CONFIDENCE = 0.4
"""Below this the bot asks what the customer wants instead of assuming a complaint."""
NEAR_TIE = 0.15
NEAR_TIE_FLOOR = 0.25
MAJOR_COMPLAIN_FLOOR = 0.1
REQUEST_HUMAN_CONFIDENCE = 0.5
MEDIA_OVER_THREAT = 0.9
MAX_RESTATEMENTS = 2
RAISE_WHILE_WAITING = 0.95
"""A waiting ticket is raised on a key phrase, or a model this sure about a message of a
few words at least: a raise alerts a supervisor, and small talk while waiting ("the
bank sent me a letter") or a fragment ("last week") can lean."""
MAX_DENIALS = 2
MAX_UNCLEAR = 2
"""Restatements put again in other words before the types are offered as buttons."""
"""Restatements the customer may turn down before the bot stops guessing the type."""
MIN_NOTE = 3
MAX_WORDS = 1000
"""Characters of the customer's story kept as "in your words" (the transcript has all)."""
"""Shorter free text at the read-back (a stray "3") repeats the question, not a note."""
# A button's outcome -> (motive, desired outcome).
OUTCOMES = {
    "refund": ("compensation", "refund"),
    "replacement": ("fix", "replacement"),
    "repair": ("fix", "repair"),
    "explanation": ("explanation", "explanation"),
    "apology": ("apology", "apology"),
}
OUTCOME_BUTTONS = [*OUTCOMES, "other"]
CONFIRM_BUTTONS = [
    {"title": "button.yes", "payload": Choice("confirm", "yes").pack()},
    {"title": "button.not_quite", "payload": Choice("confirm", "no").pack()},
]
TYPE_BUTTONS = [
    {"title": f"type.{name}", "payload": Choice("type", name).pack()} for name in COMPLAINT_TYPES
]
UNSURE_BUTTONS = [
    {"title": "button.yes", "payload": Choice("unsure", "yes").pack()},
    {"title": "button.unsure_no", "payload": Choice("unsure", "no").pack()},
]
SAFE_BUTTONS = [
    {"title": "button.all_safe", "payload": Choice("safe", "yes").pack()},
    {"title": "button.someone_hurt", "payload": Choice("safe", "hurt").pack()},
]
MEETS_BUTTONS = [
    {"title": "button.meets_yes", "payload": Choice("meets", "yes").pack()},
    {"title": "button.meets_no", "payload": Choice("meets", "no").pack()},
]
FORGET_BUTTONS = [
    {"title": "button.forget_yes", "payload": Choice("forget", "yes").pack()},
    {"title": "button.forget_no", "payload": Choice("forget", "no").pack()},
]
MENU_BUTTONS = [
    {"title": "menu.complain", "payload": Choice("menu", "complain").pack()},
    {"title": "menu.question", "payload": Choice("menu", "question").pack()},
    {"title": "menu.human", "payload": Choice("menu", "human").pack()},
]


class Policy:
    def __init__(self, engine: TurnServices) -> None:
        self.engine = engine
        self.survey = survey.Survey()

    async def decide(self, turn: Turn) -> None:
        media = turn.incoming.media
        if media is not None and turn.conversation.status == ConversationStatus.HANDED_OFF:
            self._media_handed_off(turn, media)
            return
        if media is not None and (not self._media(turn, media) or not turn.text):
            return
        if turn.text.startswith("/") and turn.payload is None:
            await self._command(turn)
            return
        if chosen(turn.payload, "forget") is not None:
            self._forget(turn)
            return
        if turn.conversation.status == ConversationStatus.HANDED_OFF:
            await self._while_handed_off(turn)
            return
        if _threat(turn):
            await self._escalate(turn, kind="threat", response="utter_threat_supervisor")
            return
        if "abusive" in turn.signals:
            strikes = int(turn.slots.get("abuse_strikes") or 0) + 1
            turn.slots["abuse_strikes"] = strikes
            if strikes >= 3:
                await self._escalate(turn, kind="abuse", response="utter_abuse_strike_3")
                return
            self._greet_briefly(turn)
            turn.say(f"utter_abuse_strike_{strikes}")
        if chosen(turn.payload, "menu") == "human" or (
            turn.intent == "request_human" and turn.intent_confidence >= REQUEST_HUMAN_CONFIDENCE
        ):
            await self._handoff_now(turn)
            return
        if turn.stage in survey.STAGES:
            await self.survey.handle(turn)
            return
        if turn.stage == Stage.IDLE and self._reopen(turn):
            return
        if self._asks_how_to_send_media(turn):
            # "can I send you a photo of the receipt?" in the middle of the questions is
            # answered, then the question stands; it is neither an answer nor a note.
            turn.say("utter_waiting_send_media")
            self.reprompt(turn)
            return
        handler = getattr(self, f"_stage_{turn.stage}", self._stage_idle)
        await handler(turn)

    @staticmethod
    def _asks_how_to_send_media(turn: Turn) -> bool:
        return (
            turn.payload is None
            and turn.stage
            in ("confirming", "expectation", "facts", "fact_other", "fact_open", "summary")
            and len(turn.text) <= 120
            and waiting_topic(turn.text, turn.language) == "send_media"
            # a question about sending, not a fact that mentions photos ("拍照的时候闪退")
            and (
                turn.text.rstrip().endswith(("?", "？"))
                or any(word in turn.text.lower() for word in ("how", "can i", "where", "怎么"))
            )
        )

    def _reopen(self, turn: Turn) -> bool:
        """Soon after a ticket was resolved, a complaint or a "no, not solved" reopens it:
        the same case, the same agents, not a new queue entry from zero."""
        if turn.parse is None:
            return False
        if not (_is_complaint(turn, faq_matched=False) or turn.intent == "deny"):
            return False
        assert turn.customer.id is not None
        ticket = queue.recently_resolved(
            turn.session,
            customer_id=turn.customer.id,
            since=turn.now - self.engine.settings.reopen_window,
        )
        if ticket is None:
            return False
        ticket.status, ticket.resolved_at, ticket.updated_at = TicketStatus.WAITING, None, turn.now
        ticket.agent_id, ticket.agent_name = None, None
        ticket.checked_in_at, ticket.untaken_alert_at = turn.now, None
        ticket.conversation_id = turn.conversation.id or ticket.conversation_id
        turn.session.add(ticket)
        turn.slots.update(complaint_id=ticket.complaint_id, ticket_id=ticket.id)
        turn.conversation.status, turn.stage = ConversationStatus.HANDED_OFF, Stage.HANDED_OFF
        turn.relay_ticket_id, turn.reopened = ticket.id, True
        self._greet_briefly(turn)
        turn.say("utter_ticket_reopened", ticket=f"#{ticket.id}")
        return True

    # --- around the complaint --------------------------------------------------------

    def _media(self, turn: Turn, media: dict[str, Any]) -> bool:
        """A photo, document, contact... Returns whether a caption goes on as text."""
        kind = media.get("kind")
        self._greet_briefly(turn)
        if kind in ("photo", "document"):
            self.engine.add_evidence(turn, kind=str(kind), file_id=str(media["file_id"]))
            in_case = (
                bool(turn.slots.get("complaint_id"))
                or turn.conversation.status != ConversationStatus.OPEN
            )
            turn.say("utter_evidence_received" if in_case else "utter_evidence_first")
            return True
        if kind == "contact":
            turn.customer.phone = str(media.get("phone_number") or "") or None
            turn.slots["phone"] = turn.customer.phone
            turn.say("utter_contact_received")
        elif kind == "location":
            turn.slots["location"] = {k: media.get(k) for k in ("latitude", "longitude")}
            turn.say("utter_media_location")
        elif kind in ("voice", "video_note", "audio", "video"):
            turn.say("utter_media_voice")
        else:
            turn.say("utter_media_sticker")
        if turn.conversation.status == ConversationStatus.OPEN and turn.stage != Stage.IDLE:
            self.reprompt(turn)
        return False

    async def _command(self, turn: Turn) -> None:
        command, _, argument = turn.text.partition(" ")
        command = command.split("@")[0].lower()
        argument = argument.strip()
        if command == "/lang":
            self._switch_language(turn, argument)
            return
        if command == "/privacy":
            turn.say("utter_privacy")
            return
        if command == "/forget":
            turn.say("utter_forget_confirm", FORGET_BUTTONS)
            return
        if command == "/help":
            turn.say("utter_help")
            return
        if command == "/start" and argument:
            # A deep link (t.me/bot?start=SO2024...) brings a known fact: never asked again.
            found = order_id_in(argument.replace("_", "-"))
            if found and not turn.slots.get("order_id"):
                turn.slots["order_id"] = found
        if command == "/cancel":
            if turn.conversation.status == ConversationStatus.HANDED_OFF:
                self._cancel_tickets(turn)
            turn.say("utter_cancel")
            turn.conversation.status = ConversationStatus.CLOSED
            turn.conversation.closed_at = turn.now
            turn.stage = Stage.CLOSED
        elif command == "/start" and turn.stage == Stage.IDLE:
            self._greet(turn)
        elif turn.conversation.status == ConversationStatus.HANDED_OFF:
            turn.say("utter_handoff_waiting")
        elif command == "/start":
            # Mid-conversation: repeat the open question rather than start over.
            self.reprompt(turn)
        else:
            turn.say("utter_not_understood", MENU_BUTTONS)

    def _forget(self, turn: Turn) -> None:
        """/forget confirmed: open tickets cancelled, their topics deleted, personal data
        erased (bot/store/privacy.py); anonymous figures stay for the reports."""
        if chosen(turn.payload, "forget") != "yes":
            turn.say("utter_forget_kept")
            return
        if turn.conversation.status == ConversationStatus.HANDED_OFF:
            self._cancel_tickets(turn)
        turn.staff_events.clear()
        for ticket_id in forget(turn.session, turn.customer, keep_message=turn.message_id):
            turn.staff_events.append(
                StaffEvent(ticket_id, "staff.customer_cancelled", delete_topic=True)
            )
        turn.slots.clear()
        turn.complaint = None
        turn.conversation.status, turn.stage = ConversationStatus.CLOSED, Stage.CLOSED
        turn.conversation.closed_at = turn.now
        turn.say("utter_forget_done")

    def _cancel_tickets(self, turn: Turn) -> None:
        """The customer no longer wants a person: the ticket closes, its topic says why."""
        for ticket in open_tickets(turn.session, conversation_id=turn.conversation.id or 0):
            ticket.status, ticket.resolved_at, ticket.updated_at = "cancelled", turn.now, turn.now
            ticket.resolution = "cancelled by the customer"
            turn.session.add(ticket)
            assert ticket.id is not None
            turn.staff_events.append(
                StaffEvent(ticket.id, "staff.customer_cancelled", close_topic=True)
            )

    def _switch_language(self, turn: Turn, wanted: str) -> None:
        """/lang zh, /lang en, or /lang alone to switch to the other one."""
        wanted = wanted.lower()[:2]
        if wanted not in ("zh", "en"):
            wanted = "en" if turn.language == "zh" else "zh"
        turn.conversation.language = wanted
        turn.customer.language = wanted
        turn.slots["language_chosen"] = True
        turn.say("utter_language_set")
        if turn.stage not in (Stage.IDLE, Stage.CLOSED, Stage.HANDED_OFF):
            self.reprompt(turn)

    def _greet(self, turn: Turn) -> None:
        turn.say("utter_greet_returning" if turn.slots.get("returning") else "utter_greet")
        turn.slots["greeted"] = True

    def _greet_briefly(self, turn: Turn) -> None:
        if not turn.slots.get("greeted"):
            turn.say("utter_greet_brief")
            turn.slots["greeted"] = True

    def _relay(self, turn: Turn) -> list[Ticket]:
        """The message joins the conversation's open ticket, to be shown in its topic."""
        tickets = open_tickets(turn.session, conversation_id=turn.conversation.id or 0)
        if tickets:
            turn.relay_ticket_id = tickets[-1].id
        return tickets

    def _media_handed_off(self, turn: Turn, media: dict[str, Any]) -> None:
        """A photo, voice message, shared number... while a person has the case: kept
        as before (evidence, the phone number) and shown to the agents as it is, caption
        and all. The bot says only what the person cannot say yet: while the ticket
        waits, that it was passed on; once an agent has it, nothing (the agent answers)."""
        kind = media.get("kind")
        if kind in ("photo", "document"):
            self.engine.add_evidence(turn, kind=str(kind), file_id=str(media["file_id"]))
        elif kind == "contact":
            turn.customer.phone = str(media.get("phone_number") or "") or None
            turn.slots["phone"] = turn.customer.phone
        tickets = self._relay(turn)
        if turn.text and _threat(turn):
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

    def _flag_threat(self, turn: Turn, tickets: list[Ticket]) -> None:
        for ticket in tickets:
            ticket.priority, ticket.supervisor_flag = Priority.URGENT, True
            turn.session.add(ticket)
            turn.staff_events.append(
                StaffEvent(
                    ticket.id or 0, "staff.threat_flagged", {"ticket": f"#{ticket.id}"}, alert=True
                )
            )
        turn.say("utter_threat_supervisor")

    def _acknowledge_waiting(self, turn: Turn) -> None:
        if not turn.slots.get("waiting_acknowledged"):
            turn.say("utter_handoff_waiting")
            turn.slots["waiting_acknowledged"] = True

    async def _while_handed_off(self, turn: Turn) -> None:
        """A person has the case: the message joins its ticket and is shown to them.

        While the ticket waits the bot keeps talking: how long and where in the queue,
        how to send photos or video, whether anything else is needed, FAQ questions; a
        new threat, media or repeat-contact signal raises the ticket and alerts a
        supervisor. Anything else is acknowledged once. Once an agent has the ticket the
        bot is silent (the agent answers), except that a threat is still flagged.
        """
        tickets = self._relay(turn)
        if SlotPick.parse(turn.payload, self.engine.settings.tz) is not None:
            self._book_callback(turn, tickets[-1] if tickets else None)
            return
        if chosen(turn.payload, "meets") in ("yes", "no"):
            self._meets_expectation(turn, tickets)
            return
        if _threat(turn):
            self._flag_threat(turn, tickets)
            return
        if any(ticket.status == TicketStatus.ASSIGNED for ticket in tickets) or not turn.text:
            return
        if tickets and _safety_said(turn) and not _about_safety(tickets[-1]):
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
        parse = turn.parse or {}
        scores, phrases = parse.get("signal_scores") or {}, set(parse.get("signal_phrases") or [])
        sure = _size(turn) >= (4 if turn.language == "en" else 8)
        raised = {
            name
            for name in turn.signals & {"major_media", "repeat_contact"}
            if name in phrases or (sure and float(scores.get(name) or 0) >= RAISE_WHILE_WAITING)
        }
        if raised and tickets and topic != "send_media":  # "视频怎么发" is not the press
            self._raise_waiting(turn, tickets[-1], sorted(raised))
            return
        answer = None
        if topic is None and turn.intent == "inquiry":
            answer = self.engine.faq.answer(turn.text, turn.language)
        if topic == "how_long":
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

    def _say_place(self, turn: Turn, ticket: Ticket) -> None:
        """Where the ticket is in the queue and about how long, the same estimate as at
        the hand-off; outside business hours, when people are back."""
        settings = self.engine.settings
        hours, local = settings.hours, turn.now.astimezone(settings.tz)
        if hours is not None and not hours.is_open(local):
            back = when_label(hours.next_opening(local), turn.language, self.engine.responses)
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

    def _open_now(self, turn: Turn) -> bool:
        hours = self.engine.settings.hours
        return hours is None or hours.is_open(turn.now.astimezone(self.engine.settings.tz))

    def _queue_wait(self, turn: Turn, ticket_id: int) -> tuple[int, str, int] | None:
        """The ticket's place in the queue, the estimated wait in words and minutes."""
        place = queue.position(
            turn.session,
            ticket_id,
            now=turn.now,
            starve_after=self.engine.settings.starvation_limit,
        )
        if not place:
            return None
        minutes = queue.estimated_wait_minutes(turn.session, place)
        return place, self.engine.responses.duration(60 * minutes, turn.language), minutes

    def _offer_callback_if_long(self, turn: Turn, minutes: int) -> None:
        """Past a few minutes' wait, "wait, or shall we get back to you?" (shared/domain.md
        §5): call-back slots as buttons, once per ticket, none once one is booked."""
        if minutes * 60 <= self.engine.settings.callback_offer.total_seconds() or turn.slots.get(
            "callback_offered"
        ):
            return
        settings = self.engine.settings
        local = turn.now.astimezone(settings.tz)
        responses = self.engine.responses
        buttons = [
            {"title": slot_label(slot, turn.language, responses), "payload": slot_payload(slot)}
            for slot in callback_slots_soon(settings.hours, local)
        ]
        buttons.append({"title": "button.will_wait", "payload": NO_CALLBACK})
        turn.slots["callback_offered"] = True
        turn.say("utter_offer_callback_long", buttons)

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
                        self.engine.responses.label(
                            f"staff.flag_{name}", self.engine.settings.default_language
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
        settings = self.engine.settings
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
        when = slot_label(slot, turn.language, self.engine.responses)
        turn.say("utter_callback_booked", when=when)
        staff_when = slot_label(slot, settings.default_language, self.engine.responses)
        turn.staff_events.append(
            StaffEvent(ticket.id, "staff.callback_booked", {"when": staff_when})
        )

    async def _escalate(self, turn: Turn, *, kind: str, response: str) -> None:
        """Threat of harm or a third insult: a supervisor takes over now."""
        turn.say(response)
        await self._record_what_is_known(turn)
        self.engine.open_ticket(turn, kind=kind, priority=Priority.URGENT, supervisor=True)
        turn.slots["handoff_kind"] = kind
        await self._hand_off(turn)

    async def _handoff_now(self, turn: Turn) -> None:
        """The customer asked for a person: hand off at once with what is known."""
        turn.say("utter_handoff_request_human")
        await self._record_what_is_known(turn)
        self.engine.open_ticket(turn, kind="request_human")
        turn.slots["handoff_kind"] = "request_human"
        await self._hand_off(turn)

    async def _record_what_is_known(self, turn: Turn) -> None:
        """Before an early hand-off: the facts said so far and the summary, silently."""
        if not turn.slots.get("complaint_id"):
            return
        await self.engine.act(turn, "validate_complaint_form", silent=True)
        await self.engine.act(turn, "action_summarise", silent=True)
        self.engine.save_complaint(turn)

    async def _hand_off(self, turn: Turn) -> None:
        """The actions say what happens next and schedule the promises; the customer also
        hears why they wait, their place in the queue and an estimate (§5)."""
        await self.engine.act(turn, "action_handoff")
        await self.engine.act(turn, "action_schedule_follow_up")
        if turn.ticket_id is None:
            return
        settings = self.engine.settings
        hours, local = settings.hours, turn.now.astimezone(settings.tz)
        if hours is not None and not hours.is_open(local):
            # Nobody is in: say when they are, and offer a call-back (shared/domain.md §5).
            responses = self.engine.responses
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
        elif wait is not None:
            self._offer_callback_if_long(turn, wait[2])

    def _meets_expectation(self, turn: Turn, tickets: list[Ticket]) -> None:
        """The answer to "does that meet what you hoped for?": thanks and the close, or
        what they had hoped for goes to the agent (and the topic shows it was not met)."""
        if turn.slots.get("meets_answered"):
            return  # answered already (Telegram removes the keyboard; a terminal may not)
        turn.slots["meets_answered"] = True
        if chosen(turn.payload, "meets") == "yes":
            turn.say("utter_closing")
        else:
            for ticket in tickets[-1:]:
                turn.staff_events.append(
                    StaffEvent(
                        ticket.id or 0, "staff.expectation_not_met", {"ticket": f"#{ticket.id}"}
                    )
                )
            turn.say("utter_expectation_not_met")
        if any(ticket.status == TicketStatus.WAITING for ticket in tickets[-1:]):
            self._offer_callback_if_long(turn, int(turn.slots.get("wait_minutes") or 0))

    def reprompt(self, turn: Turn) -> None:
        """Ask the open question again (a stale button, /start mid-way)."""
        stage = turn.stage
        if stage == Stage.CONFIRMING:
            self._restate(turn)
        elif stage in (Stage.EXPECTATION,):
            turn.say("utter_ask_outcome", _outcome_buttons())
        elif stage in (Stage.FACTS,) and turn.slots.get("requested_slot"):
            self._ask(turn, str(turn.slots["requested_slot"]))
        elif stage == Stage.SUMMARY:
            turn.say(
                "utter_summary_confirm",
                [
                    {"title": "button.correct", "payload": Choice("summary", "yes").pack()},
                    {"title": "button.change", "payload": Choice("summary", "change").pack()},
                ],
            )
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
        answer = self.engine.faq.answer(turn.text, turn.language) if intent == "inquiry" else None
        if _is_complaint(turn, faq_matched=answer is not None):
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

    async def _inquiry(self, turn: Turn, answer: Answer | None) -> None:
        self._greet_briefly(turn)
        if answer is not None:
            turn.say(f"faq:{answer.topic}", answer=answer.text)
            turn.say("utter_faq_more")
            return
        if _fragment(turn):
            # "so my headphones": not a question a person should be paged for yet.
            turn.say("utter_not_understood", MENU_BUTTONS)
            return
        turn.say("utter_faq_no_match")
        self.engine.open_ticket(turn, kind="inquiry")
        turn.slots["handoff_kind"] = "inquiry"
        await self._hand_off(turn)

    # --- step 2: empathy, then restate -------------------------------------------------

    async def _start_complaint(self, turn: Turn) -> None:
        assert turn.parse is not None
        turn.slots.update(
            complaint_from=turn.message_id,
            first_words=turn.text,
            complaint_texts=[turn.text],
            restatements=0,
            complaints_90d=self.engine.prior_complaints(turn),
        )
        await self.engine.act(turn, "action_record_complaint")
        self.engine.save_complaint(turn)
        self._greet_briefly(turn)
        agitated = intensity(turn.text, turn.parse) >= AGITATED
        if turn.slots.get("major"):
            turn.say("utter_empathy_major")
            self._mirror_wait(turn)
        else:
            self._empathise(turn, "strong" if agitated else "mild")
        if turn.slots.get("complaint_type") == "safety" and self._ask_if_safe(turn):
            return
        if agitated and not turn.slots.get("major") and not _full_account(turn):
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

    def _safety_advice(self, turn: Turn, injury: str) -> None:
        """Someone hurt: medical help first; otherwise: stop using it. The answer is the
        "has anyone been hurt?" fact, so it is not asked again."""
        turn.slots["injury"] = injury
        turn.say("utter_safety_hurt" if injury == "yes" else "utter_safety_safe")

    async def _stage_safety_check(self, turn: Turn) -> None:
        """The answer to "is everyone safe?": a button, words that say it, or a plain
        yes. Anything else is heard as more of the story (the fact is asked later)."""
        payload = turn.payload or ""
        if chosen(payload, "safe") in ("yes", "hurt"):
            injury: str | None = "no" if chosen(payload, "safe") == "yes" else "yes"
        elif payload or not turn.text:
            self.reprompt(turn)
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
            self.engine.save_complaint(turn)
        self._restate(turn)

    def _empathise(self, turn: Turn, level: str) -> None:
        """The acknowledgement names what kind of thing happened (a parcel that did not
        come, money taken wrongly, being left without an answer) when the type is known,
        in the customer's own words where they gave them: the product they named ("your
        headphones"), the sum taken ("$59.99") and how long they say they have waited
        ("10 days")."""
        typed = f"utter_empathy_{level}_{turn.slots.get('complaint_type')}"
        known = self.engine.responses.packs[turn.language].responses
        amount = self._named_entity(turn, "amount")
        product = self._named_entity(turn, "product")
        if amount and f"{typed}_amount" in known:
            turn.say(f"{typed}_amount", amount=amount)
        elif product and f"{typed}_named" in known:
            turn.say(f"{typed}_named", what=product)
        else:
            turn.say(typed if typed in known else f"utter_empathy_{level}")
        self._mirror_wait(turn)

    @staticmethod
    def _mirror_wait(turn: Turn) -> None:
        """How long they say they have waited, in their words, after the empathy."""
        wait = waited(" ".join(turn.slots.get("complaint_texts") or [turn.text]), turn.language)
        if wait:
            turn.say("utter_empathy_waited", wait=wait)

    def _restate(self, turn: Turn) -> None:
        complaint_type = str(turn.slots.get("complaint_type") or "other")
        turn.say(f"utter_restate_{complaint_type}", CONFIRM_BUTTONS, what=self._what(turn))
        turn.slots["restatements"] = int(turn.slots.get("restatements") or 0) + 1
        turn.stage = Stage.CONFIRMING

    def _named_entity(self, turn: Turn, name: str) -> str | None:
        """A product or sum as the customer typed it, if they did (a word shouted in
        capitals is said back in lower case)."""
        for message in self.engine.user_events(turn):
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
        return self.engine.responses.label(f"value.{generic}", turn.language)

    async def _stage_listening(self, turn: Turn) -> None:
        """The customer tells more after an open question."""
        if turn.payload is not None or not turn.text:
            self.reprompt(turn)
            return
        if not turn.slots.get("complaint_id"):
            if turn.parse is not None:
                await self._start_complaint(turn)
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

    async def _hear_more(self, turn: Turn, *, fresh: bool) -> None:
        """Re-classify with what the customer added (alone, if they corrected us)."""
        texts = [*turn.slots.get("complaint_texts", []), turn.text]
        turn.slots["complaint_texts"] = texts
        # The read-back's "in your words" is the whole story as they told it.
        turn.slots["first_words"] = " / ".join(texts)[:MAX_WORDS]
        latest = (
            turn.parse
            if fresh
            else await self.engine.nlu.parse_in_turn(" ".join(texts)[-4000:], today=turn.today)
        )
        if latest is not None and turn.parse is not None:
            latest = {**latest, "signals": sorted(set(latest.get("signals") or []) | turn.signals)}
        await self.engine.act(turn, "action_record_complaint", latest=latest)
        self.engine.save_complaint(turn)

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

    def _named_type(self, turn: Turn) -> str | None:
        """The one type whose button words (or their first word) the text contains."""
        typed = turn.text.lower()
        named = []
        for name in COMPLAINT_TYPES:
            label = self.engine.responses.label(f"type.{name}", turn.language).lower()
            parts = [part.strip() for part in label.split("/") if part.strip()]
            # a label's key word: its first word ("delivery"), or a Chinese part's first
            # two characters ("物流", "售后"); "something else" only in full
            keys = [part[:2] if turn.language == "zh" else part.split()[0] for part in parts]
            if label in typed or (name != "other" and any(key in typed for key in keys)):
                named.append(name)
        return named[0] if len(named) == 1 else None

    def _ask_type_or_person(self, turn: Turn) -> None:
        """The types as buttons, and a person as the last one."""
        turn.say("utter_ask_type_or_person", [*TYPE_BUTTONS, MENU_BUTTONS[2]])
        turn.stage = Stage.CHOOSING_TYPE

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
        self.engine.save_complaint(turn)
        await self._after_confirm(turn)

    # --- step 3: the expectation ----------------------------------------------------------

    async def _after_confirm(self, turn: Turn) -> None:
        motive = turn.slots.get("motive")
        if motive is None:
            turn.say("utter_ask_outcome", _outcome_buttons())
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
        elif _answers_nothing(turn):
            # "你说啥", "whatever", "last week": ask once more, then go on without it.
            if not turn.slots.get("outcome_unclear"):
                turn.slots["outcome_unclear"] = True
                # "啥意思?" / "what do you mean?": the question said another way
                core = turn.text.strip(" ?？!！。.").lower()
                asked_back = asks_back(turn.text) or (
                    core.endswith("意思") or core in ("what", "huh")
                )
                key = "utter_ask_outcome_explained" if asked_back else "utter_invalid_choice"
                turn.say(key, _outcome_buttons())
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

    def _outcome_from_text(self, turn: Turn) -> None:
        motive = turn.parse.get("motive") if turn.parse else None
        name = motive["name"] if motive else "explanation"
        outcome = load_facts().outcome(name, turn.text, turn.language)
        if (motive["confidence"] if motive else 0.0) < MOTIVE_THRESHOLD:
            outcome = load_facts().outcome(None, turn.text, turn.language) or OTHER
        turn.slots.update(
            motive=name, desired_outcome=outcome, outcome_text=turn.text, motive_locked=True
        )

    # --- step 4: facts, closed questions ----------------------------------------------------

    async def _continue_facts(self, turn: Turn) -> None:
        """Fill what the customer already said, then ask the next missing fact or sum up."""
        turn.stage = Stage.FACTS
        await self.engine.act(turn, "validate_complaint_form")
        self.engine.save_complaint(turn)
        requested = turn.slots.get("requested_slot")
        if requested is None:
            await self._summarise(turn)
            return
        if not turn.slots.get("facts_introduced"):
            turn.say("utter_facts_intro")
            turn.slots["facts_introduced"] = True
        self._ask(turn, str(requested))

    def _ask(self, turn: Turn, slot: str) -> None:
        unsure = turn.slots.get(f"unsure_{slot}")
        if unsure:
            # "Order 30012288776 — is that right?": a closed question, not an open one.
            turn.say(f"utter_confirm_{slot}", UNSURE_BUTTONS, value=unsure)
        else:
            turn.say(f"utter_ask_{slot}", slot_buttons(load_facts().slots[slot]))
        turn.stage = Stage.FACTS

    async def _stage_facts(self, turn: Turn) -> None:
        requested = turn.slots.get("requested_slot")
        if requested is None:
            await self._continue_facts(turn)
            return
        payload = turn.payload or ""
        unsure = turn.slots.pop(f"unsure_{requested}", None)
        if chosen(payload, "unsure") == "yes" and unsure:
            turn.slots[str(requested)] = unsure
            await self.engine.act(turn, "validate_complaint_form")
            self.engine.save_complaint(turn)
            await self._next_fact(turn)
            return
        if chosen(payload, "unsure") == "no":
            self._ask(turn, str(requested))  # the open question now
            return
        if (answer := chosen(payload, "slot")) is not None:
            name, _, value = answer.partition("=")
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
        else:
            candidate = turn.text
        await self._answer(turn, str(requested), candidate)

    async def _answer(self, turn: Turn, slot_name: str, candidate: Any) -> None:
        await self.engine.act(turn, "validate_complaint_form", candidates={slot_name: candidate})
        self.engine.save_complaint(turn)
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
        await self.engine.act(turn, "validate_complaint_form")
        self.engine.save_complaint(turn)
        await self._next_fact(turn)

    # --- step 5: read back, confirm, hand off ---------------------------------------------

    async def _summarise(self, turn: Turn) -> None:
        turn.slots["requested_slot"] = None
        await self.engine.act(turn, "action_summarise")
        self.engine.save_complaint(turn)
        turn.stage = Stage.SUMMARY

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
            turn.payload is None and (turn.intent == "affirm" or _acknowledges(turn))
        ):
            await self._close(turn)
        elif (
            chosen(turn.payload, "summary") == "change"
            or (turn.payload is None and turn.intent == "deny")
            or (typed and _asks_to_change(turn.text))
        ):
            turn.say("utter_ask_which_change", self._change_buttons(turn))
            turn.stage = Stage.CORRECTING
        elif turn.payload is not None or len(turn.text) < MIN_NOTE:
            self.reprompt(turn)
        else:
            await self._add_note(turn)

    def _answer_question(self, turn: Turn, stage: str) -> bool:
        """A question asked during the questions or at the read-back is answered; it is
        neither an answer nor a note for the agent. "How long will this take?" gets the
        first-contact time (or when people are back, out of hours); a question the FAQ
        knows gets its answer."""
        question = asks_back(turn.text) or turn.intent == "inquiry"
        if not question:
            return False
        if waiting_topic(turn.text, turn.language) == "how_long":
            settings = self.engine.settings
            local = turn.now.astimezone(settings.tz)
            if settings.hours is not None and not settings.hours.is_open(local):
                back = when_label(
                    settings.hours.next_opening(local), turn.language, self.engine.responses
                )
                turn.say(f"utter_{stage}_how_long_after_hours", back=back)
            else:
                sla = self.engine.responses.duration(
                    int(settings.first_contact_sla.total_seconds()), turn.language
                )
                turn.say(f"utter_{stage}_how_long", sla=sla)
            return True
        if turn.intent == "inquiry":
            answer = self.engine.faq.answer(turn.text, turn.language)
            if answer is not None:
                turn.say(f"faq:{answer.topic}", answer=answer.text)
                return True
        return False

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

    async def _corrections(self, turn: Turn) -> list[str]:
        """Apply what this message names (outcome, facts, contact); the changed fields."""
        await self.engine.act(turn, "action_apply_correction", silent=True)
        changed = list(turn.slots.pop("corrected", None) or [])
        if changed:
            self.engine.save_complaint(turn)
        return changed

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

    def _note(self, turn: Turn, key: str) -> None:
        notes = dict(turn.slots.get("notes") or {})
        notes[key] = turn.text
        turn.slots["notes"] = notes

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

    async def _stage_correcting(self, turn: Turn) -> None:
        payload = turn.payload or ""
        target = chosen(payload, "change")
        if not payload and turn.text:
            target = self._named_field(turn)
            payload = Choice("change", target).pack() if target else ""
        if target == "complaint_type":
            turn.say("utter_ask_complaint_type", TYPE_BUTTONS)
            turn.stage = Stage.CORRECTING_TYPE
        elif target == "desired_outcome":
            turn.slots["motive_locked"] = False
            turn.say("utter_ask_outcome", _outcome_buttons())
            turn.stage = Stage.EXPECTATION
        elif target in load_facts().slots:
            turn.slots[target] = None
            turn.slots["correcting"] = True
            self._ask(turn, target)
            turn.slots["requested_slot"] = target
        elif target == OTHER or (not payload and turn.text):
            if turn.text and not payload:
                if not await self._apply_correction(turn):
                    await self._add_note(turn)
                return
            turn.say("utter_ask_other_text")
            turn.stage = Stage.NOTE
        else:
            self.reprompt(turn)

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
            and (label := self.engine.responses.label(button["title"], turn.language).lower())
            and (label in typed or (len(typed) >= 4 and typed in label))
        ]
        return named[0] if len(named) == 1 else None

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

    async def _close(self, turn: Turn) -> None:
        """Tell the customer what happens next and by when, then hand off."""
        self.engine.save_complaint(turn)
        priority = int(turn.slots.get("priority") or 0)
        self.engine.open_ticket(turn, kind="complaint", priority=priority)
        turn.slots["handoff_kind"] = "complaint"
        await self._hand_off(turn)


def _answers_nothing(turn: Turn) -> bool:
    """A reply that answers nothing ("idk", "你说啥"), or only a date, a number or an
    address where a choice was asked ("last week" to "what would you like?")."""
    if load_facts().is_non_answer(turn.text, turn.language):
        return True
    return mostly_entity(turn.parse or {}, turn.text, ("date", "order_id", "phone", "email"))


ACKNOWLEDGED_SIZE = {"en": 4, "zh": 6}


def _acknowledges(turn: Turn) -> bool:
    """ "ok thanks", "好的谢谢" to "is that all correct?": a yes, not a note for the agent."""
    return turn.intent == "thank" and _size(turn) <= ACKNOWLEDGED_SIZE.get(turn.language, 4)


def _size(turn: Turn) -> int:
    """How much the customer wrote: words in English, characters (spaces left out) in
    Chinese."""
    text = turn.text.strip()
    return len(text.split()) if turn.language == "en" else len("".join(text.split()))


def _fragment(turn: Turn) -> bool:
    """A few words that are no question yet ("so my headphones", "关于那个")."""
    if turn.text.strip().endswith(("?", "？")):
        return False
    return _size(turn) < (4 if turn.language == "en" else 6)


FULL_ACCOUNT_ENTITIES = ("order_id", "product", "date", "amount")
FACT_ENTITIES = ("order_id", "phone", "email", "date")


def _full_account(turn: Turn) -> bool:
    """A first message that already tells the story: long, or of fair length with a
    concrete fact in it (an order number, the product, a date, a sum)."""
    size = _size(turn)
    long_enough, fair = (40, 12) if turn.language == "en" else (60, 20)
    if size >= long_enough:
        return True
    entities = (turn.parse or {}).get("entities") or []
    return size >= fair and any(e.get("entity") in FULL_ACCOUNT_ENTITIES for e in entities)


CHANGE_WORDS = ("change", "correct", "edit", "fix that", "wrong", "改", "修改", "不对", "更正")
"""Short typed requests to change the read-back ("改一下", "change it"): the change buttons."""


def _asks_to_change(text: str) -> bool:
    lowered = text.strip().lower()
    return len(lowered) <= 20 and any(word in lowered for word in CHANGE_WORDS)


@cache
def _waiting_topics() -> dict[str, dict[str, tuple[str, ...]]]:
    raw = yaml.safe_load((Path(__file__).parent / "waiting.yml").read_text(encoding="utf-8"))
    return {
        topic: {lang: tuple(str(p).lower() for p in phrases) for lang, phrases in by.items()}
        for topic, by in raw["topics"].items()
    }


def waiting_topic(text: str, language: str) -> str | None:
    """What a waiting customer asks about (waiting.yml), in either language."""
    lowered = text.lower()
    for topic, by_language in _waiting_topics().items():
        phrases = (*by_language.get(language, ()), *by_language.get("en", ()))
        if language != "zh":
            phrases += by_language.get("zh", ())
        if any(phrase in lowered for phrase in phrases):
            return topic
    return None


def _is_complaint(turn: Turn, faq_matched: bool) -> bool:
    """A complaint when the model says so, or nearly says so and no FAQ fits.

    Plain descriptions of a fault ("the screen flickers all the time") sit between
    `complain` and `inquiry`; treating a near tie as a complaint costs an empathy line
    and a check question ("is that right?"), missing one costs the customer.
    """
    if turn.parse is None:
        return False
    ranking = {item["name"]: float(item["confidence"]) for item in turn.parse["intent_ranking"]}
    complain = ranking.get("complain", 0.0)
    major = turn.signals & {"major_media", "repeat_contact"}
    phrased = major & set(turn.parse.get("signal_phrases") or [])
    if phrased or (major and complain >= MAJOR_COMPLAIN_FLOOR):
        # "hello again" lights repeat_contact on the word "again" alone: a greeting.
        return True
    if turn.intent == "complain":
        return complain >= COMPLAINT_CONFIDENCE
    if faq_matched or complain < NEAR_TIE_FLOOR:
        return False
    if turn.intent in ("affirm", "deny"):
        # A yes/no with no question open is not an answer: "parcel still not here".
        return True
    if turn.intent not in ("inquiry", "praise"):
        return False  # a greeting, thanks or goodbye is what it says
    return turn.intent_confidence - complain <= NEAR_TIE


SAFETY_WHILE_WAITING = 0.7
"""How sure the type model must be that a waiting customer's complaint is about safety
before the ticket jumps the queue."""


def _about_safety(ticket: Ticket) -> bool:
    """A safety complaint's ticket: its safety question and priority were settled when it
    was made, and more about the hazard is more of the same case."""
    return (ticket.summary_data or {}).get("complaint_type") == "safety"


def _safety_said(turn: Turn) -> bool:
    """A complaint about something unsafe (fire, injury, health), said plainly."""
    if not _is_complaint(turn, faq_matched=False):
        return False
    kind = turn.parse.get("complaint_type") if turn.parse else None
    return (
        kind is not None and kind["name"] == "safety" and kind["confidence"] >= SAFETY_WHILE_WAITING
    )


def _threat(turn: Turn) -> bool:
    """A threat of harm ends the bot's part: a key phrase or a confident model only.

    "再不处理我就去12315" (if you don't fix it I'll go to the regulator) is major, not a
    threat, but its "if not…, I'll…" shape makes the model lean to threat. When the
    message is confidently major_media and no harm phrase matched, it counts as major.
    """
    if "threat_of_harm" not in turn.signals:
        return False
    parse = turn.parse or {}
    if "threat_of_harm" in (parse.get("signal_phrases") or []):
        return True
    scores = parse.get("signal_scores") or {}
    return float(scores.get("major_media") or 0) < MEDIA_OVER_THREAT


def _outcome_buttons() -> list[dict[str, str]]:
    return [
        {"title": f"outcome.{name}", "payload": Choice("outcome", name).pack()}
        for name in OUTCOME_BUTTONS
    ]
