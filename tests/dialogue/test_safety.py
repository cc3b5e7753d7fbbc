"""A safety complaint: the first question is whether everyone is safe (issue 16, 4)."""

from __future__ import annotations

from tests.dialogue.conftest import Customer


async def test_the_first_question_is_whether_everyone_is_safe(anna: Customer) -> None:
    await anna.say("my kid's night light got really hot and started smoking in his room last night")
    assert anna.keys[-1] == "utter_ask_safe_now"
    assert anna.keys[-2].startswith("utter_empathy_")  # empathy first, then the question
    assert not any(key.startswith("utter_restate_") for key in anna.keys)  # not yet
    assert anna.buttons == ["Yes, everyone is safe", "Someone is hurt or unwell"]
    await anna.tap("Someone is hurt")
    assert anna.keys[0] == "utter_safety_hurt"
    assert "medical help first" in anna.text and "emergency number" in anna.text
    assert anna.keys[-1] == "utter_restate_safety"
    await anna.agree("Refund")
    asked = await anna.answer_questions()
    assert "utter_ask_injury" not in asked  # answered at the start
    assert "Anyone hurt: Yes" in anna.text
    await anna.tap("Yes, all correct")
    ticket = anna.ticket()
    assert ticket.summary_data["facts"]["injury"] == "yes"
    assert ticket.priority == 2


async def test_a_typed_answer_to_the_safety_question_counts(li: Customer) -> None:
    await li.say("电热毯开着突然冒烟了，床单都烧了个洞")
    assert li.keys[-1] == "utter_ask_safe_now"
    await li.say("大家都没事")
    assert li.keys[0] == "utter_safety_safe" and li.keys[-1] == "utter_restate_safety"
    await li.agree("退款")
    assert "utter_ask_injury" not in await li.answer_questions()


async def test_what_do_you_mean_at_the_safety_question_puts_it_plainly(li: Customer) -> None:
    """ "啥意思" is no answer and no more of the story: the question again, more plainly,
    with its buttons; nothing about injuries is assumed or asked twice."""
    await li.say("我上周买的吹风机，用了三天就冒烟了，吓死我了，你们这什么质量！！")
    assert li.keys[-1] == "utter_ask_safe_now"
    await li.say("啥意思")
    assert li.keys == ["utter_ask_safe_now_explained"]
    assert li.buttons == ["都安全，没人受伤", "有人受伤或不舒服"]
    await li.tap("都安全")
    assert li.keys[0] == "utter_safety_safe"
    await li.agree("退款")
    assert "utter_ask_injury" not in await li.answer_questions()
    assert "您的原话" in li.text and "啥意思" not in li.text  # the read-back


async def test_no_safety_question_when_the_first_message_says_nobody_was_hurt(
    li: Customer,
) -> None:
    await li.say("充电器充着电突然冒烟了 人没事 但是插座都烧黑了")
    assert "utter_ask_safe_now" not in li.keys
    assert "utter_safety_safe" in li.keys and li.keys[-1] == "utter_restate_safety"


async def test_something_else_at_the_safety_question_is_heard_and_the_talk_goes_on(
    anna: Customer,
) -> None:
    await anna.say("the heater you sold me sparked and there was smoke everywhere")
    await anna.say("it's the ceramic one from your winter range")
    assert anna.keys[0] == "utter_safety_advice" and anna.keys[-1] == "utter_restate_safety"
