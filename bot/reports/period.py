"""The period a report covers: whole local days in the desk's time zone.

Rule: a report ends at the start (00:00 local time) of ``until``, by default today,
and covers the whole days before it:

- ``day``: the one day before ``until`` (yesterday);
- ``week``: the 7 days before ``until`` (run on a Monday: Monday to Sunday of last week);
- ``month``: from the same date one calendar month before ``until`` (clamped to the
  month's last day, e.g. 31 March -> 28/29 February) up to the day before ``until``
  (run on the 1st: exactly last calendar month).

Time stamps are compared in UTC against ``[start, end)``; the local midnights are
computed with the zone's rules, so a day with a daylight-saving change has 23 or 25 hours.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    kind: str
    first: date
    """The first local day in the period."""
    last: date
    """The last local day in the period (inclusive)."""
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        """00:00 local time of the first day, in UTC."""
        return datetime.combine(self.first, time(0), tzinfo=self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """00:00 local time after the last day, in UTC (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.tz).astimezone(
            UTC
        )

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def span(self) -> str:
        """`2026-11-21`, or `2026-11-16 – 2026-11-22`."""
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"


def _month_before(day: date) -> date:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_ending(kind: str, until: date, timezone: str) -> Period:
    """The period of ``kind`` that ends just before ``until`` (see the module's rule)."""
    if kind not in PERIODS:
        raise ValueError(f"unknown period {kind!r}; choose day, week or month")
    if kind == "day":
        first = until - timedelta(days=1)
    elif kind == "week":
        first = until - timedelta(days=7)
    else:
        first = _month_before(until)
    return Period(kind=kind, first=first, last=until - timedelta(days=1), timezone=timezone)


def period_at(kind: str, now: datetime, timezone: str) -> Period:
    """The period of ``kind`` that ended at the last local midnight before ``now``."""
    return period_ending(kind, now.astimezone(ZoneInfo(timezone)).date(), timezone)
