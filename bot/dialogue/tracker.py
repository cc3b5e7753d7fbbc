"""A conversation as a Rasa tracker, for the rasa-sdk actions (actions/).

The engine keeps its state in the database (slots on the conversation, the customer's
messages in the transcript); an action sees it the way a Rasa server would send it: a
tracker with the slots, the latest message and the complaint's user messages as
`rasa_sdk.events`. The events an action returns are applied to the turn: slots set, a
hand-off (`pause`), a reminder (a follow-up row, written with the turn).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rasa_sdk
from rasa_sdk.events import SlotSet, UserUttered
from sqlmodel import col, select

from bot.config import Settings
from bot.dialogue.actions_client import ActionRunner, build_domain
from bot.dialogue.turn import Turn
from bot.store import Message
from bot.store.models import Stage

FORM_STAGES = frozenset({Stage.FACTS, Stage.FACT_OTHER, Stage.FACT_OPEN})
"""Stages at which the complaint form is the active loop."""
RESPONSE_FIELDS = {
    "text", "buttons", "elements", "custom", "template", "response", "image", "attachment",
}  # fmt: skip
"""Fields of an action's response that are not values for the response's placeholders."""


class Tracker:
    """Runs an action (rasa-sdk) on a turn and applies what it returns."""

    def __init__(self, settings: Settings, runner: ActionRunner) -> None:
        self.settings = settings
        self.runner = runner
        self.domain = build_domain()
        self.empty_slots: dict[str, Any] = dict.fromkeys(self.domain["slots"])

    def call(
        self,
        turn: Turn,
        action: str,
        *,
        candidates: dict[str, Any] | None = None,
        latest: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The action server's request for `action` on this turn (Rasa's JSON)."""
        turn.slots.update(
            language=turn.language,
            today=turn.today.isoformat(),
            now=turn.now.isoformat(),
            first_contact_sla_seconds=int(self.settings.first_contact_sla.total_seconds()),
            progress_sla_seconds=int(self.settings.progress_sla.total_seconds()),
            customer_tier=turn.customer.tier,
        )
        latest_message = latest or turn.parse or {"text": turn.text, "intent": {}, "entities": []}
        events = user_events(turn)
        events += [SlotSet(name, value) for name, value in (candidates or {}).items()]
        sender = str(turn.incoming.chat_id)
        return {
            "next_action": action,
            "sender_id": sender,
            "version": rasa_sdk.__version__,
            "domain": self.domain,
            "tracker": {
                "sender_id": sender,
                "slots": {**self.empty_slots, **turn.slots, **(candidates or {})},
                "latest_message": latest_message,
                "events": events,
                "paused": False,
                "followup_action": None,
                "active_loop": {"name": "complaint_form"} if turn.stage in FORM_STAGES else {},
                "latest_action_name": "action_listen",
            },
        }

    async def act(
        self,
        turn: Turn,
        action: str,
        *,
        candidates: dict[str, Any] | None = None,
        latest: Mapping[str, Any] | None = None,
        silent: bool = False,
    ) -> None:
        """Run one action on this conversation's tracker and apply its events; its
        responses join the turn's replies unless `silent`."""
        result = await self.runner.run(
            self.call(turn, action, candidates=candidates, latest=latest)
        )
        for event in result["events"]:
            kind = event.get("event")
            if kind == "slot":
                turn.slots[event["name"]] = event["value"]
            elif kind == "pause":
                turn.hand_off()
            elif kind == "reminder":
                turn.reminders.append(event)
        if silent:
            return
        for response in result["responses"]:
            values = {
                key: value
                for key, value in response.items()
                if key not in RESPONSE_FIELDS and value is not None
            }
            turn.say(str(response.get("response")), list(response.get("buttons") or []), **values)


def user_events(turn: Turn) -> list[dict[str, Any]]:
    """The customer's messages of the current complaint (typed, not pressed), as Rasa
    user events; read once per turn."""
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
        UserUttered(
            row.text,
            row.parse or {"text": row.text, "entities": []},
            timestamp=row.created_at.timestamp(),
        )
        for row in rows
        if row.payload is None
    ]
    turn.user_events_from = start
    return list(turn.user_events)
