"""How long the customer says they have waited: their words for the empathy line, and
the number of days for the "how long have you been waiting?" fact (not asked again).

Only a wait the customer states as waiting ("waited 10 days", "been waiting for two
weeks", "2 weeks and still nothing", "等了一个星期", "都半个月了", "三天前留言
到现在都没人回", "2 weeks late", "晚了两周") counts; a
duration that is not a wait ("stopped working after two weeks", "用了三天") is not
mirrored back as one. The phrase is returned as they wrote it.
"""

from __future__ import annotations

import re

_EN_AMOUNT = (
    r"(?:\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"several|a few|a couple of|over an?|over|almost|nearly|more than|about)"
)
_EN_UNIT = r"(?:minutes?|hours?|days?|weeks?|months?)"
_EN_SPAN = rf"{_EN_AMOUNT}(?:\s+(?:\d+|whole|full|entire))?\s+{_EN_UNIT}"
_EN = [
    re.compile(
        rf"\b(?:wait(?:ed|ing)|chas(?:ed|ing)|on hold)\b(?:\s+[\w']+){{0,3}}?\s+({_EN_SPAN})\b",
        re.I,
    ),
    re.compile(
        rf"\b({_EN_SPAN})\s+(?:now\s+|already\s+|later\s+)?(?:and|,)?\s*"
        r"(?:still|nothing|no\s+(?:reply|answer|response|word|update))\b",
        re.I,
    ),
    re.compile(rf"\b(?:it'?s|it has)\s+(?:now\s+|already\s+)?been\s+({_EN_SPAN})\b", re.I),
    re.compile(  # "my parcel is 2 weeks late", not "I was 5 minutes late to the door"
        rf"(?<!i was )(?<!i am )(?<!i'm )(?<!im )(?<!we were )\b({_EN_SPAN})\s+(?:late|overdue)\b",
        re.I,
    ),
    re.compile(rf"\b(?:late|overdue|delayed)\s+(?:by\s+)?({_EN_SPAN})\b", re.I),
]
_ZH_SPAN = r"[一二两三四五六七八九十几半\d]+(?:个)?多?(?:分钟|小时|天|周|星期|礼拜|月)"
_ZH = [
    re.compile(rf"等了(?:快|将近|差不多|整整|足足|都)?({_ZH_SPAN}多?)"),
    re.compile(rf"已经(?:快|将近|整整|足足)?({_ZH_SPAN})了?[，,]?(?:还|都|也)(?:没|不)"),
    re.compile(rf"(?:都|已经)(?:快|将近|整整|足足)?({_ZH_SPAN}多?)了"),
    re.compile(rf"({_ZH_SPAN}多?)了[，,\s]*(?:还|都|也)(?:没|不)"),
    re.compile(rf"({_ZH_SPAN})前.{{0,20}}?(?:到现在|至今|现在)(?:都|还|也)?(?:没|不)"),
    # 快递晚了两周
    re.compile(rf"(?:晚了|迟了|延迟了|拖了|超时)(?:快|将近|整整|足足)?({_ZH_SPAN}多?)"),
]


def waited(text: str, language: str) -> str | None:
    """The wait the customer names, in their words ("10 days", "一个星期"), if any."""
    for pattern in _ZH if language == "zh" else _EN:
        found = pattern.search(text)
        if found:
            return found.group(1).strip()
    return None


_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "several": 3,
    "a few": 3, "a couple of": 2,
}  # fmt: skip
_ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "几": 3, "半": 0.5}  # fmt: skip
_UNIT_DAYS = (
    ("minute", 0), ("hour", 0), ("day", 1), ("week", 7), ("month", 30),
    ("分钟", 0), ("小时", 0), ("天", 1), ("周", 7), ("星期", 7), ("礼拜", 7), ("月", 30),
)  # fmt: skip


def _zh_number(text: str) -> float | None:
    if text.isdigit():
        return float(text)
    if text == "十":
        return 10.0
    if "十" in text:  # 十五, 二十, 二十五
        tens, _, ones = text.partition("十")
        return float(_ZH_DIGITS.get(tens, 1) * 10 + _ZH_DIGITS.get(ones, 0))
    return float(_ZH_DIGITS[text]) if text in _ZH_DIGITS else None


def wait_days(phrase: str) -> float | None:
    """A wait as :func:`waited` gives it ("2 weeks", "半个月", "over a month") in days."""
    lowered = phrase.lower()
    unit = next((days for name, days in _UNIT_DAYS if name in lowered), None)
    if unit is None:
        return None
    found = re.search(r"\d+", lowered)
    if found:
        number: float | None = float(found.group(0))
    elif re.search("[\u4e00-\u9fff]", lowered):
        found = re.match(r"[一二两三四五六七八九十几半]+", lowered)
        number = _zh_number(found.group(0)) if found else None
    else:
        words = re.sub(r"^(?:over|almost|nearly|more than|about)\s+", "", lowered)
        number = next(
            (value for word, value in sorted(_EN_NUMBERS.items(), key=lambda i: -len(i[0]))
             if words.startswith(word + " ")),
            None,
        )  # fmt: skip
    if number is None:
        return None
    more = lowered.startswith(("over", "more than")) or "多" in lowered  # "两个多月"
    return number * unit + (2 if more else 0)
