"""Button payloads (bot/payloads.py): what the bot puts on a button reads back as it was
meant, fits Telegram's 64 bytes, and anything else (forged, truncated, old) reads as
nothing rather than as a wrong answer."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.payloads import (
    MAX_BYTES,
    Choice,
    DeskPress,
    FollowUpAnswer,
    PayloadError,
    SlotAnswer,
    SlotPick,
    chosen,
)

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    "press",
    [
        DeskPress("take", 12),
        DeskPress("xfer", 12, 987654321012),
        DeskPress("xfer", 12, 0),  # back to the queue
        DeskPress("cb", 3),
        DeskPress("discard", 40),
    ],
)
def test_a_desk_press_reads_back_as_made(press: DeskPress) -> None:
    assert DeskPress.parse(press.pack()) == press


@pytest.mark.parametrize(
    "data",
    [
        "",
        None,
        "tk:take",
        "tk:take:x",
        "tk:nuke:12",
        "tk:xfer:12:me",
        "type:delivery",
        "tk:take:1:2:3",
    ],
)
def test_anything_else_is_no_desk_press(data: str | None) -> None:
    assert DeskPress.parse(data) is None


def test_unknown_actions_and_long_payloads_are_refused_when_made() -> None:
    with pytest.raises(PayloadError):
        DeskPress("nuke", 1).pack()
    with pytest.raises(PayloadError, match="64 bytes"):
        Choice("slot", "order_id=" + "9" * MAX_BYTES).pack()
    assert len(Choice("slot", "order_id=" + "9" * 50).pack().encode()) == MAX_BYTES


def test_choices_name_their_question() -> None:
    assert Choice("type", "delivery").pack() == "type:delivery"
    assert chosen("type:delivery", "type") == "delivery"
    assert chosen("outcome:delivery", "type") is None  # another question's answer
    assert chosen("slot:order_id=SO1:2", "slot") == "order_id=SO1:2"  # the value keeps its ':'
    assert chosen(None, "type") is None and chosen("typedelivery", "type") is None


def test_a_fact_questions_button_names_the_fact_and_its_value() -> None:
    answer = SlotAnswer("order_id", "no_order_id")
    assert answer.pack() == "slot:order_id=no_order_id"
    assert SlotAnswer.parse("slot:order_id=no_order_id") == answer
    assert SlotAnswer.parse("slot:defect=a=b") == SlotAnswer("defect", "a=b")
    for data in ("slot:order_id", "slot:=x", "type:delivery", "order_id=x", None):
        assert SlotAnswer.parse(data) is None
    with pytest.raises(PayloadError):
        SlotAnswer("order=id", "x").pack()


def test_follow_up_answers_and_scores() -> None:
    answer = FollowUpAnswer("sv", "r4", 12)
    assert answer.pack() == "sv:r4:12"
    assert FollowUpAnswer.parse("sv:r4:12") == answer and answer.score == 4
    assert FollowUpAnswer.parse("as:no:7") == FollowUpAnswer("as", "no", 7)
    assert FollowUpAnswer("sv", "yes", 1).score is None
    assert FollowUpAnswer("sv", "r9", 1).score is None
    for data in ("sv:r4", "xx:yes:1", "sv:yes:one", None):
        assert FollowUpAnswer.parse(data) is None


def test_a_call_back_slot_reads_back_in_the_desks_zone() -> None:
    start = datetime(2026, 12, 7, 9, 30, tzinfo=ZONE)
    pick = SlotPick.parse(SlotPick(start).pack(), ZONE)
    assert pick is not None and pick.start == start
    assert SlotPick(start).pack() == "cb:2026-12-07T09:30"
    assert SlotPick.parse("cb:none", ZONE) == SlotPick(None)
    assert SlotPick.parse("cb:tomorrow", ZONE) is None
    assert SlotPick.parse("type:delivery", ZONE) is None
