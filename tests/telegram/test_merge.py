"""Fewer, fuller messages (issue 16, 8): lines typed within a moment are one turn, and
a pressed button's message carries the next question. Counted in Bot API calls."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from bot.store import Message, Ticket
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import texts, wait

TO_CUSTOMER = {"sendMessage", "editMessageText", "editMessageReplyMarkup", "copyMessage"}


def calls_to(double: BotApiDouble, chat_id: int) -> list[str]:
    """The Bot API calls that change what the customer sees (not the spinner's answer,
    not "typing…")."""
    return [
        method
        for method, params in double.requests
        if method in TO_CUSTOMER and str(params.get("chat_id")) == str(chat_id)
    ]


@pytest.mark.env(MERGE_WINDOW="2s")
async def test_a_rant_over_four_lines_gets_one_answer(double: BotApiDouble, customers) -> None:
    rosa = customers(611, "Rosa", "en")
    lines = [
        "unbelievable",
        "the vacuum I bought from you three weeks ago just died",
        "no power at all, tried every socket",
        "order 55120934",
    ]
    for line in lines:
        double.user_sends(611, line)
        await asyncio.sleep(0.4)
    await double.wait_for(lambda: bool(double.sent_to(611)), 20, "an answer")
    await wait(3)  # the window has passed: nothing more comes
    sent = double.sent_to(611)
    assert len(sent) == 1, texts(sent)
    assert "Rosa" in sent[0]["text"] and sent[0].get("reply_markup")  # empathy + restatement
    with rosa.db.session() as session:
        said = session.exec(
            select(Message).where(Message.direction == "in").order_by(col(Message.id))
        ).all()
    assert [m.text for m in said] == ["\n".join(lines)]  # one turn, every word of it
    await rosa.tap("Yes")
    for _ in range(8):
        if rosa.keyboard[:1] in (["Yes, all correct"], []):
            break
        await rosa.tap(rosa.keyboard[0])
    assert rosa.keyboard[:1] == ["Yes, all correct"]
    assert "Order number: 55120934" in texts(double.sent_to(611))  # from the fourth line


@pytest.mark.env(MERGE_WINDOW="2s")
async def test_lines_far_apart_are_separate_turns_and_answers_are_not_delayed(
    double: BotApiDouble, customers
) -> None:
    ben = customers(612, "Ben", "en")
    await ben.say("my parcel never arrived, order 55120934")
    await ben.tap("Yes")  # the facts questions: answers are not held back
    reply = await ben.say("I'd like it sent again please")
    assert reply


async def test_a_complaint_told_in_full_costs_at_most_six_calls(
    double: BotApiDouble, customers
) -> None:
    anna = customers(613, "Anna", "en")
    await anna.say(
        "you charged me twice for order SO2026110937114, $59.99 each time, I want the extra back"
    )
    while anna.keyboard[:1] == ["Yes, that's right"] or anna.keyboard[:1] == ["Refund"]:
        await anna.tap(anna.keyboard[0])
    assert anna.keyboard == ["Yes, all correct", "Change something"]
    handed = await anna.tap("Yes, all correct")
    assert "2 hours" in texts(handed)
    calls = calls_to(double, 613)
    assert len(calls) <= 6, calls
    # the pressed messages show the choice, and carry the next question's buttons
    shown = double.sent_to(613)
    assert any("✓ Yes, that's right" in m["text"] and m.get("reply_markup") for m in shown)


async def test_a_complaint_that_needs_every_question_costs_at_most_nine_calls(
    double: BotApiDouble, customers
) -> None:
    li = customers(614, "李雷", "zh")
    await li.say("耳机坏了")
    for _ in range(12):
        keyboard = li.keyboard
        if keyboard[:1] == ["都对"]:
            break
        if not keyboard:
            await li.say("是在你们官方旗舰店买的")
        elif "退款" in keyboard:
            await li.tap("退款")
        else:
            await li.tap(keyboard[0])
    handed = await li.tap("都对")
    assert "2小时" in texts(handed) or "两小时" in texts(handed)
    calls = calls_to(double, 614)
    assert len(calls) <= 9, calls
    with li.db.session() as session:
        assert session.exec(select(Ticket)).one().status == "waiting"
