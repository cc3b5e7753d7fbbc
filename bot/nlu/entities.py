"""Entity extraction: regexes and lookup tables from nlu_data/, plus order numbers, dates and
money amounts.

Offsets always refer to the text as the customer wrote it. Overlapping candidates
are resolved by a fixed priority (an e-mail before the digits inside it, an order
number the customer named before a phone shape, ...), then by length.

Why this module is over 400 lines: the order-number rules, the longest part, decide by
what stands around the digits, so they need the phone, amount and date shapes beside
them; the overlap priority that settles a conflict belongs to all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.nlu.data import TrainingData
from bot.nlu.dates import find_dates
from bot.nlu.numbers import chinese_to_int

# Overlapping candidates: the kind listed first wins, then the longer one. "order_id" is an
# order number the customer named (after "order no.", "订单号", with a shop prefix or '#'):
# it beats the phone shape it may have ("订单号 13812345678"). "order_id?" is one found by
# its bare digits alone (confidence 0.7): a phone or an amount in the same place beats it.
PRIORITY = ("email", "order_id", "phone", "amount", "order_id?", "date", "product")

_CURRENCY_PREFIX = {
    "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "$": "USD", "us$": "USD", "usd": "USD",
    "s$": "SGD", "sgd": "SGD", "a$": "AUD", "aud": "AUD", "£": "GBP", "gbp": "GBP", "€": "EUR",
    "eur": "EUR", "₹": "INR", "rs": "INR", "rs.": "INR", "inr": "INR", "hk$": "HKD", "hkd": "HKD",
}  # fmt: skip
_CURRENCY_SUFFIX = {
    "元": "CNY", "块": "CNY", "块钱": "CNY", "圆": "CNY", "rmb": "CNY", "cny": "CNY", "yuan": "CNY",
    "¥": "CNY", "￥": "CNY", "dollars": "USD", "dollar": "USD", "bucks": "USD", "usd": "USD",
    "$": "USD", "美元": "USD", "美金": "USD", "pounds": "GBP", "quid": "GBP", "gbp": "GBP",
    "£": "GBP", "英镑": "GBP", "euros": "EUR", "euro": "EUR", "eur": "EUR", "€": "EUR",
    "欧元": "EUR", "rupees": "INR", "rupee": "INR", "rs": "INR", "inr": "INR", "₹": "INR",
    "卢比": "INR", "sgd": "SGD", "新币": "SGD", "aud": "AUD", "hkd": "HKD", "港币": "HKD",
    "港元": "HKD", "日元": "JPY",
}  # fmt: skip
_MULTIPLIERS = {"k": 1000, "千": 1000, "w": 10000, "万": 10000}
# 1,299.00 | 15,50 (a decimal comma: two digits after it) | 299 | 45.99
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+,\d{2}(?![\d,])|\d+(?:\.\d+)?"
_MULTIPLIER = r"([kKwW千万](?![A-Za-z/]))?"  # ¥5k, 1.5万元, 5w块
_AMOUNT_PREFIX = re.compile(
    r"(?<![A-Za-z])(US\$|HK\$|S\$|A\$|RMB|CNY|USD|SGD|AUD|GBP|EUR|INR|HKD|Rs\.?|[¥￥$£€₹])\s?("
    + _NUMBER
    + ")"
    + _MULTIPLIER,
    re.IGNORECASE,
)
_AMOUNT_SUFFIX = re.compile(
    r"(?<![\d.,])("
    + _NUMBER
    + r"|[零一二两三四五六七八九十百千万]+)"
    + _MULTIPLIER
    + r"\s?(?:多|来|余)?\s?(块钱|美元|美金|英镑|欧元|卢比|新币|港币|港元|日元|块(?![块儿])|元|圆|"
    r"rmb|cny|yuan|dollars?|bucks|usd|pounds|quid|gbp|euros?|eur|rupees?|rs|inr|sgd|aud|hkd|"
    r"[¥￥$£€₹])(?![A-Za-z])",
    re.IGNORECASE,
)
# A sum with no currency is money when a payment word comes right before it ("charged me
# 45.90", "paid 299", "扣了 45.9"), or, in English, when it has two decimals in a message
# about paying ("45.90 each time" after "charged twice") and is not a time ("at 10.30").
_BARE_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_NOT_MONEY_AFTER = (
    r"(?![\d.,%A-Za-z]|\s*(?:%|x\b|times?\b|items?\b|pcs\b|pieces\b|days?\b|hours?\b|hrs?\b|"
    r"minutes?\b|mins?\b|weeks?\b|months?\b|years?\b|am\b|pm\b|[次天个件年月号日周单台瓶盒斤元块]|"
    r"小时|分钟|星期|公斤))"
)
_AMOUNT_AFTER_VERB = re.compile(
    r"(?:(?<![A-Za-z])(?:charged|billed|paid|pay|cost|costs|costing|refunded|deducted|debited|"
    r"overcharged(?:\s+by)?|(?:charge|refund|fee|payment|price|total)\s+(?:of|was|is))"
    r"(?:\s+(?:me|us|him|her|them))?(?:\s+(?:twice|again|extra))?\s*:?\s*"
    r"|(?:扣了|扣款|扣费|付了|付款|支付了?|花了|收了|收我|多收了?|退了|实付|价格是?)\s?)"
    r"(" + _BARE_NUMBER + ")" + _NOT_MONEY_AFTER,
    re.IGNORECASE,
)
_BARE_DECIMAL = re.compile(
    r"(?<![\w.,:/$£€¥￥₹+-])(\d{1,3}(?:,\d{3})+\.\d{2}|\d+\.\d{2})" + _NOT_MONEY_AFTER
)
_PAYING = re.compile(
    r"(?<![a-z])(?:charg|paid|pay|bill|refund|fee|price|cost|money|debit|deduct|overcharg|"
    r"transaction)",
    re.IGNORECASE,
)
_TIME_OR_VERSION_BEFORE = re.compile(
    r"(?:(?<![a-z])(?:at|by|around|from|until|till|before|after|between|and|to|version|v|ios|"
    r"android|update|size)\s*)$",
    re.IGNORECASE,
)
# After "一块"/"两块" a noun means pieces, not money ("一块块往下剥", "两块电池").
_MEASURE_WORD_FOLLOWS = re.compile(
    r"[\u4e00-\u9fff](?<![钱的了啊吧呢吗呀哦嘛多都还就也给退呗是买])"
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
    confidence: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "confidence_entity": self.confidence,
            "extractor": self.extractor,
        }
        if self.additional_info:
            result["additional_info"] = self.additional_info
        return result


def _rank_name(entity: Entity) -> str:
    """The entity's place in PRIORITY: a shape-only order number ranks as "order_id?"."""
    if entity.entity == "order_id" and entity.confidence < 1.0:
        return "order_id?"
    return entity.entity


