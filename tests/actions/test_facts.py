"""Reading a fact from the customer's words (actions/data/facts.yml terms)."""

from __future__ import annotations

import pytest

from actions.facts import find_term, load_facts


@pytest.mark.parametrize(
    ("slot", "text", "value"),
    [
        ("delivery_issue", "my parcel is late", "late"),
        ("delivery_issue", "I'll send photos later, the box was empty", None),  # not "late"
        ("delivery_issue", "the chocolate arrived melted", None),
        ("delivery_issue", "says delivered but it isn't here", "missing"),
        ("defect", "the shirt came stained", "poor_finish"),  # a term with its ending
        ("defect", "it leaks from the bottom", "broken"),
        ("defect", "my phone screen went black after a week", "stopped_working"),
        ("defect", "用了一个星期就黑屏了", "stopped_working"),
        ("defect", "我买的空气炸锅用了三天就不热了", "stopped_working"),
        ("defect", "空气炸锅不热了", "not_working"),
        ("delivery_issue", "快递显示签收了但是没收到", "missing"),
        ("delivery_issue", "外卖送来的汤全洒了，饭也凉了", "damaged"),
        ("delivery_issue", "half the soup spilled in the bag", "damaged"),
        ("repair_status", "洗衣机修了三次了还是漏水", "not_fixed"),
        ("repair_status", "it has been repaired three times and still leaks", "not_fixed"),
        ("safety_issue", "the bread was mouldy inside", "food_contamination"),
        ("safety_issue", "the charger was sparking", "overheating_fire"),
        ("promotion_source", "please add my address", None),  # not "ad"
        ("promotion_source", "saw your ads on tv", "advert"),
        # a few words between ("charged * twice" in facts.yml), not a sentence
        ("billing_issue", "I was charged £12.99 twice for the same order", "charged_twice"),
        ("billing_issue", "they took the money twice", "charged_twice"),
        ("billing_issue", "扣了我299元两次", "charged_twice"),
        ("billing_issue", "paid for it and twice asked for a refund", None),
        ("billing_issue", "扣了钱，我问了两次客服", None),
    ],
)  # fmt: skip
def test_a_term_counts_as_a_word_not_inside_another(
    slot: str, text: str, value: str | None
) -> None:
    """ "late" is not read in "later" or "chocolate" (the read-back once changed "never
    arrived" to "it's late" on "I'll send photos later")."""
    language = "zh" if any("\u4e00" <= char <= "\u9fff" for char in text) else "en"
    assert find_term(load_facts().slots[slot], text, language) == value


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("I want a reimbursement", "refund"),
        ("can you just replacing it", "replacement"),
        ("I'd like it repaired", "repair"),
        ("I'll wait, ask me later", None),  # no outcome in "later"
    ],
)
def test_an_outcome_named_with_an_ending_counts(text: str, outcome: str | None) -> None:
    assert load_facts().named_outcome(text, "en") == outcome
