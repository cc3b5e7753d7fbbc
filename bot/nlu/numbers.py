"""Chinese numerals to integers ("两百五" -> 250, "一千二百" -> 1200, "十五" -> 15)."""

from __future__ import annotations

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
           "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}


def chinese_to_int(text: str) -> int | None:
    """Convert a Chinese numeral; ``None`` when ``text`` is not one."""
    if not text or any(char not in _DIGITS and char not in _UNITS for char in text):
        return None
    total, section, digit = 0, 0, None
    last_unit, zero_after_unit = 1, False
    for char in text:
        if char in _DIGITS:
            digit = _DIGITS[char]
            zero_after_unit = zero_after_unit or digit == 0
            continue
        unit = _UNITS[char]
        if unit == 10000:
            section = (section + (digit or 0)) * unit
            total += section
            section, digit, last_unit, zero_after_unit = 0, None, 10000, False
            continue
        section += (1 if digit is None else digit) * unit
        digit, last_unit, zero_after_unit = None, unit, False
    if digit is not None:
        # "两百五" means 250 (the unit below the last one); "一百零五" means 105.
        abbreviated = last_unit >= 100 and len(text) > 2 and not zero_after_unit
        section += digit * (last_unit // 10 if abbreviated else 1)
    return total + section