def _amount_value(number: str) -> float | None:
    if number[0].isdigit():
        if re.fullmatch(r"\d+,\d{2}", number):
            return float(number.replace(",", "."))
        return float(number.replace(",", ""))
    converted = chinese_to_int(number)
    return float(converted) if converted is not None else None


# ---------------------------------------------------------------------------- order numbers
#
# Why this is code and not one more regex in nlu_data/: customers give their order number
# in every shape ("Order 88231907.", "订单号：30012288776", "order #", "AWB 157-12345675"),
# and the digits alone cannot tell an order from a phone, an IMEI, a price or a year. The
# word before the number can. So:
#
# 1. After an order keyword (order / order no. / order number / ref / booking ref /
#    tracking number / AWB / 订单号 / 订单编号 / 单号 / 运单号 / 快递单号 ...) any token of
#    6-24 characters with 6+ digits is the order number, whatever its shape (confidence 1.0).
# 2. Without a keyword, the shapes of nlu_data/*/entities.yml are kept (shop prefix +
#    digits, '#' + digits, a long bare number, dash-grouped digits), minus look-alikes:
#    IMEIs, phones, ID and bank cards, SKUs, a number after "IMEI"/"串号"/"tel"/"卡号"...
#    A shop prefix or '#' says "this is a number you gave us" (1.0); bare digits are
#    less sure (0.7), and the dialogue confirms them with the customer.

SHAPE_ONLY_CONFIDENCE = 0.7

