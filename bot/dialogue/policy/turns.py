"""One turn's decision (:meth:`Policy.decide`): what comes first at any stage — a person
already has the case, a command (/cancel, /lang, /privacy, /forget, /help), a threat,
abuse, a request for a person, a follow-up question, media — then the open stage's
handler, ``_stage_<stage>``, from the layers below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actions.facts import order_id_in
from bot.dialogue import records, survey
from bot.dialogue.policy.listening import Listening
from bot.dialogue.policy.rules import (
    FORGET_BUTTONS,
    MENU_BUTTONS,
    REQUEST_HUMAN_CONFIDENCE,
    is_complaint,
    is_threat,
    waiting_topic,
)
from bot.nlu.model import says_self_harm
from bot.payloads import chosen
from bot.store.models import ConversationStatus, Stage
from bot.store.privacy import forget
from handoff import queue, tickets
from handoff.events import StaffEvent

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn


class Policy(Listening):
    """One turn's decision: the stage's handler, after what comes first at any stage."""

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
        if is_threat(turn):
            if says_self_harm(turn.text, self.services.settings.nlu_data_dir):
                await self._escalate(turn, kind="self_harm", response="utter_self_harm_supervisor")
            else:
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
        if not (is_complaint(turn, faq_matched=False) or turn.intent == "deny"):
            return False
        assert turn.customer.id is not None
        ticket = queue.recently_resolved(
            turn.session,
            customer_id=turn.customer.id,
            since=turn.now - self.services.settings.reopen_window,
        )
        if ticket is None:
            return False
        tickets.reopen(turn.session, ticket, now=turn.now, conversation_id=turn.conversation.id)
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
            records.add_evidence(turn, kind=str(kind), file_id=str(media["file_id"]))
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

    def _cancel_tickets(self, turn: Turn) -> None:
        """The customer no longer wants a person: the ticket closes, its topic says why."""
        conversation_id = turn.conversation.id or 0
        for ticket_id in tickets.cancel_open(
            turn.session, conversation_id=conversation_id, now=turn.now
        ):
            turn.staff_events.append(
                StaffEvent(ticket_id, "staff.customer_cancelled", close_topic=True)
            )
