"""One customer message and everything the bot does about it, before it is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from actions.complaint import strong_signals
from bot.nlu.labels import DIALOGUE_INTENTS, Parse
from bot.store import Complaint, Conversation, Customer
from bot.store.models import ConversationStatus, Stage
from handoff.events import StaffEvent

NO_EVIDENCE = 1 / len(DIALOGUE_INTENTS) + 1e-4
"""The intent confidence of a text with no word the model knows (docs/nlu.md)."""


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass
class Reply:
    """One message to the customer: text, its buttons, the responses it was made of."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    row_id: int | None = None
    """The stored message's id, to record the channel's id for it once sent."""


@dataclass(frozen=True)
class Incoming:
    """A customer's message as the channel delivers it: typed text or a pressed button."""

    user_id: int
    chat_id: int
    name: str = ""
    text: str | None = None
    payload: str | None = None
    language_hint: str | None = None
    channel: str = "telegram"
    message_ref: int | None = None
    """The channel's id of this message (Telegram message_id)."""
    button_ref: int | None = None
    """For a pressed button: the channel's id of the message that carried the keyboard."""
    media: dict[str, Any] | None = None
    """A photo, document, contact, location, voice... : {"kind": ..., and its fields}."""
    update_id: int | None = None
    """The channel's delivery id: recorded with the turn, so a redelivery is skipped."""
    merged_updates: tuple[int, ...] = ()
    """Further delivery ids whose lines this message joins (typed within a moment of
    each other, handled as one turn); recorded as handled with it."""


@dataclass
class Part:
    """A response to say: its key, values for its placeholders, buttons (label keys)."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    buttons: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Turn:
    incoming: Incoming
    customer: Customer
    conversation: Conversation
    slots: dict[str, Any]
    now: datetime
    today: date
    text: str
    parse: Parse | None
    message_id: int
    session: Session
    complaint: Complaint | None = None
    parts: list[Part] = field(default_factory=list)
    reminders: list[dict[str, Any]] = field(default_factory=list)
    ticket_id: int | None = None
    relay_ticket_id: int | None = None
    """A person has the case: the channel shows this message to them."""
    reopened: bool = False
    staff_events: list[StaffEvent] = field(default_factory=list)
    user_events: list[dict[str, Any]] | None = None
    """The complaint's user messages as Rasa events, read once per turn."""
    user_events_from: int | None = None

    @property
    def language(self) -> str:
        return self.conversation.language

    @property
    def stage(self) -> str:
        return self.conversation.stage

    @stage.setter
    def stage(self, value: str) -> None:
        self.conversation.stage = value

    @property
    def payload(self) -> str | None:
        return self.incoming.payload

    @property
    def intent(self) -> str | None:
        """The message's intent; None where the model had no evidence at all (every
        intent at even odds: "idk", a name, emoji), whose first one is only an order."""
        if self.parse is None:
            return None
        intent = self.parse.get("intent")
        if not intent or float(intent["confidence"]) <= NO_EVIDENCE:
            return None
        return intent["name"] or None

    @property
    def intent_confidence(self) -> float:
        if self.parse is None:
            return 0.0
        intent = self.parse.get("intent")
        return float(intent["confidence"]) if intent else 0.0

    @property
    def signals(self) -> set[str]:
        """Signals strong enough to act on (see actions.complaint.SIGNAL_FLOORS)."""
        return strong_signals(self.parse or {})

    def hand_off(self) -> None:
        """A person has the conversation now: the bot stops leading it."""
        self.conversation.status = ConversationStatus.HANDED_OFF
        self.stage = Stage.HANDED_OFF

    def say(self, key: str, buttons: list[dict[str, str]] | None = None, **values: Any) -> None:
        self.parts.append(Part(key=key, values=values, buttons=buttons or []))


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