_ORDER_HEAD = (
    # heads that name an order number on their own: "order 88231907", "tracking 1Z999AA1..."
    r"(?<![A-Za-z])(?:(?:(?:orders?|booking|tracking|awb|waybill|pnr)\b|ref(?:erence)?\b\.?)"
    r"(?:\s*(?:ref(?:erence)?\b\.?|no\b\.?|nr\b\.?|num(?:ber)?s?\b|id\b|code\b|[#＃]))*"
    # heads that need a noun after them: "confirmation number", not "confirmation code 4829"
    r"|(?:confirmation|reservation|shipment|consignment|parcel|invoice|p\.?o\.?)\s*"
    r"(?:ref(?:erence)?\b\.?|no\b\.?|nr\b\.?|num(?:ber)?\b|id\b|[#＃])"
    r"(?:\s*(?:no\b\.?|num(?:ber)?\b|[#＃]))*)"
    r"|(?:订单编号|订单号码|订单号|订单(?:ID|id|Id)|订单|快递单号|运单号|物流单号|运单|单号)"
)
_ORDER_LINK = (
    r"\s*(?:(?:is|was|是|为)\s*)?[:：=]?\s*(?:[-–—]\s*)?"
    r"(?:[(（【\[]\s*(?:(?:no\b\.?|number)\s*)?)?(?:[#＃]\s*)?"  # "(no. 40098812)", "【88213345】"
)
# One token of 6-24 characters (inner dashes kept), or digits read out in groups
# ("1234 5678 9012"); never the start of a longer token, an e-mail or a decimal.
_ORDER_VALUE = (
    r"(?P<value>[A-Za-z\d](?:[A-Za-z\d]|[-_](?=[A-Za-z\d])){5,23}|\d{3,4}(?: \d{3,4}){1,5})"
    r"(?![A-Za-z\d@]|[-_][A-Za-z\d]|\.\d)"
)
_ORDER_AFTER_KEYWORD = re.compile(f"(?:{_ORDER_HEAD}){_ORDER_LINK}{_ORDER_VALUE}", re.IGNORECASE)
# "订单号 88231907、88231908" / "orders 88231907 and 88231908": the next ones are orders too.
_ORDER_LIST_NEXT = re.compile(
    r"\s*(?:[,，、/&]|\band\b|\bor\b|和|及|与|跟)\s*(?:[#＃]\s*)?" + _ORDER_VALUE, re.IGNORECASE
)
# "Booking ref XK7P2Q": an airline-style record locator has few digits.
_RECORD_LOCATOR_HEAD = re.compile(r"booking|pnr|ref|confirmation|reservation", re.IGNORECASE)

# A number right after one of these is not an order number: an IMEI, a serial, a SKU, a card.
_NOT_ORDER_WORDS = (
    r"imei\s*\d?|meid|串号|序列号|serial|s/?n|sku|asin|model|型号|货号|商品编号|条码|barcode|"
    r"ean|upc|isbn|卡号|银行卡|card|身份证|id\s*card|account|账号|帐号|账户"
)
# ... and bare digits right after one of these are a phone number or a one-time code.
_PHONE_WORDS = (
    r"phone|tel\b\.?|telephone|mobile|cell|whatsapp|wechat|微信|qq|电话|手机|联系方式|fax|"
    r"验证码|code|call\s+me(?:\s+(?:on|at))?|contact"
)
_WORDS_END = (
    r")\s*(?:no\b\.?|number|num|#|＃|号码|号|码)?\s*(?:(?:is|was|是|为)\s*)?[:：]?\s*[#＃]?\s*$"
)
_NOT_ORDER_BEFORE = re.compile(f"(?:{_NOT_ORDER_WORDS}{_WORDS_END}", re.IGNORECASE)
_PHONE_BEFORE = re.compile(f"(?:{_PHONE_WORDS}{_WORDS_END}", re.IGNORECASE)
# Letters glued to digits that are not a shop prefix: IMEI356938035643809, Tel13812345678.
_NOT_A_SHOP_PREFIX = frozenset(
    {"imei", "meid", "tel", "fax", "mob", "cell", "sku", "sn", "qq", "wx", "vx", "isbn", "ean",
     "upc", "asin", "no"}
)  # fmt: skip
# After the number: money or a quantity ("订单 129900元", "order of 100000 pcs"). After a
# keyword the Chinese measure words are not read: "订单号88231907个人信息" is an order.
_MONEY_OR_UNIT = (
    r"元|块|圆|美元|rmb|yuan|dollars?|bucks|usd|eur|euros?|pounds|%|pcs|pieces|units|kg"
)
_UNIT_AFTER_KEYWORDED = re.compile(rf"\s?(?:{_MONEY_OR_UNIT})(?![A-Za-z])", re.IGNORECASE)
_UNIT_AFTER = re.compile(rf"\s?(?:{_MONEY_OR_UNIT}|件|个|台|张|份)(?![A-Za-z])", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"(?:[¥￥$£€₹]|rmb|usd|rs\.?)\s?$", re.IGNORECASE)
# Bare digits that are a phone number: mainland mobiles with or without 86 / 0086, an
# international 00 prefix, a Chinese landline with its area code (075512345678), a UK
# mobile with 44.
_PHONE_DIGITS = re.compile(r"(?:(?:00|\+)?86)?1[3-9]\d{9}|00\d{10,15}|0\d{10,11}|447\d{9}")
_PHONE_DASHED = re.compile(r"(?:00|\+)?86-?1[3-9]\d-?\d{4}-?\d{4}|0\d{2,3}-\d{7,8}")
# Digits in a link are a product page or a tracking URL's own ids, not what the customer gave.
_URL = re.compile(
    r"(?:https?://|www\.)[^\s\u3000-\u303f\u4e00-\u9fff\uff01-\uff0f）)]+"
    r"|[A-Za-z\d-]+(?:\.[A-Za-z\d-]+)+/[^\s\u3000-\u303f\u4e00-\u9fff\uff01-\uff0f）)]*",
    re.IGNORECASE,
)
_ISO_DATE = re.compile(r"\d{4}[-_]\d{1,2}[-_]\d{1,2}")
_ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def _is_id_card(digits: str) -> bool:
    """A mainland resident ID: area, birth date 19xx/20xx, sequence, check digit."""
    if len(digits) != 18 or not re.fullmatch(
        r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{4}", digits
    ):
        return False
    check = sum(int(d) * w for d, w in zip(digits, _ID_CARD_WEIGHTS, strict=False)) % 11
    return "10X98765432"[check] == digits[-1]


