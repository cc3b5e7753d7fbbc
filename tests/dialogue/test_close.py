"""Step 5, as the method says: a request the rules do not allow gets the reason and an
alternative; a customer who only wants to be heard is heard, not sold anything."""

from __future__ import annotations

import pytest

from tests.dialogue.conftest import Customer


async def _to_close(customer: Customer, complaint: str, yes: str, correct: str) -> None:
    await customer.say(complaint)
    if customer.keys[-1] == "utter_ask_tell_more":  # upset: asked to say more first
        await customer.say("就是这样，说话特别难听" if customer.lang == "zh" else "that's it")
    await customer.tap(yes)
    await customer.answer_questions()
    assert customer.keys[-1] == "utter_summary_confirm", customer.keys
    await customer.tap(correct)


async def test_a_refund_outside_the_rules_gets_the_reason_and_an_alternative(
    anna: Customer,
) -> None:
    await _to_close(
        anna,
        "the zip on the jacket I bought 2 months ago broke, I want a full refund",
        "Yes",
        "Yes, all correct",
    )
    assert anna.keys[0] == "utter_policy_refund_after_7_days"
    assert "7 days" in anna.text and "exchange or a free repair" in anna.text
    assert "utter_meets_expectation" in anna.keys  # then: does that meet your hopes?


async def test_a_customer_who_wants_to_be_heard_is_not_sold_a_refund_or_a_call(
    li: Customer,
) -> None:
    await _to_close(
        li,
        "你们门店的店员态度太差了，当着别人的面冷嘲热讽，以后再也不去了，我就是想说一下",
        "对",
        "都对",
    )
    ticket = li.ticket()
    assert ticket.summary_data["desired_outcome"] == "be_heard"
    assert li.keys[:2] == ["utter_policy_heard", "utter_next_steps_heard"]
    assert "退款" not in li.text and "赔偿" not in li.text
    assert "不会主动打扰" in li.text or "不会去电打扰" in li.text


@pytest.mark.parametrize(
    ("who", "complaint", "yes", "explain", "promised", "correct"),
    [
        (
            "anna",
            "nobody got back to me about my broadband fault",
            "Yes",
            "An explanation",
            "yes",
            "Yes, all correct",
        ),
        ("li", "宽带坏了报修以后一直没人联系我", "对", "给个说法", "是的", "都对"),
    ],
    ids=["en", "zh"],
)
async def test_a_complaint_turns_major_from_its_facts(
    anna: Customer,
    li: Customer,
    who: str,
    complaint: str,
    yes: str,
    explain: str,
    promised: str,
    correct: str,
) -> None:
    """Nothing major in the first message; the facts then show a promised call-back that
    never came: the ticket is major (a senior colleague, priority 1) with that reason."""
    customer = anna if who == "anna" else li
    await customer.say(complaint)
    await customer.tap(yes)
    if customer.keys[-1] == "utter_ask_outcome":
        await customer.tap(explain)
    asked = await customer.answer_questions({"utter_ask_promised_callback": promised})
    assert "utter_ask_promised_callback" in asked
    await customer.tap(correct)
    assert "utter_next_steps_major" in customer.keys
    ticket = customer.ticket()
    assert ticket.priority == 1 and ticket.supervisor_flag
    assert "callback_missed" in ticket.summary_data["major_reasons"]


async def test_a_refund_outside_the_rules_in_chinese(li: Customer) -> None:
    """两个月前买的外套，吊牌剪了，要全额退款: the reason first, then what can be done."""
    await _to_close(
        li,
        "两个月前买的外套拉链坏了，吊牌已经剪了，我要全额退款",
        "对",
        "都对",
    )
    assert li.keys[0] == "utter_policy_refund_after_7_days"
    assert "7天" in li.text
    assert "utter_meets_expectation" in li.keys
    assert "优先维修" not in li.text


async def test_a_customer_who_wants_to_be_heard_in_english(anna: Customer) -> None:
    await _to_close(
        anna,
        "not asking for anything, I just want someone to know the delivery driver threw "
        "my parcel over the fence and laughed when I said something",
        "Yes",
        "Yes, all correct",
    )
    assert anna.ticket().summary_data["desired_outcome"] == "be_heard"
    assert anna.keys[:2] == ["utter_policy_heard", "utter_next_steps_heard"]
    assert "refund" not in anna.text.lower() and "compensation" not in anna.text.lower()
    assert "nobody will call you unasked" in anna.text  # no call they did not ask for
