"""What the dialogue's decisions ask of the engine, as an interface.

:class:`bot.dialogue.policy.Policy` decides what to say and do for one turn; the
:class:`bot.dialogue.engine.Engine` runs turns and owns the services those decisions use
(the actions, the complaint and ticket rows, the wording, the FAQ, the NLU). The policy
sees only this Protocol, so it imports nothing from the engine and the two do not import
each other in a loop (tests/test_layers.py); a test or another front end can hand the
policy any object with these members.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bot.config import Settings
from bot.dialogue.faq import Faq
from bot.dialogue.responses import Responses
from bot.dialogue.turn import Turn
from bot.nlu import NluService
from bot.store import Complaint, Evidence, Ticket
from bot.store.models import Priority


class TurnServices(Protocol):
    settings: Settings
    responses: Responses
    faq: Faq
    nlu: NluService

    async def act(
        self,
        turn: Turn,
        action: str,
        *,
        candidates: dict[str, Any] | None = None,
        latest: Mapping[str, Any] | None = None,
        silent: bool = False,
    ) -> None:
        """Run one action (actions/) on the conversation and apply its events."""

    def save_complaint(self, turn: Turn) -> Complaint:
        """Create or update the complaint row from the slots."""

    def add_evidence(self, turn: Turn, *, kind: str, file_id: str) -> Evidence:
        """Keep a photo or file the customer sent for the complaint."""

    def prior_complaints(self, turn: Turn) -> int:
        """The customer's complaints in the habitual-complainant window, this one left out."""

    def open_ticket(
        self, turn: Turn, *, kind: str, priority: int = Priority.NORMAL, supervisor: bool = False
    ) -> Ticket:
        """The hand-off record (or the customer's open one, joined)."""

    def user_events(self, turn: Turn) -> list[dict[str, Any]]:
        """The customer's messages of the current complaint, as Rasa user events."""