def _digits_look_like_something_else(raw: str) -> bool:
    """True when an all-digit token (dashes allowed) is a phone, IMEI, card or ID number."""
    digits = re.sub(r"\D", "", raw)
    if _PHONE_DIGITS.fullmatch(digits) or _PHONE_DASHED.fullmatch(raw):
        return True
    if len(digits) == 15 and _luhn_valid(digits):  # an IMEI carries a Luhn check digit
        return True
    if re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{4}", raw) and _luhn_valid(digits):  # a bank card
        return True
    return _is_id_card(digits)


def _order_value_ok(value: str, head: str = "") -> bool:
    """Is a token after an order keyword an order number (6+ digits, not a date)?"""
    digits = sum(char.isdigit() for char in value)
    if " " in value:  # read out in groups: at least 8 digits
        return digits >= 8
    if digits >= 6:
        return not _ISO_DATE.fullmatch(value)
    # "order #A1B2C3D4E5", "order #A-55821": the '#' says it is a number, not a model name
    if re.search("[#＃]", head) and digits >= 4 and len(value) >= 6:
        return True
    # "booking ref XK7P2Q": a record locator, upper case with a digit in it.
    return bool(
        _RECORD_LOCATOR_HEAD.search(head)
        and digits >= 1
        and len(value) <= 8
        and value.isupper()
        and value.isalnum()
    )


def find_order_ids_after_keywords(text: str) -> Iterator[Entity]:
    """Order numbers the customer named with a keyword: "Order 88231907.", "订单号：3001228877"."""
    for match in _ORDER_AFTER_KEYWORD.finditer(text):
        head = match.group(0)[: match.start("value") - match.start()]
        start, end = match.span("value")
        while True:
            value = text[start:end]
            if not _order_value_ok(value, head) or _UNIT_AFTER_KEYWORDED.match(text, end):
                break
            yield Entity("order_id", value, start, end, "OrderIdExtractor")
            following = _ORDER_LIST_NEXT.match(text, end)
            if following is None:
                break
            start, end = following.span("value")
            candidate = text[start:end]
            if not candidate.replace("-", "").isdigit() or _digits_look_like_something_else(
                candidate
            ):
                break


