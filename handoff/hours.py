"""Outside business hours: when agents are back, and call-back slots to offer.

Times are local to the business (`TIMEZONE`); a booked slot is stored in UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from bot.config import BusinessHours
from bot.payloads import SlotPick

if TYPE_CHECKING:
    from bot.dialogue.responses import Responses

SLOT_LENGTH = timedelta(hours=1)
SLOTS_OFFERED = 3
NO_CALLBACK = SlotPick.NONE


def callback_slots(
    hours: BusinessHours, after: datetime, count: int = SLOTS_OFFERED
) -> list[datetime]:
    """The first `count` one-hour slots that start when the desk opens after `after`."""
    slots: list[datetime] = []
    start = hours.next_opening(after)
    while len(slots) < count:
        closing = datetime.combine(start.date(), hours.closes, tzinfo=start.tzinfo)
        day_start = datetime.combine(start.date(), hours.opens, tzinfo=start.tzinfo)
        if start + SLOT_LENGTH <= closing or start == day_start:  # a short day: one slot
            slots.append(start)
        if start + 2 * SLOT_LENGTH <= closing:
            start += SLOT_LENGTH
        else:
            start = hours.next_opening(start)
    return slots


def callback_slots_soon(
    hours: BusinessHours | None, now: datetime, count: int = SLOTS_OFFERED
) -> list[datetime]:
    """Call-back slots for a customer who would otherwise wait long now: on the hour,
    from the first full hour at least half an hour away, within today's hours first, then
    the next days' (all hours when the desk keeps none)."""
    start = (now + SLOT_LENGTH / 2).replace(minute=0, second=0, microsecond=0) + SLOT_LENGTH
    if hours is None:
        return [start + index * SLOT_LENGTH for index in range(count)]
    slots: list[datetime] = []
    closing = datetime.combine(start.date(), hours.closes, tzinfo=start.tzinfo)
    while len(slots) < count and hours.is_open(start) and start + SLOT_LENGTH <= closing:
        slots.append(start)
        start += SLOT_LENGTH
    if len(slots) < count:
        slots += callback_slots(hours, now, count - len(slots))
    return slots


def slot_payload(start: datetime) -> str:
    return SlotPick(start).pack()


def parse_slot(payload: str, tz: tzinfo) -> datetime | None:
    """The slot a `cb:` payload names, in the business's time zone; None if malformed."""
    pick = SlotPick.parse(payload, tz)
    return pick.start if pick is not None else None


def when_label(moment: datetime, language: str, responses: Responses) -> str:
    """Mon 23 Nov, 09:00 / 11月23日（周一）09:00."""
    day = responses.label(f"weekday.{moment.weekday()}", language)
    if language == "zh":
        return f"{moment.month}月{moment.day}日（{day}）{moment:%H:%M}"
    return f"{day} {moment.day} {moment:%b}, {moment:%H:%M}"


def slot_label(start: datetime, language: str, responses: Responses) -> str:
    return f"{when_label(start, language, responses)}–{start + SLOT_LENGTH:%H:%M}"
