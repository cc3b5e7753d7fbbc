"""What the dialogue tells the hand-off about a ticket: a line for its topic in the staff
group, and whether the supervisors hear of it too. Written as a `staff_post` row in the
customer's turn (bot/dialogue/engine.py) and posted by the Telegram side
(bot/telegram/lanes.py, bot/telegram/staff/). No Telegram here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StaffEvent:
    """Something the agents should see in a ticket's topic (a label key in staff.*)."""

    ticket_id: int
    key: str
    values: dict[str, Any] = field(default_factory=dict)
    close_topic: bool = False
    alert: bool = False
    """Also to the supervisors, privately."""
    transcript: bool = False
    """With the ticket's history (a low satisfaction score)."""
    delete_topic: bool = False
    """The customer asked to be forgotten: the topic goes, with what it showed."""
