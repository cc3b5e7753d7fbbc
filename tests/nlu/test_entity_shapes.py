"""Entity shapes as customers type them: order numbers, phones, e-mails, amounts, dates.

Every table row is one message in a customer's voice (chat, tweets, e-mails, Chinese chat
with full-width punctuation). The order-number tables are the measure of recall: a row
passes only when the exact order number is found, and nothing else is taken for one.
"""

from __future__ import annotations

from datetime import date

import pytest

from bot.nlu.data import load_training_data
from bot.nlu.entities import SHAPE_ONLY_CONFIDENCE, Entity, EntityExtractor
from tests.conftest import NLU_DATA

TODAY = date(2026, 11, 22)  # a Sunday
EXTRACTOR = EntityExtractor.from_training_data(load_training_data(NLU_DATA))


def entities(text: str, kind: str) -> list[Entity]:
    found = [e for e in EXTRACTOR.extract(text, TODAY) if e.entity == kind]
    for entity in found:  # offsets point into the text as written
        assert 0 <= entity.start < entity.end <= len(text)
        if kind in {"order_id", "phone", "email", "amount"}:
            assert text[entity.start : entity.end] == entity.value
    return found


def values(text: str, kind: str) -> list[str]:
    return [e.value for e in entities(text, kind)]


# ------------------------------------------------------------------------------- order ids

