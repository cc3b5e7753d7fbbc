"""Find dates and relative dates ("上周三", "3 days ago", "Nov 3") and resolve them to a day.

Complaints talk about the past, so a bare weekday or a month-day without a year
resolves to its most recent occurrence that is not far in the future.

Numeric dates whose first two numbers could both be a month ("03/11/2026", "5/6") are
read both ways (day/month as in the UK, India, Singapore; month/day as in the US and in
Chinese "11/3"), and the reading kept is the most recent day that is not in the future
(else the nearest one): a complaint is about something that just happened. "03/11/2026"
said on 2026-11-22 is 3 November, not 11 March. A bare "11.3" is a date only where
the words around it say so ("11.3号", "11.3买的", "在11.3"): alone it is a price, a
version or a rating.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from bot.nlu.numbers import chinese_to_int

_CN_NUM = "零一二两三四五六七八九十百"
_WEEKDAY_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_WEEKDAYS_EN = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS_EN = {name.lower(): index for index, name in enumerate(calendar.month_abbr) if name}
_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "couple of": 2, "few": 3,
}  # fmt: skip


@dataclass(frozen=True)
class FoundDate:
    start: int
    end: int
    text: str
    day: date
    grain: str  # "day", "week" or "month"


def _number(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit():
        return int(token)
    if token in _EN_NUMBERS:
        return _EN_NUMBERS[token]
    return chinese_to_int(token) or 1


def _months_back(today: date, months: int) -> date:
    year, month = divmod(today.month - 1 - months, 12)
    month += 1
    year = today.year + year
    return date(year, month, min(today.day, calendar.monthrange(year, month)[1]))


def _weekday_of_week(today: date, weekday: int, weeks_back: int) -> date:
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks_back)
    return monday + timedelta(days=weekday)


def _most_recent_weekday(today: date, weekday: int) -> date:
    return today - timedelta(days=(today.weekday() - weekday) % 7)


def _month_day(today: date, month: int, day: int, year: int | None) -> date | None:
    if not 1 <= month <= 12:
        return None
    target_year = year if year is not None else today.year
    if not 1 <= day <= calendar.monthrange(target_year, month)[1]:
        return None
    found = date(target_year, month, day)
    if year is None and found - today > timedelta(days=31):
        found = date(
            target_year - 1, month, min(day, calendar.monthrange(target_year - 1, month)[1])
        )
    return found


Resolver = Callable[[re.Match[str], date], tuple[date, str] | None]
_RULES: list[tuple[re.Pattern[str], Resolver]] = []


def _rule(pattern: str) -> Callable[[Resolver], Resolver]:
    def register(resolver: Resolver) -> Resolver:
        _RULES.append((re.compile(pattern, re.IGNORECASE), resolver))
        return resolver

    return register


@_rule(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)\s*[日号]?")
def _iso(match: re.Match[str], today: date) -> tuple[date, str] | None:
    found = _month_day(today, int(match[2]), int(match[3]), int(match[1]))
    return (found, "day") if found else None


@_rule(
    rf"(?<!\d)(\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*月\s*"
    rf"(?:(\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*[日号]|(\d{{1,2}})(?![\d.个次件台天年周块元月份]))"
)  # 11月3号, 十二月五日, and 11月3 (digits) when no count word follows
def _zh_month_day(match: re.Match[str], today: date) -> tuple[date, str] | None:
    found = _month_day(today, _number(match[1]), _number(match[2] or match[3]), None)
    return (found, "day") if found else None


@_rule(rf"(上上|上|这|本)\s*(?:个)?\s*月\s*(\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*[日号]")
def _zh_relative_month_day(match: re.Match[str], today: date) -> tuple[date, str] | None:
    back = {"上上": 2, "上": 1}.get(match[1], 0)
    first = _months_back(today.replace(day=1), back)
    found = _month_day(today, first.month, _number(match[2]), first.year)
    return (found, "day") if found else None


@_rule(r"双\s*(11|12|十一|十二)(?![\d一二])")  # the shopping festivals 11.11 and 12.12
def _zh_shopping_festival(match: re.Match[str], today: date) -> tuple[date, str] | None:
    month = 11 if match[1] in {"11", "十一"} else 12
    found = _month_day(today, month, month, None)
    return (found, "day") if found else None


_DOT_DATE_AFTER = re.compile(
    r"\s*(?:号|日|那天|当天|晚上|早上|上午|下午|中午|凌晨|买|下单|下的单|收到|签收|发货|到货|"
    r"付款|支付|付的|订的|退的|寄的|发的)"
)


_DOT_NUMBER_UNIT = re.compile(r"\s*(?:[寸米星分倍斤克吨升度码岁折元块个%]|cm|mm|kg|g\b|m\b)")


@_rule(r"(?<![\d.])(1[0-2]|0?[1-9])\.([12]\d|3[01]|0?[1-9])(?![\d.%])(?:\s*[号日])?")
def _zh_dot_month_day(match: re.Match[str], today: date) -> tuple[date, str] | None:
    """11.3 as a date only with a date word: "11.3号", "11.3买的", "在11.3"."""
    said_as_date = (
        match[0].rstrip().endswith(("号", "日"))
        or _DOT_DATE_AFTER.match(match.string, match.end())
        or (
            re.search(r"(?:在|于|从|自)\s*$", match.string[: match.start()])
            and not _DOT_NUMBER_UNIT.match(match.string, match.end())
        )
    )
    if not said_as_date:
        return None
    found = _month_day(today, int(match[1]), int(match[2]), None)
    return (found, "day") if found else None


@_rule(r"大前天|前天|昨天|昨日|昨晚|昨儿|今天|今日|今早|今晚|今儿")
def _zh_relative_day(match: re.Match[str], today: date) -> tuple[date, str] | None:
    offset = {"大前天": 3, "前天": 2}.get(match[0], 1 if match[0].startswith("昨") else 0)
    return today - timedelta(days=offset), "day"


@_rule(rf"(\d+|[{_CN_NUM}]+|半)\s*(?:个)?\s*(天|日|星期|礼拜|周|月)(?:以?前|之前)")
def _zh_ago(match: re.Match[str], today: date) -> tuple[date, str] | None:
    unit = match[2]
    if match[1] == "半":
        return (today - timedelta(days=15), "day") if unit == "月" else None
    amount = _number(match[1])
    if unit in {"天", "日"}:
        return today - timedelta(days=amount), "day"
    if unit == "月":
        return _months_back(today, amount), "month"
    return today - timedelta(weeks=amount), "week"


@_rule(r"(上上|上|这|本|今)?\s*(?:个)?\s*(?:周|星期|礼拜)([一二三四五六日天末1-7])?")
def _zh_week(match: re.Match[str], today: date) -> tuple[date, str] | None:
    prefix, day = match[1], match[2]
    weeks_back = {"上上": 2, "上": 1}.get(prefix or "", 0)
    if day is None:
        if prefix is None:
            return None
        return _weekday_of_week(today, 0, weeks_back), "week"
    weekday = int(day) - 1 if day.isdigit() else _WEEKDAY_ZH[day]
    if prefix is None:
        return _most_recent_weekday(today, weekday), "day"
    return _weekday_of_week(today, weekday, weeks_back), "day"


@_rule(r"(上上|上|这|本)\s*(?:个)?\s*月(?!\s*\d)")
def _zh_month(match: re.Match[str], today: date) -> tuple[date, str] | None:
    back = {"上上": 2, "上": 1}.get(match[1], 0)
    return _months_back(today, back).replace(day=1), "month"


@_rule(r"(?<![\d.])(\d{1,2})\s*[号日](?![\d元块楼线床房位门店窗口机码])")
def _zh_day_of_month(match: re.Match[str], today: date) -> tuple[date, str] | None:
    day = int(match[1])
    if not 1 <= day <= 31:
        return None
    candidate = _month_day(today, today.month, day, today.year)
    if candidate is None or candidate > today:  # "28号" said on the 5th: last month's
        previous = today.replace(day=1) - timedelta(days=1)
        candidate = _month_day(today, previous.month, day, previous.year)
    return (candidate, "day") if candidate else None


@_rule(r"\b(?:the\s+)?day\s+before\s+yesterday\b|\byesterday\b|\blast\s+night\b|\btoday\b|"
       r"\bthis\s+(?:morning|afternoon|evening)\b|\btonight\b")  # fmt: skip
def _en_relative_day(match: re.Match[str], today: date) -> tuple[date, str] | None:
    text = match[0].lower()
    if "before" in text:
        return today - timedelta(days=2), "day"
    if "yesterday" in text or "last night" in text:
        return today - timedelta(days=1), "day"
    return today, "day"


@_rule(r"\b(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|couple\s+of|few)\s+"
       r"(day|week|month)s?\s+ago\b")  # fmt: skip
def _en_ago(match: re.Match[str], today: date) -> tuple[date, str] | None:
    amount = _number(" ".join(match[1].split()))
    unit = match[2].lower()
    if unit == "day":
        return today - timedelta(days=amount), "day"
    if unit == "week":
        return today - timedelta(weeks=amount), "week"
    return _months_back(today, amount), "month"


@_rule(r"\b(last|this|on|past)?\s*(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b")
def _en_weekday(match: re.Match[str], today: date) -> tuple[date, str] | None:
    weekday = _WEEKDAYS_EN.index(match[2].lower())
    if (match[1] or "").lower() == "last":
        recent = _most_recent_weekday(today, weekday)
        return (recent if recent != today else recent - timedelta(weeks=1)), "day"
    return _most_recent_weekday(today, weekday), "day"


@_rule(r"\blast\s+(week|month|weekend)\b")
def _en_last_period(match: re.Match[str], today: date) -> tuple[date, str] | None:
    if match[1].lower() == "weekend":
        return _weekday_of_week(today, 5, 1), "week"
    if match[1].lower() == "week":
        return _weekday_of_week(today, 0, 1), "week"
    return _months_back(today, 1).replace(day=1), "month"


_MONTH_NAME = r"(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY_NUMBER = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s*(?P<year>\d{4}))?"


@_rule(rf"\b{_MONTH_NAME}\s+{_DAY_NUMBER}\b{_YEAR}")  # Nov 3, November 3rd, 2025
@_rule(rf"\b{_DAY_NUMBER}\s+(?:of\s+)?{_MONTH_NAME}\b{_YEAR}")  # 3 Nov, 3rd of November
def _en_named_month(match: re.Match[str], today: date) -> tuple[date, str] | None:
    month = _MONTHS_EN.get(match["month"].lower()[:3], 0)
    year = int(match["year"]) if match["year"] else None
    found = _month_day(today, month, int(match["day"]), year)
    return (found, "day") if found else None


@_rule(
    r"\bon\s+the\s+(\d{1,2})(?:st|nd|rd|th)\b"
    r"(?!\s+(?:time|attempt|try|call|floor|day|week|month|order|item|one|of)\b)"
)  # on the 3rd (of this month, or the last one when the 3rd is still ahead)
def _en_day_of_month(match: re.Match[str], today: date) -> tuple[date, str] | None:
    day = int(match[1])
    candidate = _month_day(today, today.month, day, today.year) if 1 <= day <= 31 else None
    if candidate is None or candidate > today:
        previous = today.replace(day=1) - timedelta(days=1)
        candidate = _month_day(today, previous.month, day, previous.year)
    return (candidate, "day") if candidate else None


def _either_order(today: date, first: int, second: int, year: int | None) -> date | None:
    """Month/day or day/month: the most recent reading not in the future, else the nearest."""
    readings = {
        found
        for month, day in ((first, second), (second, first))
        if (found := _month_day(today, month, day, year)) is not None
    }
    if not readings:
        return None
    past = [day for day in readings if day <= today]
    return max(past) if past else min(readings)


@_rule(r"(?<![\d/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?![\d/.-])")  # 03/11/2026, 3.11.2026
@_rule(r"(?<![\d/])(\d{1,2})(/)(\d{1,2})(?:/(\d{2}))?(?![\d/])")  # 10/31, 3/11/26
def _numeric_date(match: re.Match[str], today: date) -> tuple[date, str] | None:
    year = int(match[4]) if match[4] else None
    if year is not None and year < 100:
        year += 2000
    found = _either_order(today, int(match[1]), int(match[3]), year)
    return (found, "day") if found else None


def find_dates(text: str, today: date) -> Iterator[FoundDate]:
    """Yield non-overlapping dates, earlier rules (more specific) winning."""
    taken: list[tuple[int, int]] = []
    found: list[FoundDate] = []
    for pattern, resolve in _RULES:
        for match in pattern.finditer(text):
            start, end = match.span()
            surface = match[0].strip()
            if not surface or any(start < e and s < end for s, e in taken):
                continue
            resolved = resolve(match, today)
            if resolved is None:
                continue
            start += len(match[0]) - len(match[0].lstrip())
            end = start + len(surface)
            taken.append((start, end))
            found.append(FoundDate(start, end, text[start:end], resolved[0], resolved[1]))
    yield from sorted(found, key=lambda item: item.start)