def shaped_order_id(text: str, start: int, end: int) -> Entity | None:
    """An order number found by its shape alone (nlu_data's regex), or None for a look-alike.

    The value and span leave out a leading '#'. A shop prefix or '#' gives confidence
    1.0; bare digits SHAPE_ONLY_CONFIDENCE.
    """
    marked = text[start] in "#＃"
    if marked:
        start += 1
    value = text[start:end]
    before = text[max(0, start - 30) : start - 1 if marked else start]
    if _NOT_ORDER_BEFORE.search(before) or _CURRENCY_BEFORE.search(before):
        return None
    if _UNIT_AFTER.match(text, end):
        return None
    if any(url.start() <= start < url.end() for url in _URL.finditer(text)):
        return None
    prefix = re.match(r"[A-Za-z]*", value)
    letters = prefix.group(0).lower() if prefix else ""
    if letters in _NOT_A_SHOP_PREFIX:
        return None
    if not letters and (
        _digits_look_like_something_else(value)
        or _ISO_DATE.fullmatch(value)
        or _PHONE_BEFORE.search(before)
    ):
        return None
    confidence = 1.0 if letters or marked else SHAPE_ONLY_CONFIDENCE
    return Entity("order_id", value, start, end, "RegexEntityExtractor", confidence=confidence)


# ---------------------------------------------------------------------------- the extractor


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
        candidates.sort(
            key=lambda item: (rank[_rank_name(item)], -(item.end - item.start), item.start)
        )
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
                    if name == "order_id":
                        shaped = shaped_order_id(text, start, end)
                        if shaped is not None:
                            yield shaped
                        continue
                    yield Entity(name, match.group(group), start, end, "RegexEntityExtractor")
        yield from find_order_ids_after_keywords(text)
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
            yield from self._products(text)

    def _products(self, text: str) -> Iterable[Entity]:
        """Products from the lookup table; names side by side are one product ("phone
        charger", "手机充电器": the charger, not the phone), kept as written."""
        assert self.lookup_pattern is not None
        runs: list[list[re.Match[str]]] = []
        for match in self.lookup_pattern.finditer(text):
            gap = text[runs[-1][-1].end() : match.start()] if runs else "-"
            if gap in ("", " "):
                runs[-1].append(match)
                continue
            runs.append([match])
        for run in runs:
            start, end = run[0].start(), run[-1].end()
            surface = text[start:end]
            value = self.synonyms.get(surface.lower(), surface) if len(run) == 1 else surface
            yield Entity("product", value, start, end, "LookupEntityExtractor")

    def _amounts(self, text: str) -> Iterable[Entity]:
        """Currency before the number (¥299, $45.90, $5k) or after it (299元, 两百块, 1.5万元)."""
        forms = (
            (_AMOUNT_PREFIX, 2, 1, 3, _CURRENCY_PREFIX),
            (_AMOUNT_SUFFIX, 1, 3, 2, _CURRENCY_SUFFIX),
        )
        for pattern, number_group, currency_group, multiplier_group, currencies in forms:
            for match in pattern.finditer(text):
                number = match.group(number_group)
                currency_word = match.group(currency_group)
                if (
                    currency_word == "块"
                    and not number[0].isdigit()
                    and (chinese_to_int(number) or 0) <= 10
                    and _MEASURE_WORD_FOLLOWS.match(text, match.end())
                ):
                    continue
                amount = _amount_value(number)
                if amount is None:
                    continue
                multiplier = match.group(multiplier_group)
                if multiplier:
                    amount *= _MULTIPLIERS[multiplier.lower()]
                currency = currencies.get(currency_word.lower(), "CNY")
                yield Entity(
                    "amount", match.group(0), match.start(), match.end(), "AmountExtractor",
                    {"amount": amount, "currency": currency},
                )  # fmt: skip
        yield from _amounts_without_currency(text)


def _amounts_without_currency(text: str) -> Iterable[Entity]:
    """ "charged me 45.90", "扣了45.9", and "45.90" in a message about paying: the currency
    is unknown (``None``); a sum with its currency in the same place wins (longer)."""
    found = [match.span(1) for match in _AMOUNT_AFTER_VERB.finditer(text)]
    if _PAYING.search(text):
        for match in _BARE_DECIMAL.finditer(text):
            if not _TIME_OR_VERSION_BEFORE.search(text, 0, match.start()):
                found.append(match.span(1))
    for start, end in sorted(set(found)):
        amount = _amount_value(text[start:end])
        if amount:
            yield Entity(
                "amount", text[start:end], start, end, "AmountExtractor",
                {"amount": amount, "currency": None},
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
