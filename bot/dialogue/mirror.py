"""The customer's own words for the empathy line: how long they say they have waited.

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
