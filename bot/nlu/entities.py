"""Entity extraction: regexes and lookup tables from nlu_data/, plus dates and money amounts.

Offsets always refer to the text as the customer wrote it. Overlapping candidates
are resolved by a fixed priority (an e-mail before the digits inside it, a phone
before an order number, ...), then by length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.nlu.data import TrainingData
from bot.nlu.dates import find_dates
from bot.nlu.numbers import chinese_to_int

PRIORITY = ("email", "phone", "order_id", "amount", "date", "product")

_CURRENCY_PREFIX = {
    "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "$": "USD", "us$": "USD", "usd": "USD",
    "s$": "SGD", "sgd": "SGD", "a$": "AUD", "aud": "AUD", "£": "GBP", "gbp": "GBP", "€": "EUR",
    "eur": "EUR", "₹": "INR", "rs": "INR", "rs.": "INR", "inr": "INR", "hk$": "HKD",
}  # fmt: skip
_CURRENCY_SUFFIX = {
    "元": "CNY", "块": "CNY", "块钱": "CNY", "圆": "CNY", "rmb": "CNY", "dollars": "USD",
    "dollar": "USD", "bucks": "USD", "usd": "USD", "pounds": "GBP", "quid": "GBP", "euros": "EUR",
    "eur": "EUR", "rupees": "INR", "rs": "INR", "sgd": "SGD", "aud": "AUD", "美元": "USD",
}  # fmt: skip
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_AMOUNT_PREFIX = re.compile(
    r"(?<![A-Za-z])(US\$|HK\$|S\$|A\$|RMB|CNY|USD|SGD|AUD|GBP|EUR|INR|Rs\.?|[¥￥$£€₹])\s?("
    + _NUMBER
    + ")",
    re.IGNORECASE,
)
_AMOUNT_SUFFIX = re.compile(
    r"(?<![\d.,])("
    + _NUMBER
    + r"|[零一二两三四五六七八九十百千万]+)\s?(块钱|块|元|圆|美元|rmb|dollars?|bucks|usd|"
    r"pounds|quid|euros?|rupees|rs|sgd|aud)(?![A-Za-z])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Entity:
    """One entity in Rasa's parse shape."""

    entity: str
    value: str
    start: int
    end: int
    extractor: str
    additional_info: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "confidence_entity": 1.0,
            "extractor": self.extractor,
        }
        if self.additional_info:
            result["additional_info"] = self.additional_info
        return result


def _amount_value(number: str) -> float | None:
    if number[0].isdigit():
        return float(number.replace(",", ""))
    converted = chinese_to_int(number)
    return float(converted) if converted is not None else None


@dataclass
class EntityExtractor:
    """Finds every entity type the bot uses as a known fact."""

    regexes: dict[str, list[re.Pattern[str]]] = field(default_factory=dict)
    lookup_pattern: re.Pattern[str] | None = None
    synonyms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_training_data(cls, data: TrainingData) -> EntityExtractor:
        regexes: dict[str, list[re.Pattern[str]]] = {}
        for name, patterns in data.regexes.items():
            if name in PRIORITY:
                regexes[name] = [re.compile(pattern) for pattern in patterns]
        products = {term.strip() for term in data.lookups.get("product", []) if term.strip()}
        products |= set(data.synonyms)  # an alias is found, then reported by its canonical name
        products |= {
            span.value.strip()
            for example in data.examples
            for span in example.entities
            if span.entity == "product" and 1 < len(span.value.strip()) <= 30
        }
        return cls(regexes, _lookup_regex(products), dict(data.synonyms))

    def extract(self, text: str, today: date) -> list[Entity]:
        candidates = list(self._candidates(text, today))
        rank = {name: index for index, name in enumerate(PRIORITY)}
        candidates.sort(key=lambda item: (rank[item.entity], -(item.end - item.start), item.start))
        chosen: list[Entity] = []
        for candidate in candidates:
            if all(
                candidate.end <= other.start or other.end <= candidate.start for other in chosen
            ):
                chosen.append(candidate)
        return sorted(chosen, key=lambda item: item.start)

    def _candidates(self, text: str, today: date) -> Iterable[Entity]:
        for name, patterns in self.regexes.items():
            for pattern in patterns:
                for match in pattern.finditer(text):
                    group = 1 if pattern.groups else 0
                    start, end = match.span(group)
                    if start == end:
                        continue
                    value = match.group(group)
                    if name == "order_id":
                        value = value.lstrip("#")
                    yield Entity(name, value, start, end, "RegexEntityExtractor")
        yield from self._amounts(text)
        for found in find_dates(text, today):
            yield Entity(
                "date",
                found.text,
                found.start,
                found.end,
                "DateExtractor",
                {"date": found.day.isoformat(), "grain": found.grain},
            )
        if self.lookup_pattern is not None:
            for match in self.lookup_pattern.finditer(text):
                surface = match.group(0)
                value = self.synonyms.get(surface.lower(), surface)
                yield Entity("product", value, match.start(), match.end(), "LookupEntityExtractor")

    def _amounts(self, text: str) -> Iterable[Entity]:
        """Currency before the number (¥299, $45.90) or after it (299元, 两百块, 45 bucks)."""
        forms = ((_AMOUNT_PREFIX, 2, 1, _CURRENCY_PREFIX), (_AMOUNT_SUFFIX, 1, 2, _CURRENCY_SUFFIX))
        for pattern, number_group, currency_group, currencies in forms:
            for match in pattern.finditer(text):
                amount = _amount_value(match.group(number_group))
                if amount is None:
                    continue
                currency = currencies.get(match.group(currency_group).lower(), "CNY")
                yield Entity(
                    "amount", match.group(0), match.start(), match.end(), "AmountExtractor",
                    {"amount": amount, "currency": currency},
                )  # fmt: skip


def _lookup_regex(terms: set[str]) -> re.Pattern[str] | None:
    """One alternation, longest term first; Latin terms match whole words only."""
    if not terms:
        return None
    parts = []
    for term in sorted(terms, key=lambda item: (-len(item), item)):
        escaped = re.escape(term)
        if re.search(r"[A-Za-z]", term):
            escaped = rf"(?<![A-Za-z]){escaped}(?![A-Za-z])(?!\s+(?:number|no\.|call))"
        else:
            escaped = rf"{escaped}(?!号)"
        parts.append(escaped)
    return re.compile("|".join(parts), re.IGNORECASE)