ORDER_IDS: list[tuple[str, str | tuple[str, ...]]] = [
    # after a keyword, English
    ("Order 88231907.", "88231907"),
    ("order 71230045", "71230045"),
    ("hi, my order number is 55102938 and it still hasn't shipped", "55102938"),
    ("Order No: 1188-2203-99", "1188-2203-99"),
    ("order no. 66120934, placed last week", "66120934"),
    ("Order No.:77120934 - still waiting", "77120934"),
    ("Order#88231907 where is it", "88231907"),
    ("order # 4471902 came with the wrong colour", "4471902"),
    ("Order ID: AX-992107-KL", "AX-992107-KL"),
    ("Order Number:88231907", "88231907"),
    ("order nr. 88231907", "88231907"),
    ("ORDER 88231907!!! STILL NOTHING", "88231907"),
    ("(order 88231907)", "88231907"),
    ("order 88231907,still nothing", "88231907"),
    ("the order number was 5521907734.", "5521907734"),
    ("@ShopCo where is my order 99013377?? been 2 weeks", "99013377"),
    ("DM'd you my order no 30012288, please check", "30012288"),
    ("Your order ＃88231907 hasn't shipped", "88231907"),
    ("Amazon order 112-4455667-8899001 arrived broken", "112-4455667-8899001"),
    ("Subject: Complaint regarding order #SO-88213456", "SO-88213456"),
    ("Re: Order No. 4479-1102 — refund request", "4479-1102"),
    ("order 13912345678 - wrong size", "13912345678"),
    ("Order: 20261001", "20261001"),
    ("my orders 88231907 and 88231908 both late", ("88231907", "88231908")),
    ("ref 88231907", "88231907"),
    ("Ref.: 88231907", "88231907"),
    ("Booking ref: XK7P2Q, the flight was cancelled", "XK7P2Q"),
    ("booking reference 4471-2290-18", "4471-2290-18"),
    ("tracking number 1Z999AA10123456784 says delivered", "1Z999AA10123456784"),
    ("Tracking no. LP00512345678901 hasn't moved in 5 days", "LP00512345678901"),
    ("tracking: 9400111899223344556677", "9400111899223344556677"),
    ("AWB 157-12345675", "157-12345675"),
    ("waybill 784512369874 is stuck at customs", "784512369874"),
    ("confirmation number: 7734129905", "7734129905"),
    ("invoice no. INV-2024-000318 is wrong", "INV-2024-000318"),
    ("Order No. - 88231907", "88231907"),
    ("Order number (88231907) was never delivered", "88231907"),
    ("https://shop.example.com/track?order=88231907", "88231907"),
    ("order 88231907 and 13812345678 is my phone", "88231907"),
    ("Hello, regarding my order (no. 40098812) the item is missing a part.", "40098812"),
    ("Where's my stuff?? Order #A1B2C3D4E5 placed 10 days ago", "A1B2C3D4E5"),
    ("hi, my order #A-55821 arrived with a cracked screen, I paid 299", "A-55821"),
    ("order #A55821X never came", "A55821X"),
    ("PO number 4500123456 was invoiced twice", "4500123456"),
    # after a keyword, Chinese
    ("订单号 30012288776", "30012288776"),
    ("订单号：30012288776，麻烦尽快处理", "30012288776"),
    ("订单号:4402918837", "4402918837"),
    ("（订单号：30012288776）", "30012288776"),
    ("订单编号 SO2024110588123 的耳机没声音", "SO2024110588123"),
    ("我的订单是 2298817730，到现在没发货", "2298817730"),
    ("订单：88120034。", "88120034"),
    ("订单号【88213345】还没发货", "88213345"),
    ("订单号码为 6621009381", "6621009381"),
    ("订单ID: 1122334455", "1122334455"),
    ("订单号是 SO-2024-110588，帮我查下", "SO-2024-110588"),
    ("订单号13812345678 退款还没到", "13812345678"),
    ("订单 202610280093516 买的电饭煲", "202610280093516"),
    ("订单号 88231907、88231908 都没到", ("88231907", "88231908")),
    ("单号：YT2345678901234", "YT2345678901234"),
    ("单号 #66120934", "66120934"),
    ("售后单号 66120934 一直没人处理", "66120934"),
    ("运单号SF1234567890123一直没更新", "SF1234567890123"),
    ("快递单号 773012345678901 显示签收了但我没收到", "773012345678901"),
    ("物流单号：JT0001234567890", "JT0001234567890"),
    ("在吗 我11月10号下的单 订单号JD-778812340 当时说三天到", "JD-778812340"),
    ("订单号：SO2024110588123，电话13812345678", "SO2024110588123"),
    ("订单号：８８２３１９０７", "８８２３１９０７"),  # full-width digits, kept as typed
    ("订单号 1234 5678 9012 还没发货", "1234 5678 9012"),  # read out in groups
    ("我有两个订单 88231907 和 88231908", ("88231907", "88231908")),
    # no keyword: a shop prefix, '#', or a long number
    ("SO2024110588123 still not here", "SO2024110588123"),
    ("JD-778812340 到哪了", "JD-778812340"),
    ("JD-778812340-01 这个子订单退款了吗", "JD-778812340-01"),
    ("ord_55821902 was charged twice", "ord_55821902"),
    ("#88421397 never arrived", "88421397"),
    ("parcel for 202610150087341 is lost", "202610150087341"),
    ("pls check 202611030455821 thx", "202611030455821"),
    ("112-4455667-8899001 arrived broken", "112-4455667-8899001"),
    ("still waiting on #SO2026111402216 😤", "SO2026111402216"),
]


@pytest.mark.parametrize(("text", "expected"), ORDER_IDS)
def test_order_numbers_in_every_shape(text: str, expected: str | tuple[str, ...]) -> None:
    wanted = [expected] if isinstance(expected, str) else list(expected)
    assert values(text, "order_id") == wanted


