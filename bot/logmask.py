"""Phone numbers and e-mail addresses never reach the logs in clear.

A logging filter on the process's handlers rewrites each record's message: an e-mail
keeps its first letter and its domain (`a***@example.com`), a phone-like run of 9 or
more digits (spaces, dashes and a leading + allowed) keeps its last two digits
(`***********34`). Order numbers such as `SO20241105123` are left alone: digits glued
to letters are not a phone number; nor are negative numbers (group and channel ids).
"""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
PHONE = re.compile(r"(?<![\w+-])\+?\d(?:[ -]?\d){8,}(?!\w)")
"""Not after a minus: -1001234567890 is a group's or channel's id (an operator needs it
whole, e.g. STAFF_CHAT_ID), never a person's phone or Telegram id."""


def mask(text: str) -> str:
    text = EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return PHONE.sub(lambda m: "*" * (len(m.group(0)) - 2) + m.group(0)[-2:], text)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def install() -> None:
    """On every handler of the root logger (call after logging.basicConfig)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter())
