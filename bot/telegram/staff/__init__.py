"""Agents in the Telegram staff group: a topic and a summary card per ticket, Take /
Transfer / Escalate / Close, /promise, and the relay between the topic and the customer.

Only users in AGENT_IDS / SUPERVISOR_IDS may act; anyone else in the group is refused
and nothing reaches a customer from them. Without forum topics the same works by
replying to the ticket's card.

When things go wrong (docs/handoff.md): a customer who blocked the bot gets a line in
the topic instead of the message; a topic deleted by hand is replaced (a new topic, the
card again); a group upgraded to a supergroup is followed to its new id; a member of
staff who leaves the group gives their tickets back to the queue.

The desk is one object, built in layers by job, each module one job and each layer
using only those below it: ``rows`` (state, wording, the rows a decision writes),
``cards`` (the summary card), ``topics`` (the group's upkeep), ``reach`` (alerts, staff
who cannot be written to privately), ``members`` (who is in the group), ``relay`` (topic
and customer), ``commands`` (what agents type in a topic) and ``buttons`` (Take,
Transfer, Escalate, Close).
"""

from __future__ import annotations

from bot.dialogue import Engine
from bot.telegram.staff.buttons import Buttons
from bot.telegram.staff.rows import Outgoing

__all__ = ["Outgoing", "StaffDesk"]


class StaffDesk(Buttons):
    """Agents in the staff group (see the module's docstring)."""

    @classmethod
    def of(cls, engine: Engine) -> StaffDesk:
        """The desk for the engine's settings, database and wording."""
        return cls(engine.settings, engine.db, engine.responses, engine.wording)