NOT_ORDER_IDS: list[tuple[str, tuple[str, str] | None]] = [
    # prices, years, quantities
    ("paid ¥299 for it", ("amount", "¥299")),
    ("花了299元还这样", ("amount", "299元")),
    ("$45.99 charged twice", ("amount", "$45.99")),
    ("退我 129900元", ("amount", "129900元")),
    ("￥1,299,000.00 for a sofa??", ("amount", "￥1,299,000.00")),
    ("bought it back in 2024", None),
    ("ordered 3 pcs, got 2", None),
    ("order of 120000 pcs for the shop", None),
    ("in order to get a refund 123456 times", None),
    # phones
    ("call me on 13812345678", ("phone", "13812345678")),
    ("my number is 8613812345678", ("phone", "8613812345678")),
    ("0086 138 1234 5678", ("phone", "0086 138 1234 5678")),
    ("0755-12345678 打不通", ("phone", "0755-12345678")),
    ("075512345678 打不通", None),
    ("UK mobile 07700 900123", ("phone", "07700 900123")),
    ("Tel13812345678", None),
    ("phone: 202610150087341", None),
    # IMEIs, serials, cards, ID numbers, SKUs, one-time codes
    ("IMEI 356938035643809", None),
    ("imei:352099001761481 phone won't boot", None),
    ("the IMEI is 35-693803-564380-9", None),
    ("串号：866123456789018", None),
    ("手机串号866123456789012", None),
    ("IMEI356938035643809", None),
    ("356938035643809 is the imei on the box", None),
    ("SN: 1234567890123", None),
    ("SKU 100012043978 is out of stock", None),
    ("4111-1111-1111-1111 was charged", None),
    ("卡号6222021234567890123", None),
    ("身份证 110101199003077571", None),
    ("110101199003077571 是我的身份证", None),
    ("confirmation code 482913 never came", None),
    ("验证码 482913 收不到", None),
    # model names
    ("iPhone 15 Pro screen cracked", None),
    ("Galaxy SM-G991B won't charge", None),
    ("RTX4090 fans rattle", None),
    ("Sony WH-1000XM4 left ear dead", None),
    ("MacBook A2337 battery drains", None),
    ("my order RTX4090 card died", None),
    # dates and card digits
    ("delivered 2026-10-01, broken", ("date", "2026-10-01")),
    ("order 2026-10-01 arrived broken", ("date", "2026-10-01")),
    ("since 20261001", None),
    ("card ending 4471", None),
    # a product page's id in a link
    ("see https://item.jd.com/100012043978.html", None),
    ("链接item.jd.com/100012043978.html 打不开", None),
]


@pytest.mark.parametrize(("text", "instead"), NOT_ORDER_IDS)
def test_look_alikes_are_not_order_numbers(text: str, instead: tuple[str, str] | None) -> None:
    found = [(e.entity, e.value) for e in EXTRACTOR.extract(text, TODAY)]
    assert not [value for kind, value in found if kind == "order_id"], found
    if instead is not None:
        assert instead in found


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ("Order 88231907.", 1.0),  # a keyword
        ("订单号：30012288776", 1.0),
        ("SO2024110588123 still not here", 1.0),  # a shop prefix
        ("#88421397 never arrived", 1.0),  # '#'
        ("pls check 202611030455821 thx", SHAPE_ONLY_CONFIDENCE),  # bare digits
        ("112-4455667-8899001 arrived broken", SHAPE_ONLY_CONFIDENCE),
    ],
)
def test_bare_digits_are_less_sure(text: str, confidence: float) -> None:
    (order,) = entities(text, "order_id")
    assert order.as_dict()["confidence_entity"] == confidence


def test_a_named_order_number_beats_the_phone_shape_but_bare_digits_do_not() -> None:
    assert values("订单号13812345678", "order_id") == ["13812345678"]
    assert values("订单号13812345678", "phone") == []
    assert values("8613812345678", "phone") == ["8613812345678"]
    assert values("8613812345678", "order_id") == []


