"""Facts the customer already gave: order numbers, phones, e-mails, amounts, dates, products."""

from __future__ import annotations

from datetime import date

import pytest

from bot.nlu.data import load_training_data
from bot.nlu.dates import find_dates
from bot.nlu.entities import EntityExtractor
from tests.conftest import NLU_DATA

TODAY = date(2026, 11, 22)  # a Sunday
EXTRACTOR = EntityExtractor.from_training_data(load_training_data(NLU_DATA))


def found(text: str) -> list[tuple[str, str]]:
    return [(e.entity, e.value) for e in EXTRACTOR.extract(text, TODAY)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("上周三", date(2026, 11, 11)),
        ("昨天晚上", date(2026, 11, 21)),
        ("前天", date(2026, 11, 20)),
        ("3天前", date(2026, 11, 19)),
        ("三天前", date(2026, 11, 19)),
        ("两个星期前", date(2026, 11, 8)),
        ("11月3号", date(2026, 11, 3)),
        ("十二月五日", date(2026, 12, 5)),  # near future: kept, so a future date can be caught
        ("二月五日", date(2026, 2, 5)),
        ("Dec 30", date(2025, 12, 30)),  # far ahead without a year: last year
        ("2024年11月3日", date(2024, 11, 3)),
        ("2026-10-01", date(2026, 10, 1)),
        ("周五", date(2026, 11, 20)),
        ("3 days ago", date(2026, 11, 19)),
        ("a week ago", date(2026, 11, 15)),
        ("yesterday", date(2026, 11, 21)),
        ("last Tuesday", date(2026, 11, 17)),
        ("Nov 3", date(2026, 11, 3)),
        ("3rd of November 2025", date(2025, 11, 3)),
        ("10/31", date(2026, 10, 31)),
    ],
)
def test_dates_resolve_to_a_day(text: str, expected: date) -> None:
    dates = list(find_dates(f"bought it {text} and", TODAY))
    assert [item.day for item in dates] == [expected]


def test_chinese_message_with_every_fact() -> None:
    text = (
        "我上周三买的蓝牙耳机坏了,订单号SO2024110588123,花了¥299,"
        "电话138-1234-5678,邮箱li.ming@example.com"
    )
    assert found(text) == [
        ("date", "上周三"),
        ("product", "蓝牙耳机"),
        ("order_id", "SO2024110588123"),
        ("amount", "¥299"),
        ("phone", "138-1234-5678"),
        ("email", "li.ming@example.com"),
    ]


def test_english_message_with_every_fact() -> None:
    text = (
        "Order #88421397: charged $45.90 twice for my headphones 3 days ago. Call +1 415 555 0134"
    )
    assert found(text) == [
        ("order_id", "88421397"),
        ("amount", "$45.90"),
        ("product", "headphones"),
        ("date", "3 days ago"),
        ("phone", "+1 415 555 0134"),
    ]


def test_amounts_are_normalised() -> None:
    entities = EXTRACTOR.extract("退我两百五十块, and the RMB 1,280 deposit", TODAY)
    amounts = [e.additional_info for e in entities if e.entity == "amount"]
    assert amounts == [
        {"amount": 250.0, "currency": "CNY"},
        {"amount": 1280.0, "currency": "CNY"},
    ]


def test_offsets_point_into_the_original_text() -> None:
    text = "ＳＯ单号：JD-778812340，手机号 13812345678"
    for entity in EXTRACTOR.extract(text, TODAY):
        assert text[entity.start : entity.end] in {entity.value, f"#{entity.value}"}
    assert ("order_id", "JD-778812340") in found(text)
    assert ("phone", "13812345678") in found(text)


def test_a_phone_number_is_not_a_product_and_not_an_order() -> None:
    assert found("my phone number is 415-555-0134") == [("phone", "415-555-0134")]
    assert found("手机号13912345678") == [("phone", "13912345678")]


def test_synonyms_map_to_the_canonical_product() -> None:
    assert ("product", "蓝牙耳机") in found("无线耳机一直断连")
    assert ("product", "fridge") in found("the refrigerator is warm")


def test_product_names_side_by_side_are_one_product() -> None:
    """'my phone charger' is the charger: the empathy says 'your phone charger', not
    'your phone'; two products apart stay two."""
    assert ("product", "phone charger") in found("my phone charger started smoking")
    assert ("product", "phone") not in found("my phone charger started smoking")
    assert ("product", "手机充电器") in found("手机充电器冒烟了")
    assert [v for e, v in found("my phone and my charger") if e == "product"] == [
        "phone",
        "charger",
    ]
