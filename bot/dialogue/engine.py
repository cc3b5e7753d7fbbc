"""The conversation engine: one customer message in, the bot's replies out.

Per message: parse (NLU), decide (:mod:`bot.dialogue.policy`, the five steps), act
(rasa-sdk actions), then render the responses in the customer's language and store
everything in one transaction. State lives in the database, so a restart continues
each conversation where it was. Messages of one chat are handled in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

from sqlmodel import col, select

from bot.config import Settings
from bot.dialogue import records
from bot.dialogue.actions_client import ActionError, ActionRunner, action_runner
from bot.dialogue.faq import Faq
from bot.dialogue.keyboards import is_stale, on_latest
from bot.dialogue.policy import Policy
from bot.dialogue.redelivery import redelivered
from bot.dialogue.responses import Responses
from bot.dialogue.tracker import Tracker
from bot.dialogue.turn import Incoming, Turn, TurnResult
from bot.dialogue.wording import Wording
from bot.nlu import NluService
from bot.nlu.labels import Parse
from bot.nlu.text import detect_language, language_of_code
from bot.store import (
    Complaint,
    Conversation,
    ConversationStatus,
    Database,
    FollowUp,
    Message,
    ProcessedUpdate,
    StaffPost,
)
from bot.store.db import (
    active_conversation,
    add_message,
    count_conversations,
    find_customer,
    get_or_create_customer,
)
from bot.store.models import Priority, Stage

log = logging.getLogger(__name__)

MAX_TEXT = 4096
"""Longest text parsed (Telegram's own message limit); the transcript keeps it all."""
LANGUAGE_SWITCH_CONFIDENCE = 0.8
LANGUAGE_SWITCH_LENGTH = 12


GATHERING_STAGES = frozenset({Stage.IDLE, Stage.LISTENING})
"""Stages at which a customer tells their story in free text (see Engine.gathers)."""
MAX_MERGED = 8
"""Further lines joined into one turn at most, by any channel (a longer burst is several
turns)."""


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
        self.wording = Wording(self.responses)
        self.tracker = Tracker(settings, self.actions)
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
                    return redelivered(session, incoming)
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
            stale = incoming.payload is not None and is_stale(session, conversation.id, incoming)
            continues = (
                incoming.payload is not None
                and not stale
                and on_latest(session, conversation.id, incoming)
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
                records.open_ticket(turn, self.wording, kind="error", priority=Priority.HIGH)
                turn.hand_off()
            replies = self.wording.render(turn)
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