def test_every_fact_in_one_message() -> None:
    text = (
        "11月3号下的单，订单号SO2024110588123，花了￥1,299.00，"
        "电话+86 138 1234 5678，邮箱li.ming@example.com。"
    )
    assert [(e.entity, e.value) for e in EXTRACTOR.extract(text, TODAY)] == [
        ("date", "11月3号"),
        ("order_id", "SO2024110588123"),
        ("amount", "￥1,299.00"),
        ("phone", "+86 138 1234 5678"),
        ("email", "li.ming@example.com"),
    ]
    text = "Order 88231907: charged $45.90 twice on 03/11/2026, call +44 20 7946 0958."
    assert [(e.entity, e.value) for e in EXTRACTOR.extract(text, TODAY)] == [
        ("order_id", "88231907"),
        ("amount", "$45.90"),
        ("date", "03/11/2026"),
        ("phone", "+44 20 7946 0958"),
    ]


def test_the_parse_contract_is_unchanged() -> None:
    for entity in EXTRACTOR.extract("订单号：30012288776，花了¥299，昨天买的", TODAY):
        assert set(entity.as_dict()) <= {
            "entity", "value", "start", "end", "confidence_entity", "extractor",
            "additional_info",
        }  # fmt: skip
        assert {"entity", "value", "start", "end", "confidence_entity", "extractor"} <= set(
            entity.as_dict()
        )


# ---------------------------------------------------------------------------------- phones

PHONES = [
    ("我电话：138-1234-5678，随时打", "138-1234-5678"),
    ("手机 138 1234 5678", "138 1234 5678"),
    ("手机号13912345678", "13912345678"),
    ("+86 138 1234 5678 is my WhatsApp", "+86 138 1234 5678"),
    ("联系我+8613812345678", "+8613812345678"),
    ("0086 138 1234 5678", "0086 138 1234 5678"),
    ("+86-138-1234-5678", "+86-138-1234-5678"),
    ("座机010-12345678", "010-12345678"),
    ("打0755-1234567找我", "0755-1234567"),
    ("(021) 12345678 是公司电话", "(021) 12345678"),
    ("0755 12345678 打不通", "0755 12345678"),
    ("call me on +44 20 7946 0958 please", "+44 20 7946 0958"),
    ("ring +1 (415) 555-0134 after 6", "+1 (415) 555-0134"),
    ("my SG number +65 9123 4567", "+65 9123 4567"),
    ("call me back on 07700 900123 after 5pm", "07700 900123"),
    ("office: 020 7946 0958.", "020 7946 0958"),
    ("my phone number is 415-555-0134", "415-555-0134"),
    ("text (415) 555-0134", "(415) 555-0134"),
    ("it's 415.555.0134", "415.555.0134"),
    ("(415)555-0134 is my cell", "(415)555-0134"),
    ("your hotline 1-800-555-0199 hung up on me", "1-800-555-0199"),
    ("+44 7700 900123 (mobile)", "+44 7700 900123"),
    ("reach me at +91 98765 43210", "+91 98765 43210"),
]


@pytest.mark.parametrize(("text", "expected"), PHONES)
def test_phones(text: str, expected: str) -> None:
    assert values(text, "phone") == [expected]
    assert values(text, "order_id") == []


def test_an_imei_or_an_order_number_is_not_a_phone() -> None:
    assert values("IMEI 356938035643809", "phone") == []
    assert values("SO13812345678", "phone") == []
    assert values("SO13812345678", "order_id") == ["SO13812345678"]


# -------------------------------------------------------------------------------- e-mails

EMAILS = [
    ("邮箱li.ming@example.com", "li.ming@example.com"),
    ("email me at tom+refund@gmail.com.", "tom+refund@gmail.com"),
    ("(john.doe+orders@mail.example.co.uk)", "john.doe+orders@mail.example.co.uk"),
    ("first-last@sub.domain.io, thanks", "first-last@sub.domain.io"),
    ("邮箱：wang_fang.2024@outlook.com。", "wang_fang.2024@outlook.com"),
    ("<jane@corp.example.org>", "jane@corp.example.org"),
    ("mailto:jo@ex.com,", "jo@ex.com"),
    ("li@qq.com谢谢", "li@qq.com"),
    ("Zhang.Wei@Example.CN replied?", "Zhang.Wei@Example.CN"),
    ("send it to support-team@shop-co.com!", "support-team@shop-co.com"),
    ("88231907@qq.com 是我邮箱", "88231907@qq.com"),
    ("me@x.io", "me@x.io"),
]


