"""The conversation engine: one customer message in, the bot's replies out.

Per message: parse (NLU), decide (:mod:`bot.dialogue.policy`, the five steps), act
(rasa-sdk actions), then render the responses in the customer's language and store
everything in one transaction. State lives in the database, so a restart continues
each conversation where it was. Messages of one chat are handled in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, func, select

from actions.facts import NOT_GIVEN, load_facts
from bot.config import Settings
from bot.dialogue.actions_client import ActionError, ActionRunner, action_runner, build_domain
from bot.dialogue.faq import Faq
from bot.dialogue.policy import Policy
from bot.dialogue.responses import Responses
from bot.dialogue.turn import Button, Incoming, Reply, Turn
from bot.nlu import NluService
from bot.nlu.labels import Parse
from bot.nlu.text import detect_language, language_of_code
from bot.store import (
    Complaint,
    Conversation,
    ConversationStatus,
    Database,
    Evidence,
    FollowUp,
    Message,
    ProcessedUpdate,
    StaffPost,
    Ticket,
)
from bot.store.db import (
    active_conversation,
    add_message,
    complaints_since,
    count_conversations,
    find_customer,
    get_or_create_customer,
    habitual_window_start,
    staff_post_waiting,
    without_card,
)
from bot.store.models import Priority, Stage
from handoff import queue

log = logging.getLogger(__name__)

MAX_TEXT = 4096
"""Longest text parsed (Telegram's own message limit); the transcript keeps it all."""
LANGUAGE_SWITCH_CONFIDENCE = 0.8
LANGUAGE_SWITCH_LENGTH = 12


GATHERING_STAGES = frozenset({Stage.IDLE, Stage.LISTENING})
"""Stages at which a customer tells their story in free text (see Engine.gathers)."""
SAME_PARAGRAPH = frozenset({"utter_empathy_waited"})
"""Lines that go on the paragraph before them (the wait after the empathy it adds to)."""
MAX_MERGED = 8
"""Further lines joined into one turn at most, by any channel (a longer burst is several
turns)."""
LATEST_KEYBOARD = ("cb:", "sv:", "as:", "meets:")
"""Payloads valid on the latest keyboard even when it is not the latest message."""


@dataclass
class TurnResult:
    replies: list[Reply]
    conversation_id: int
    status: str
    stage: str
    ticket_id: int | None = None
    duplicate: bool = False
    """The update was handled before (a redelivery): nothing was done."""
    continues: bool = False
    """A press on the keyboard of the chat's latest message: the first reply may take
    that message's place (an edit that shows the choice and the next question: one
    Bot API call instead of an edit and a new message)."""
    staff_posts: list[int] = field(default_factory=list)
    """Tickets with something new for their topic — the customer's message, a
    "reopened" note, a call-back booked, a cancellation — written as StaffPost rows in
    the turn's transaction, to be posted in order."""


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database,
        nlu: NluService,
        actions: ActionRunner | None = None,
        responses: Responses | None = None,
        faq: Faq | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.nlu = nlu
        self.actions = actions or action_runner(settings.action_server_url)
        self.responses = responses or Responses()
        self.faq = faq or Faq()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.domain = build_domain()
        self._empty_slots = dict.fromkeys(self.domain["slots"])
        self.policy = Policy(self)
        self._locks: dict[int, asyncio.Lock] = {}

    async def close(self) -> None:
        await self.actions.close()
        await self.nlu.close()

    async def handle(self, incoming: Incoming) -> TurnResult:
        """Handle one message; messages of the same chat wait for each other."""
        lock = self._locks.setdefault(incoming.chat_id, asyncio.Lock())
        try:
            async with lock:
                return await self._handle(incoming)
        finally:
            if not lock.locked() and self._locks.get(incoming.chat_id) is lock:
                del self._locks[incoming.chat_id]

    async def _handle(self, incoming: Incoming) -> TurnResult:
        now = self.clock()
        today = now.astimezone(self.settings.tz).date()
        text = (incoming.text or "").strip()
        parse = None
        if text and not text.startswith("/") and incoming.payload is None:
            parse = await self.nlu.parse(text[:MAX_TEXT], today=today)
        with self.db.session() as session:
            if incoming.update_id is not None:
                if session.get(ProcessedUpdate, incoming.update_id) is not None:
                    return self._redelivered(session, incoming)
                session.add(ProcessedUpdate(update_id=incoming.update_id))
                for merged in incoming.merged_updates:  # one turn for a burst of lines
                    session.merge(ProcessedUpdate(update_id=merged))
            hint = language_of_code(incoming.language_hint, self.settings.default_language)
            customer, _ = get_or_create_customer(
                session, telegram_id=incoming.user_id, name=incoming.name, language=hint
            )
            assert customer.id is not None
            conversation = active_conversation(session, customer_id=customer.id)
            if conversation is None:
                returning = count_conversations(session, customer_id=customer.id) > 0
                conversation = Conversation(
                    customer_id=customer.id,
                    chat_id=incoming.chat_id,
                    channel=incoming.channel,
                    language=_first_language(parse, customer.language if returning else hint),
                    slots={"returning": returning},
                )
                session.add(conversation)
                session.flush()
            elif parse is not None and not conversation.slots.get("language_chosen"):
                _maybe_switch_language(conversation, parse, text)
            customer.language = conversation.language
            assert conversation.id is not None
            stale = incoming.payload is not None and self._is_stale(
                session, conversation.id, incoming
            )
            continues = (
                incoming.payload is not None
                and not stale
                and self._on_latest(session, conversation.id, incoming)
            )
            message = add_message(
                session,
                conversation_id=conversation.id,
                direction="in",
                text=incoming.text or "",
                payload=incoming.payload,
                parse=dict(parse) if parse is not None else None,
            )
            message.external_id = incoming.message_ref
            session.flush()
            assert message.id is not None
            turn = Turn(
                incoming=incoming,
                customer=customer,
                conversation=conversation,
                slots=dict(conversation.slots),
                now=now,
                today=today,
                text=text,
                parse=parse,
                message_id=message.id,
                session=session,
            )
            complaint_id = turn.slots.get("complaint_id")
            if complaint_id:
                turn.complaint = session.get(Complaint, complaint_id)
            try:
                if stale:
                    turn.say("utter_choice_expired")
                    self.policy.reprompt(turn)
                else:
                    await self.policy.decide(turn)
            except ActionError as error:
                log.error("conversation %s: %s", conversation.id, error)
                turn.parts.clear()
                turn.say("utter_error")
                self.open_ticket(turn, kind="error", priority=Priority.HIGH)
                self.pause(turn)
            replies = self._render(turn)
            rows = [
                add_message(
                    session,
                    conversation_id=conversation.id,
                    direction="out",
                    text=reply.text,
                    response=",".join(reply.responses),
                    buttons=[{"label": b.label, "payload": b.payload} for b in reply.buttons],
                )
                for reply in replies
            ]
            if incoming.channel == "terminal":  # printed at once: no sender waits for them
                for row in rows:
                    row.outcome = "shown"
            for reminder in turn.reminders:
                kind = str(reminder.get("name") or "follow_up").split(":", 1)[0]
                session.add(
                    FollowUp(
                        ticket_id=turn.ticket_id or turn.slots.get("ticket_id"),
                        conversation_id=conversation.id,
                        kind=kind,
                        due_at=datetime.fromisoformat(str(reminder["date_time"])),
                    )
                )
            staff_posts = self._staff_posts(turn)
            conversation.slots = dict(turn.slots)
            conversation.updated_at = now
            session.add(conversation)
            session.add(customer)
            session.commit()
            for reply, row in zip(replies, rows, strict=True):
                reply.row_id = row.id
            return TurnResult(
                replies=replies,
                conversation_id=conversation.id,
                status=conversation.status,
                stage=conversation.stage,
                ticket_id=turn.ticket_id,
                continues=continues,
                staff_posts=staff_posts,
            )

    def _staff_posts(self, turn: Turn) -> list[int]:
        """What the agents are to see from this turn, as StaffPost rows in its
        transaction (a stop before they reach the staff group loses none); the tickets
        they are for, in order."""
        if self.settings.staff_chat_id is None:
            return []
        forgotten = {event.ticket_id for event in turn.staff_events if event.delete_topic}
        posts: list[StaffPost] = []
        relay = turn.relay_ticket_id
        if relay is not None and relay not in forgotten:
            if turn.reopened:
                posts.append(StaffPost(ticket_id=relay, kind="reopened"))
            incoming = turn.incoming
            if incoming.payload is None:  # a message, not a press of the bot's buttons
                line = {
                    "name": incoming.name,
                    "text": incoming.text,
                    "chat_id": incoming.chat_id,
                    "message_id": incoming.message_ref,
                    "copy": incoming.media is not None,
                }
                posts.append(StaffPost(ticket_id=relay, kind="line", body=line))
        posts += [
            StaffPost(ticket_id=event.ticket_id, kind="event", body=asdict(event))
            for event in turn.staff_events
        ]
        turn.session.add_all(posts)
        return list(dict.fromkeys(post.ticket_id for post in posts))

    def _is_stale(self, session: Session, conversation_id: int, incoming: Incoming) -> bool:
        """A pressed button is live only on the bot's latest keyboard, and only once.
        Call-back slots and follow-up questions stay live while the customer writes more
        or the bot says something else (their keyboard is the latest one, not
        necessarily the latest message)."""
        latest = select(Message).where(Message.conversation_id == conversation_id)
        if (incoming.payload or "").startswith(LATEST_KEYBOARD):
            recent = session.exec(
                latest.where(Message.direction == "out").order_by(col(Message.id).desc()).limit(20)
            ).all()
            last = next((row for row in recent if row.buttons), None)
        else:
            last = session.exec(latest.order_by(col(Message.id).desc())).first()
        if last is None or last.direction != "out" or not last.buttons:
            return True
        if incoming.button_ref is not None and last.external_id not in (None, incoming.button_ref):
            return True
        return incoming.payload not in {button["payload"] for button in last.buttons}

    @staticmethod
    def _on_latest(session: Session, conversation_id: int, incoming: Incoming) -> bool:
        """Whether a press is on the keyboard of the chat's latest message (nothing was
        said after it by either side)."""
        last = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.id).desc())
        ).first()
        if last is None or last.direction != "out" or not last.buttons:
            return False
        if incoming.button_ref is not None and last.external_id != incoming.button_ref:
            return False
        return incoming.payload in {button["payload"] for button in last.buttons}

    def gathers(self, user_id: int) -> bool:
        """Whether this customer's next typed lines may be one thought told in several
        messages (no conversation yet, or the bot is listening to their account): the
        channel then waits a moment for more before the turn (MERGE_WINDOW)."""
        with self.db.session() as session:
            customer = find_customer(session, telegram_id=user_id)
            if customer is None or customer.id is None:
                return True
            conversation = active_conversation(session, customer_id=customer.id)
            if conversation is None:
                return True
            return (
                conversation.status == ConversationStatus.OPEN
                and conversation.stage in GATHERING_STAGES
            )

    def _redelivered(self, session: Session, incoming: Incoming) -> TurnResult:
        """An update handled before (Telegram delivered it again, or the process stopped
        after the turn was saved): nothing is done again, but replies of that turn not
        yet sent are returned to be sent, and a ticket whose card was never posted and
        tickets with posts for their topic still waiting are named, so a crash between
        saving and sending loses nothing."""
        result = TurnResult(replies=[], conversation_id=0, status="", stage="", duplicate=True)
        customer = find_customer(session, telegram_id=incoming.user_id)
        if customer is None:
            return result
        conversation = session.exec(
            select(Conversation)
            .where(Conversation.customer_id == customer.id)
            .order_by(col(Conversation.id).desc())
        ).first()
        if conversation is None or conversation.id is None:
            return result
        last_in = session.exec(
            select(func.max(Message.id)).where(
                Message.conversation_id == conversation.id, Message.direction == "in"
            )
        ).one()
        unsent = session.exec(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == "out",
                col(Message.id) > (last_in or 0),
                col(Message.external_id).is_(None),
                col(Message.delivered).is_(True),
            )
            .order_by(col(Message.id))
        ).all()
        on_the_way = [row.id for row in unsent if row.send_started_at is not None]
        if on_the_way:
            log.warning(
                "replies %s were on their way to Telegram when the bot stopped; not sent again",
                on_the_way,
            )
        unsent = [row for row in unsent if row.send_started_at is None]
        result.replies = [
            Reply(
                text=row.text,
                buttons=[Button(**button) for button in row.buttons],
                responses=[row.response] if row.response else [],
                row_id=row.id,
            )
            for row in unsent
        ]
        result.conversation_id = conversation.id
        result.status, result.stage = conversation.status, conversation.stage
        card_missing = session.exec(
            select(Ticket.id).where(
                Ticket.conversation_id == conversation.id,
                *without_card(),
            )
        ).first()
        result.ticket_id = card_missing
        result.staff_posts = list(
            session.exec(
                select(StaffPost.ticket_id)
                .join(Ticket, col(Ticket.id) == col(StaffPost.ticket_id))
                .where(Ticket.conversation_id == conversation.id, *staff_post_waiting())
                .distinct()
            )
        )
        return result

    def to_send(
        self, conversation_id: int, messages: list[tuple[str, str, str | None]]
    ) -> list[int]:
        """Messages the hand-off has for the customer (an agent's, a status), each (text,
        response, payload), join the transcript in one transaction as rows waiting for
        the sender (bot/telegram/outbox.py); their ids."""
        with self.db.session() as session:
            rows = [
                add_message(
                    session,
                    conversation_id=conversation_id,
                    direction="out",
                    text=text,
                    response=response,
                    payload=payload,
                )
                for text, response, payload in messages
            ]
            session.commit()
            return [row.id or 0 for row in rows]

    def edited(self, *, user_id: int, message_ref: int, text: str) -> bool:
        """The customer edited a message: the transcript shows the new text, keeps the old."""
        with self.db.session() as session:
            customer = find_customer(session, telegram_id=user_id)
            if customer is None:
                return False
            row = session.exec(
                select(Message)
                .join(Conversation, col(Conversation.id) == Message.conversation_id)
                .where(
                    Conversation.customer_id == customer.id,
                    Message.direction == "in",
                    Message.external_id == message_ref,
                )
            ).first()
            if row is None:
                return False
            if row.original_text is None:
                row.original_text = row.text
            row.text = text
            row.edited_at = self.clock()
            session.add(row)
            session.commit()
            return True

    # --- actions -----------------------------------------------------------------

    async def act(
        self,
        turn: Turn,
        action: str,
        *,
        candidates: dict[str, Any] | None = None,
        latest: Mapping[str, Any] | None = None,
        silent: bool = False,
    ) -> None:
        """Run one action on a Rasa tracker of this conversation and apply its events."""
        turn.slots.update(
            language=turn.language,
            today=turn.today.isoformat(),
            now=turn.now.isoformat(),
            first_contact_sla_seconds=int(self.settings.first_contact_sla.total_seconds()),
            progress_sla_seconds=int(self.settings.progress_sla.total_seconds()),
            customer_tier=turn.customer.tier,
        )
        latest_message = latest or turn.parse or {"text": turn.text, "intent": {}, "entities": []}
        events = self.user_events(turn)
        events += [
            {"event": "slot", "timestamp": None, "name": name, "value": value}
            for name, value in (candidates or {}).items()
        ]
        form = turn.stage in (Stage.FACTS, Stage.FACT_OTHER, Stage.FACT_OPEN)
        call = {
            "next_action": action,
            "sender_id": str(turn.incoming.chat_id),
            "version": "3.21.1",
            "domain": self.domain,
            "tracker": {
                "sender_id": str(turn.incoming.chat_id),
                "slots": {**self._empty_slots, **turn.slots, **(candidates or {})},
                "latest_message": latest_message,
                "events": events,
                "paused": False,
                "followup_action": None,
                "active_loop": {"name": "complaint_form"} if form else {},
                "latest_action_name": "action_listen",
            },
        }
        result = await self.actions.run(call)
        for event in result["events"]:
            kind = event.get("event")
            if kind == "slot":
                turn.slots[event["name"]] = event["value"]
            elif kind == "pause":
                self.pause(turn)
            elif kind == "reminder":
                turn.reminders.append(event)
        if silent:
            return
        for response in result["responses"]:
            values = {
                key: value
                for key, value in response.items()
                if key not in _RESPONSE_FIELDS and value is not None
            }
            turn.say(str(response.get("response")), list(response.get("buttons") or []), **values)

    def user_events(self, turn: Turn) -> list[dict[str, Any]]:
        """The customer's messages of the current complaint, as Rasa user events."""
        start = turn.slots.get("complaint_from") or turn.message_id
        if turn.user_events is not None and turn.user_events_from == start:
            return list(turn.user_events)
        rows = turn.session.exec(
            select(Message)
            .where(
                Message.conversation_id == turn.conversation.id,
                Message.direction == "in",
                col(Message.id) >= start,
            )
            .order_by(col(Message.id))
        )
        turn.user_events = [
            {
                "event": "user",
                "timestamp": row.created_at.timestamp(),
                "text": row.text,
                "parse_data": row.parse or {"text": row.text, "entities": []},
            }
            for row in rows
            if row.payload is None
        ]
        turn.user_events_from = start
        return list(turn.user_events)

    # --- records -------------------------------------------------------------------

    def save_complaint(self, turn: Turn) -> Complaint:
        """Create or update the complaint row from the slots (nothing waits for the end)."""
        complaint = turn.complaint
        if complaint is None:
            assert turn.conversation.id is not None and turn.customer.id is not None
            complaint = Complaint(
                conversation_id=turn.conversation.id,
                customer_id=turn.customer.id,
                first_words=str(turn.slots.get("first_words") or ""),
            )
        slots = turn.slots
        complaint.complaint_type = str(slots.get("complaint_type") or "other")
        complaint.motive = slots.get("motive")
        complaint.desired_outcome = slots.get("desired_outcome")
        complaint.facts = {
            name: slots[name] for name in load_facts().slots if slots.get(name) is not None
        } | ({"notes": slots["notes"]} if slots.get("notes") else {})
        complaint.signals = list(slots.get("signals") or [])
        complaint.major = bool(slots.get("major"))
        complaint.major_reasons = list(slots.get("major_reasons") or [])
        complaint.habitual = bool(slots.get("habitual"))
        complaint.updated_at = turn.now
        turn.session.add(complaint)
        turn.session.flush()
        turn.complaint = complaint
        turn.slots["complaint_id"] = complaint.id
        return complaint

    def add_evidence(self, turn: Turn, *, kind: str, file_id: str) -> Evidence:
        assert turn.conversation.id is not None
        evidence = Evidence(
            conversation_id=turn.conversation.id,
            complaint_id=turn.slots.get("complaint_id"),
            kind=kind,
            file_id=file_id,
            caption=turn.text,
        )
        turn.session.add(evidence)
        return evidence

    def prior_complaints(self, turn: Turn) -> int:
        assert turn.customer.id is not None
        since = habitual_window_start(turn.now)
        count = complaints_since(turn.session, customer_id=turn.customer.id, since=since)
        return count - (1 if turn.complaint is not None else 0)

    def open_ticket(
        self, turn: Turn, *, kind: str, priority: int = Priority.NORMAL, supervisor: bool = False
    ) -> Ticket:
        """The hand-off record. One open ticket per customer: if one is still open (from
        an earlier conversation), this conversation joins it instead of queueing again."""
        assert turn.conversation.id is not None and turn.customer.id is not None
        summary = dict(turn.slots.get("summary") or {})
        existing = queue.open_for_customer(turn.session, customer_id=turn.customer.id)
        if existing is not None:
            existing.conversation_id = turn.conversation.id
            existing.priority = max(existing.priority, priority)
            existing.supervisor_flag = existing.supervisor_flag or supervisor
            existing.updated_at = turn.now
            turn.session.add(existing)
            turn.relay_ticket_id = existing.id
            turn.slots["ticket_id"] = existing.id
            turn.slots["ticket_ref"] = f"#{existing.id}"
            return existing
        ticket = Ticket(
            conversation_id=turn.conversation.id,
            customer_id=turn.customer.id,
            complaint_id=turn.complaint.id if turn.complaint else None,
            kind=kind,
            priority=max(priority, int(turn.slots.get("priority") or 0)),
            supervisor_flag=supervisor or bool(turn.slots.get("major")),
            summary=self.summary_text(summary, turn.language) if summary else "",
            summary_data=summary,
        )
        turn.session.add(ticket)
        turn.session.flush()
        turn.ticket_id = ticket.id
        turn.slots["ticket_id"] = ticket.id
        turn.slots["ticket_ref"] = f"#{ticket.id}"
        return ticket

    def pause(self, turn: Turn) -> None:
        turn.conversation.status = ConversationStatus.HANDED_OFF
        turn.stage = Stage.HANDED_OFF

    # --- wording -------------------------------------------------------------------

    def summary_values(self, summary: dict[str, Any], language: str) -> dict[str, str]:
        """The read-back's placeholders: labels in the customer's language."""
        label = self.responses.label
        slots = load_facts().slots
        colon = "：" if language == "zh" else ": "
        lines = []
        for name, value in (summary.get("facts") or {}).items():
            shown = self.fact_value(name, value, language)
            lines.append(f"{label(f'slot.{name}', language)}{colon}{shown}")
        for name, note in (summary.get("notes") or {}).items():
            title = label(f"slot.{name}" if name in slots else "note.correction", language)
            lines.append(f"{title}{colon}{note}")
        fallback = str(summary.get("outcome_text") or label("value.unknown", language))
        outcome_text = self.responses.label_or(
            f"outcome.{summary.get('desired_outcome')}", language, fallback
        )
        words = str(summary.get("customer_words") or "")
        return {
            "type": label(f"type.{summary.get('complaint_type') or 'other'}", language),
            "outcome": outcome_text,
            "facts": "\n".join(lines) if lines else label("value.unknown", language),
            "words": words if len(words) <= 300 else words[:297] + "…",
        }

    def fact_value(self, name: str, value: Any, language: str) -> str:
        """A fact as the customer reads it: the button's words, else what they typed (a
        sum with its cents: 45.90, not 45.9)."""
        if isinstance(value, float) and name == "amount":
            return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
        if value == "no_order_id":
            key = "value.none_order"
        elif value in ("amount_unknown", NOT_GIVEN):
            key = "value.unknown"
        elif value in ("yes", "no"):
            key = f"button.{value}_plain"
        else:
            key = f"choice.{name}.{value}"
        return self.responses.label_or(key, language, str(value))

    def summary_text(self, summary: dict[str, Any], language: str) -> str:
        rotation: dict[str, Any] = {}
        return self.responses.render(
            "utter_summary", language, rotation, **self.summary_values(summary, language)
        )

    def _render(self, turn: Turn) -> list[Reply]:
        rotation = dict(turn.customer.variations)
        replies: list[Reply] = []
        current: Reply | None = None
        joiner = "\n\n"
        for part in turn.parts:
            values = dict(part.values)
            if part.key == "utter_summary":
                values = self.summary_values(values.get("summary") or {}, turn.language)
            if "outcome" in values:
                values["outcome"] = self.responses.label_or(
                    f"outcome.{values['outcome']}", turn.language, str(values["outcome"])
                )
            if "sla_seconds" in values:
                values["sla"] = self.responses.duration(int(values["sla_seconds"]), turn.language)
            values.setdefault("name", turn.customer.name or "")
            if part.key.startswith("faq:"):
                text = str(values["answer"])
            else:
                text = self.responses.render(part.key, turn.language, rotation, **values)
            if part.key in SAME_PARAGRAPH:
                joiner = "" if turn.language == "zh" else " "
            if current is None:
                current = Reply(text=text)
            else:
                current.text += joiner + text
            current.responses.append(part.key)
            joiner = "\n\n"
            if part.key == "utter_greet_brief":
                joiner = "" if turn.language == "zh" else " "
            if part.buttons:
                current.buttons = [
                    Button(
                        label=self.responses.label_or(b["title"], turn.language, b["title"]),
                        payload=b["payload"],
                    )
                    for b in part.buttons
                ]
                replies.append(current)
                current = None
                joiner = "\n\n"
        if current is not None:
            replies.append(current)
        turn.customer.variations = rotation
        return replies


_RESPONSE_FIELDS = {
    "text", "buttons", "elements", "custom", "template", "response", "image", "attachment",
}  # fmt: skip


def _first_language(parse: Parse | None, fallback: str) -> str:
    if parse and float(parse.get("language_confidence") or 0) >= 0.5:
        return str(parse["language"])
    return fallback


def _maybe_switch_language(conversation: Conversation, parse: Parse, text: str) -> None:
    """Follow the customer into the other language only on a clear, long enough message."""
    if parse.get("language") == conversation.language:
        return
    # Order numbers, e-mails and codes are Latin in every language: judge the words only.
    words = " ".join(
        token for token in text.split() if not any(c.isdigit() or c == "@" for c in token)
    )
    language, confidence = detect_language(words, default=conversation.language)
    if (
        language != conversation.language
        and confidence >= LANGUAGE_SWITCH_CONFIDENCE
        and len(words) >= LANGUAGE_SWITCH_LENGTH
    ):
        conversation.language = language
