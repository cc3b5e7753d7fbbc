"""Follow-ups end to end: `python -m bot run` with short delays against the Bot API
double. SLA timers, promises, call-backs, the satisfaction survey (yes / no / a low
score), the after-service check, no answer, a blocked customer, quiet hours, and a
restart between scheduling and firing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.store import Conversation, FollowUp, Ticket
from tests.handoff.helpers import card_of, complaint, last_to, press, taken, ticket_of
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import (
    AGENTS,
    STAFF_CHAT,
    SUPERVISORS,
    UNSTARTED,
    mentioned,
    texts,
)

pytestmark = [pytest.mark.flood(group_per_minute=600)]
ADA = next(iter(AGENTS))
SUE = next(iter(SUPERVISORS))
FAST = {"HANDOFF_TICK": "0.2s", "SURVEY_DELAY": "1s", "NO_ANSWER_AFTER": "1h"}


def _rows(customer: Any, kind: str) -> list[FollowUp]:
    with customer.db.session() as session:
        return list(
            session.exec(select(FollowUp).where(FollowUp.kind == kind).order_by(FollowUp.id))
        )


async def _taken_and_closed(double: BotApiDouble, customers: Any) -> Any:
    """A complaint, taken by Ada, one reply, closed with a resolution."""
    anna, _, thread = await taken(double, customers, ADA)
    double.user_sends(ADA, "Refunding the second charge now.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "second charge now" in texts(double.sent_to(601)), 20)
    double.user_sends(ADA, "/close Refunded $45.90.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: ticket_of(anna).status == "resolved", 20, "resolved")
    return anna


@pytest.mark.unstarted
@pytest.mark.staff(FIRST_CONTACT_SLA="2s", PROGRESS_SLA="4s", **FAST)
async def test_sla_timers_alert_supervisors_and_tell_the_customer(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await complaint(double, customers)
    await double.wait_for(
        lambda: "no agent has written" in texts(double.sent_to(SUE)), 20, "first-contact alert"
    )
    assert f"Ticket #{ticket_of(anna).id}" in texts(double.sent_to(SUE))
    # Max never pressed Start: the breach mentions him in the staff group
    await double.wait_for(lambda: mentioned(double, UNSTARTED[0], "no agent has written"), 20)
    await double.wait_for(
        lambda: (
            "A quick update on your case" in texts(double.sent_to(601))
            or "Where things stand" in texts(double.sent_to(601))
        ),
        20,
        "progress update to the customer",
    )
    await double.wait_for(lambda: "no progress message" in texts(double.sent_to(STAFF_CHAT)), 20)
    assert [r.outcome for r in _rows(anna, "first_contact")] == ["breached"]
    progress = _rows(anna, "progress_report")
    assert progress[0].outcome == "breached"
    assert progress[-1].status == "pending"  # the next check, while the ticket is open
    # after an agent writes, the first-contact SLA of a new ticket would be met: the
    # breach stays recorded once, never repeated
    await asyncio.sleep(1)
    assert texts(double.sent_to(SUE)).count("no agent has written") == 1


@pytest.mark.staff(FIRST_CONTACT_SLA="3s", **FAST)
async def test_first_contact_in_time_is_met(double: BotApiDouble, customers: Any) -> None:
    anna = await complaint(double, customers)
    card = card_of(double, "Anna")
    assert card is not None
    await press(double, ADA, card, "Take")
    double.user_sends(
        ADA, "Hello Anna, on it.", chat_id=STAFF_CHAT, thread_id=card["message_thread_id"]
    )
    await double.wait_for(lambda: _rows(anna, "first_contact")[0].status == "done", 20)
    assert _rows(anna, "first_contact")[0].outcome == "met"
    assert "no agent has written" not in texts(double.sent_to(SUE))


@pytest.mark.unstarted
@pytest.mark.staff(**FAST)
async def test_survey_not_solved_reopens_and_a_low_score_alerts_with_the_transcript(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await _taken_and_closed(double, customers)
    await double.wait_for(lambda: "Is the problem solved" in texts(double.sent_to(601)), 20)
    question = last_to(double, 601, "Is the problem solved")
    assert [b["text"] for r in question["reply_markup"]["inline_keyboard"] for b in r] == [
        "Yes",
        "No",
    ]
    answer = await anna.tap("No")
    assert "What is still not right" in texts(answer)
    answer = await anna.say("the second charge is still on my statement")
    assert "reopened case" in texts(answer) and "from 1 (poor) to 5" in texts(answer)
    assert ticket_of(anna).status == "waiting"
    await double.wait_for(lambda: "not solved" in texts(double.sent_to(SUE)), 20, "alert")
    assert "still on my statement" in texts(double.sent_to(SUE))
    answer = await anna.tap("1 ★")
    assert "Anything you'd like to add" in texts(answer) or "do better" in texts(answer)
    await double.wait_for(lambda: "satisfaction score 1 of 5" in texts(double.sent_to(SUE)), 20)
    low = next(m for m in double.sent_to(SUE) if "satisfaction score 1" in m["text"])
    assert "Earlier tickets" in low["text"] and "I was charged twice" in low["text"]
    # Max never pressed Start: the low score mentions him in the staff group
    await double.wait_for(lambda: mentioned(double, UNSTARTED[0], "satisfaction score 1 of 5"), 20)
    answer = await anna.say("took too long")
    assert "Thank you" in texts(answer)
    survey = _rows(anna, "survey")[0]
    assert (survey.status, survey.outcome) == ("done", "answered")
    assert survey.data == {
        "solved": False,
        "why": "the second charge is still on my statement",
        "rating": 1,
        "comment": "took too long",
    }
    with anna.db.session() as session:
        conversation = session.get(Conversation, ticket_of(anna).conversation_id)
        assert conversation is not None and conversation.status == "handed_off"
    # the topic opened again for the agents
    thread = card_of(double, "Anna")["message_thread_id"]  # type: ignore[index]
    assert not double.topics[(STAFF_CHAT, thread)].get("closed")


@pytest.mark.staff(**FAST)
async def test_survey_solved_with_a_good_score(double: BotApiDouble, customers: Any) -> None:
    anna = await _taken_and_closed(double, customers)
    await double.wait_for(lambda: "Is the problem solved" in texts(double.sent_to(601)), 20)
    answer = await anna.tap("Yes")
    assert "Glad to hear it" in texts(answer) or "good news" in texts(answer)
    await anna.tap("5 ★")
    answer = await anna.tap("Skip")
    assert "Thank you" in texts(answer)
    survey = _rows(anna, "survey")[0]
    assert survey.data == {"solved": True, "rating": 5} and survey.outcome == "answered"
    assert "satisfaction score" not in texts(double.sent_to(SUE))
    with anna.db.session() as session:
        conversation = session.get(Conversation, ticket_of(anna).conversation_id)
        assert conversation is not None and conversation.status == "closed"
    back = await anna.say("hello")  # a new conversation, greeted as usual
    assert "Anna" in texts(back)


@pytest.mark.staff(HANDOFF_TICK="0.2s", SURVEY_DELAY="1s", NO_ANSWER_AFTER="2s")
async def test_no_answer_gets_one_reminder_then_stops(double: BotApiDouble, customers: Any) -> None:
    anna = await _taken_and_closed(double, customers)
    await double.wait_for(
        lambda: texts(double.sent_to(601)).count("Is the problem solved") >= 2, 20, "reminder"
    )
    await double.wait_for(lambda: _rows(anna, "survey")[0].status == "done", 20, "gives up")
    assert _rows(anna, "survey")[0].outcome == "no_answer"
    assert _rows(anna, "survey")[0].attempts == 2
    await asyncio.sleep(3)
    assert texts(double.sent_to(601)).count("Is the problem solved") == 2  # never a third


@pytest.mark.staff(**FAST)
async def test_a_customer_who_blocked_the_bot_is_not_retried(
    double: BotApiDouble, customers: Any
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    double.block(601)  # before the close: the survey is due 1 s after it
    double.user_sends(ADA, "/close Refunded $45.90.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: _rows(anna, "survey") != [], 20, "the survey scheduled")
    await double.wait_for(lambda: _rows(anna, "survey")[0].status == "done", 20, "blocked")
    survey = _rows(anna, "survey")[0]
    assert (survey.outcome, survey.attempts) == ("blocked", 1)


def _quiet_now(zone: str) -> str:
    local = datetime.now(ZoneInfo(zone))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.staff(QUIET_HOURS=_quiet_now("Asia/Shanghai"), TIMEZONE="Asia/Shanghai", **FAST)
async def test_quiet_hours_hold_the_survey_until_morning(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await _taken_and_closed(double, customers)
    await double.wait_for(  # the survey row may not be written yet when the wait starts
        lambda: any(
            row.due_at > datetime.now(UTC) + timedelta(minutes=30)
            for row in _rows(anna, "survey")[:1]
        ),
        20,
        "moved to the end of the quiet hours",
    )
    await asyncio.sleep(2)
    assert "Is the problem solved" not in texts(double.sent_to(601))
    assert _rows(anna, "survey")[0].status == "pending"


@pytest.mark.slow
@pytest.mark.staff(HANDOFF_TICK="0.2s", SURVEY_DELAY="8s")
async def test_a_restart_between_scheduling_and_firing_loses_and_repeats_nothing(
    double: BotApiDouble, customers: Any, bot: Any
) -> None:
    anna = await _taken_and_closed(double, customers)

    def jobs() -> set[str]:
        with anna.db.session() as session:
            rows = session.connection().execute(sa.text("SELECT id FROM apscheduler_jobs"))
            return {str(row[0]) for row in rows}

    def scheduled() -> bool:
        rows = _rows(anna, "survey")  # written by the close, maybe not yet
        return bool(rows) and f"fu:{rows[0].id}" in jobs()

    await double.wait_for(scheduled, 20, "the job")
    await bot.stop()
    await asyncio.sleep(9)  # due while the bot is down
    await bot.start(double)
    await double.wait_for(lambda: "Is the problem solved" in texts(double.sent_to(601)), 30)
    await bot.stop()
    await bot.start(double)  # a second restart: the job is not re-run
    await asyncio.sleep(3)
    assert texts(double.sent_to(601)).count("Is the problem solved") == 1
    assert _rows(anna, "survey")[0].attempts == 1


@pytest.mark.staff(HANDOFF_TICK="0.2s", SURVEY_DELAY="2s", NO_ANSWER_AFTER="1h")
async def test_a_follow_up_running_at_a_crash_is_taken_up_after_the_restart(
    double: BotApiDouble, customers: Any, bot: Any
) -> None:
    """The job store drops a one-off job as it starts it: one running at a kill -9 is
    scheduled again on the next start. Here the survey's request had left (Telegram has
    it), so the customer is not asked twice: the reminder is due as after any question."""
    anna = await _taken_and_closed(double, customers)
    double.slow(601, 30.0)  # the survey's request hangs: the job is running at the kill

    def asked() -> int:
        return sum(
            1
            for method, params in double.requests
            if method == "sendMessage" and "Is the problem solved" in str(params.get("text"))
        )

    await double.wait_for(lambda: asked() == 1, 20, "the survey on its way")
    bot.kill()
    double.slow(601, 0.0)
    killed_at = datetime.now(UTC)
    await bot.start(double)
    await double.wait_for(
        lambda: "may have reached the customer" in bot.log.read_text(), 30, "the job again"
    )
    assert "1 follow-up(s) were running when the bot stopped; due again" in bot.log.read_text()
    survey = _rows(anna, "survey")[0]
    assert (survey.status, survey.outcome, survey.attempts) == ("pending", "delivered", 1)
    assert survey.due_at > killed_at + timedelta(minutes=59)  # the reminder, in an hour
    assert asked() == 1


@pytest.mark.staff(PROMISE_REMINDER="1s", **FAST)
async def test_a_missed_promise_alerts_a_kept_one_does_not(
    double: BotApiDouble, customers: Any
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    double.user_sends(ADA, "/promise 2s call the courier", chat_id=STAFF_CHAT, thread_id=thread)
    double.user_sends(ADA, "/promise 4s send the refund ref", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: len(_rows(anna, "promise")) == 2, 20)
    await double.wait_for(lambda: "call the courier" in texts(double.sent_to(SUE)), 20, "missed")
    assert "past its due time" in texts(double.sent_to(SUE))
    double.user_sends(ADA, "/done", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "Promises kept by Ada" in texts(double.sent_to(STAFF_CHAT)), 20)
    await asyncio.sleep(3)
    assert "send the refund ref" not in texts(double.sent_to(SUE))
    assert [(r.note, r.outcome) for r in _rows(anna, "promise")] == [
        ("call the courier", "kept_late"),  # missed, alerted, then done: on record as late
        ("send the refund ref", "kept"),
    ]


@pytest.mark.staff(**FAST)
async def test_a_call_back_reminds_the_agent_and_the_customer_hears_who_calls(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await complaint(double, customers)
    ticket = ticket_of(anna)
    # a row written by another process (as a webhook worker would): picked up by sync
    with anna.db.session() as session:
        session.add(
            FollowUp(
                ticket_id=ticket.id,
                conversation_id=ticket.conversation_id,
                kind="callback",
                due_at=datetime.now(UTC) + timedelta(seconds=1),
                note="+86 138 0000 0000",
            )
        )
        session.commit()
    await double.wait_for(lambda: "Call-back due now" in texts(double.sent_to(ADA)), 20)
    reminder = last_to(double, ADA, "Call-back due now")
    assert "+86 138 0000 0000" in reminder["text"] and "Anna" in reminder["text"]
    in_topic = last_to(double, STAFF_CHAT, "Call-back due now")
    assert await press(double, ADA, in_topic, "I'm contacting them")
    await double.wait_for(lambda: "contacting you now" in texts(double.sent_to(601)), 20)
    callback = _rows(anna, "callback")[0]
    assert callback.data == {"taken_by": "Ada"} and callback.outcome == "answered"
    with anna.db.session() as session:
        row = session.get(Ticket, ticket.id)
        assert row is not None and (row.status, row.agent_id) == ("assigned", ADA)


@pytest.mark.staff(
    REPORTS="day,month", REPORT_TIME="07:30", TIMEZONE="Asia/Shanghai", RETENTION_DAYS="90", **FAST
)
async def test_reports_to_supervisors_are_scheduled_as_configured(
    double: BotApiDouble, customers: Any, bot: Any
) -> None:
    anna = customers(601, "Anna", "en")
    await anna.say("hello")  # the bot is up and its scheduler started

    def jobs() -> dict[str, float]:
        with anna.db.session() as session:
            rows = session.connection().execute(
                sa.text("SELECT id, next_run_time FROM apscheduler_jobs")
            )
            return {str(row[0]): float(row[1]) for row in rows}

    await double.wait_for(lambda: "report:day" in jobs(), 20, "report jobs")
    zone = ZoneInfo("Asia/Shanghai")
    day = datetime.fromtimestamp(jobs()["report:day"], zone)
    month = datetime.fromtimestamp(jobs()["report:month"], zone)
    now = datetime.now(zone)
    assert (day.hour, day.minute) == (7, 30) and now < day <= now + timedelta(days=1)
    assert (month.day, month.hour, month.minute) == (1, 7, 30) and now < month
    assert "report:week" not in jobs()
    nightly = datetime.fromtimestamp(jobs()["retention"], zone)  # RETENTION_DAYS
    assert (nightly.hour, nightly.minute) == (3, 30)


@pytest.mark.staff(AFTER_SERVICE_DELAY="2s", SURVEY_DELAY="1h", HANDOFF_TICK="0.2s")
async def test_after_a_repair_the_customer_is_asked_whether_it_works(
    double: BotApiDouble, customers: Any
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    with anna.db.session() as session:  # the customer had asked for a repair
        row = session.get(Ticket, ticket_of(anna).id)
        assert row is not None
        row.summary_data = {**row.summary_data, "desired_outcome": "repair"}
        session.add(row)
        session.commit()
    double.user_sends(ADA, "/close Repaired and sent back.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "working well" in texts(double.sent_to(601)), 20, "the check")
    assert [r.kind for r in _rows(anna, "survey")] == ["survey"]  # also a survey, later
    answer = await anna.tap("No")
    assert "reopened case" in texts(answer)
    assert ticket_of(anna).status == "waiting"
    await double.wait_for(lambda: "still not working" in texts(double.sent_to(SUE)), 20)
    check = _rows(anna, "after_service")[0]
    assert (check.outcome, check.data) == ("answered", {"working": False})


@pytest.mark.staff(
    QUIET_HOURS=_quiet_now("Asia/Shanghai"),
    TIMEZONE="Asia/Shanghai",
    PROGRESS_SLA="2s",
    FIRST_CONTACT_SLA="1h",
    HANDOFF_TICK="0.2s",
)
async def test_quiet_hours_hold_the_progress_update_too(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await complaint(double, customers)
    await double.wait_for(
        lambda: (
            _rows(anna, "progress_report")[0].due_at > datetime.now(UTC) + timedelta(minutes=30)
        ),
        20,
        "the progress check moved to the morning",
    )
    await asyncio.sleep(1)
    told = texts(double.sent_to(601))
    assert "A quick update" not in told and "Where things stand" not in told
    assert _rows(anna, "progress_report")[0].status == "pending"