@pytest.mark.parametrize(("text", "expected"), EMAILS)
def test_emails(text: str, expected: str) -> None:
    assert values(text, "email") == [expected]
    assert values(text, "order_id") == []


def test_a_handle_is_not_an_email() -> None:
    assert values("@ShopCo fix this", "email") == []


# -------------------------------------------------------------------------------- amounts

AMOUNTS = [
    ("花了¥299", "¥299", 299.0, "CNY"),
    ("￥1,299.00 买的", "￥1,299.00", 1299.0, "CNY"),
    ("299元的耳机", "299元", 299.0, "CNY"),
    ("才用了一周 299块", "299块", 299.0, "CNY"),
    ("charged $45.99 twice", "$45.99", 45.99, "USD"),
    ("that's 45.99 dollars gone", "45.99 dollars", 45.99, "USD"),
    ("三百块就这质量", "三百块", 300.0, "CNY"),
    ("两千五百元的空调", "两千五百元", 2500.0, "CNY"),
    ("一百二十块钱的充电宝", "一百二十块钱", 120.0, "CNY"),
    ("RMB 500 deposit", "RMB 500", 500.0, "CNY"),
    ("paid Rs. 1,499 for this", "Rs. 1,499", 1499.0, "INR"),
    ("₹499 plan", "₹499", 499.0, "INR"),
    ("£20 delivery fee!", "£20", 20.0, "GBP"),
    ("€15,50 extra", "€15,50", 15.5, "EUR"),
    ("a $5k sofa", "$5k", 5000.0, "USD"),
    ("1.5万元的手表", "1.5万元", 15000.0, "CNY"),
    ("300多块呢", "300多块", 300.0, "CNY"),
    ("45 bucks for nothing", "45 bucks", 45.0, "USD"),
    ("15€ shipping", "15€", 15.0, "EUR"),
    ("US$ 120 refund", "US$ 120", 120.0, "USD"),
    ("HK$388 套餐", "HK$388", 388.0, "HKD"),
    ("500 rupees", "500 rupees", 500.0, "INR"),
    ("20 quid", "20 quid", 20.0, "GBP"),
    ("99.9 yuan", "99.9 yuan", 99.9, "CNY"),
    ("30美元运费", "30美元", 30.0, "USD"),
    ("退我两百五十块", "两百五十块", 250.0, "CNY"),
    ("£1,250.50 sofa", "£1,250.50", 1250.5, "GBP"),
    # no currency: after a payment word, or two decimals in a message about paying
    ("I was charged twice for my order SO20241105123, 45.90 each time", "45.90", 45.9, None),
    ("charged me 45.90 twice", "45.90", 45.9, None),
    ("paid 299 for it and it broke", "299", 299.0, None),
    ("refund of 120 still not here", "120", 120.0, None),
    ("they charged me twice, 12.99 a month", "12.99", 12.99, None),
    ("it cost 1,299.00 and lasted a week", "1,299.00", 1299.0, None),
    ("扣了 45.9 两次", "45.9", 45.9, None),
    ("付了299还这样", "299", 299.0, None),
    ("多收了15", "15", 15.0, None),
]


@pytest.mark.parametrize(("text", "surface", "amount", "currency"), AMOUNTS)
def test_amounts(text: str, surface: str, amount: float, currency: str) -> None:
    (found,) = entities(text, "amount")
    assert found.value == surface
    assert found.additional_info == {"amount": amount, "currency": currency}


@pytest.mark.parametrize(
    "text",
    [
        "内胆涂层一块块往下剥", "两块电池都坏了", "bought 3 pieces", "5km away", "版本 11.3",
        "the driver came at 10.30 and left, I paid extra for nothing",
        "upgraded to version 17.10 and was charged nothing", "paid 3 times",
        "I paid 20 minutes ago",
        "my bill is 2 months late", "paid for 2 items", "charged me 3x", "花了3天才到",
        "付了款3天了还没发货", "the heater is 22.50 cm wide",
    ],
)  # fmt: skip
def test_not_amounts(text: str) -> None:
    assert values(text, "amount") == []


# ---------------------------------------------------------------------------------- dates

DATES = [
    ("昨天买的", "昨天", "2026-11-21"),
    ("上周三下的单", "上周三", "2026-11-11"),
    ("3天前到的货", "3天前", "2026-11-19"),
    ("两个星期前", "两个星期前", "2026-11-08"),
    ("11月3号买的", "11月3号", "2026-11-03"),
    ("11月3买的", "11月3", "2026-11-03"),
    ("11.3号下的单", "11.3号", "2026-11-03"),
    ("11.3买的", "11.3", "2026-11-03"),
    ("我在11.3下的单", "11.3", "2026-11-03"),
    ("上个月15号付的款", "上个月15号", "2026-10-15"),
    ("双11买的", "双11", "2026-11-11"),
    ("双十一买的羽绒服", "双十一", "2026-11-11"),
    ("11.11买的", "11.11", "2026-11-11"),
    ("3月15买的", "3月15", "2026-03-15"),
    ("自11.5起就坏了", "11.5", "2026-11-05"),
    ("2026/11/03 签收", "2026/11/03", "2026-11-03"),
    ("2026.11.03 签收", "2026.11.03", "2026-11-03"),
    ("2024年11月3日", "2024年11月3日", "2024-11-03"),
    ("上周末送到的", "上周末", "2026-11-14"),
    ("last Tuesday", "last Tuesday", "2026-11-17"),
    ("3 days ago", "3 days ago", "2026-11-19"),
    ("two weeks ago", "two weeks ago", "2026-11-08"),
    ("Nov 3", "Nov 3", "2026-11-03"),
    ("November 3rd, 2025", "November 3rd, 2025", "2025-11-03"),
    ("3rd November", "3rd November", "2026-11-03"),
    ("on the 3rd it broke", "on the 3rd", "2026-11-03"),
    ("delivered on the 25th", "on the 25th", "2026-10-25"),  # the 25th is still ahead
    ("last weekend", "last weekend", "2026-11-14"),
    ("the day before yesterday", "the day before yesterday", "2026-11-20"),
    ("10/31", "10/31", "2026-10-31"),
    ("13/10/2026", "13/10/2026", "2026-10-13"),
    # both numbers could be the month: the most recent past reading wins
    ("03/11/2026", "03/11/2026", "2026-11-03"),
    ("11/03/2026", "11/03/2026", "2026-11-03"),
    ("05/06/2026", "05/06/2026", "2026-06-05"),
    ("3.11.2026", "3.11.2026", "2026-11-03"),
    ("12/1", "12/1", "2026-01-12"),  # 1 Dec is still ahead, 12 Jan is past
]


@pytest.mark.parametrize(("text", "surface", "day"), DATES)
def test_dates(text: str, surface: str, day: str) -> None:
    (found,) = entities(text, "date")
    assert (found.value, (found.additional_info or {}).get("date")) == (surface, day)
    assert text[found.start : found.end] == surface


@pytest.mark.parametrize(
    "text",
    [
        "评分4.5",
        "评分是4.5",
        "版本 11.3",
        "在3.5寸屏幕上",
        "从1.5米高掉下来",
        "this is the 3rd time I write",
        "on the 1st floor",
        "3号楼的快递柜",
        "1号线地铁站",
        "11月份",
    ],
)
def test_not_dates(text: str) -> None:
    assert values(text, "date") == []
