"""While the ticket waits for an agent the bot keeps talking; once an agent has it, it
is quiet. What the customer reads, and what reaches the staff group."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select

from bot.dialogue import Engine
from bot.store import FollowUp, StaffPost, Ticket
from tests.dialogue.conftest import Customer


async def _handed_off(customer: Customer, complaint: str, yes: str, correct: str) -> None:
    await customer.say(complaint)
    await customer.tap(yes)
    await customer.answer_questions()
    await customer.tap(correct)
    assert customer.status == "handed_off"


async def test_a_waiting_customer_gets_answers_in_english(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    await anna.say("how long will this take?")
    assert anna.keys == ["utter_waiting_place"]
    assert "number 1" in anna.text and "minutes" in anna.text
    await anna.say("how do I send you the video?")
    assert anna.keys == ["utter_waiting_send_media"]
    assert "📎" in anna.text
    await anna.say("is there anything else you need from me?")
    assert anna.keys == ["utter_waiting_anything_else"]
    await anna.say("also they charged the delivery fee twice")
    assert anna.keys == ["utter_handoff_waiting"]  # passed on, said once
    await anna.say("and the receipt shows the wrong address")
    assert anna.replies == []


async def test_a_waiting_customer_gets_answers_in_chinese(li: Customer) -> None:
    await _handed_off(li, "快递显示签收了但我根本没收到，订单号 30012288776", "对", "都对")
    await li.say("要多久啊？")
    assert li.keys == ["utter_waiting_place"]
    assert "第1位" in li.text
    await li.say("视频怎么发给你们")
    assert li.keys == ["utter_waiting_send_media"]


async def test_once_an_agent_has_it_the_bot_is_quiet(anna: Customer, engine: Engine) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    with engine.db.session() as session:
        ticket = session.exec(select(Ticket)).one()
        ticket.status = "assigned"
        session.add(ticket)
        session.commit()
    await anna.say("how long will this take?")
    assert anna.replies == []  # the agent answers


async def test_the_press_mentioned_while_waiting_raises_the_ticket(staffed: Engine) -> None:
    anna = Customer(staffed)
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    assert anna.ticket().priority == 0
    await anna.say("I've contacted a journalist at the local newspaper about this")
    assert anna.keys == ["utter_waiting_raised"]
    ticket = anna.ticket()
    assert (ticket.priority, ticket.supervisor_flag) == (1, True)
    with staffed.db.session() as session:
        events = [
            row.body
            for row in session.exec(select(StaffPost).order_by(col(StaffPost.id)))
            if row.kind == "event"
        ]
    assert [(e["key"], e["alert"]) for e in events] == [("staff.raised_while_waiting", True)]
    assert events[0]["values"]["signals"] in (
        "threatens media / regulator / lawsuit",
        "扬言找媒体/消协/监管/起诉",
    )


async def test_the_close_asks_whether_it_meets_their_hopes_then_thanks(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    assert anna.keys[-1] == "utter_meets_expectation"
    assert "2 hours" in anna.text and "about" in anna.text  # the promise, then the estimate
    await anna.tap("Yes, that's fine")
    assert anna.keys == ["utter_closing"]
    await anna.press("meets:no")  # a second press of the same keyboard is stale
    assert "utter_expectation_not_met" not in anna.keys


async def test_not_what_they_hoped_goes_to_the_agent(staffed: Engine) -> None:
    li = Customer(staffed, user_id=2002, name="李雷", lang="zh")
    await _handed_off(li, "快递显示签收了但我根本没收到，订单号 30012288776", "对", "都对")
    assert li.keys[-1] == "utter_meets_expectation"
    await li.tap("不太满意")
    assert li.keys == ["utter_expectation_not_met"]
    await li.say("我希望今天就给我补发，不想等")
    with staffed.db.session() as session:
        rows = session.exec(select(StaffPost).order_by(col(StaffPost.id))).all()
    shown = [(row.kind, row.body.get("key") or row.body.get("text")) for row in rows]
    assert shown == [
        ("event", "staff.expectation_not_met"),
        ("line", "我希望今天就给我补发，不想等"),
    ]


async def test_a_typed_yes_to_the_close_is_a_yes(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    assert anna.keys[-1] == "utter_meets_expectation"
    await anna.say("ok thanks")
    assert anna.keys == ["utter_closing"]  # not "I've added this to your case"
    await anna.say("no")  # the question was answered: a later "no" is no answer to it
    assert "utter_expectation_not_met" not in anna.keys


async def test_a_typed_no_that_says_what_they_want_is_not_asked_again(staffed: Engine) -> None:
    li = Customer(staffed, user_id=2002, name="李雷", lang="zh")
    await _handed_off(li, "快递显示签收了但我根本没收到，订单号 30012288776", "对", "都对")
    await li.say("不是，我想要直接退款")
    assert li.keys == ["utter_expectation_noted"]
    assert "写在这里" not in li.text  # what they want was said: not asked for again
    with staffed.db.session() as session:
        rows = session.exec(select(StaffPost).order_by(col(StaffPost.id))).all()
    shown = [(row.kind, row.body.get("key") or row.body.get("text")) for row in rows]
    assert shown == [("line", "不是，我想要直接退款"), ("event", "staff.expectation_not_met")]


async def test_a_bare_typed_no_to_the_close_asks_what_they_hoped_for(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    await anna.say("not really")
    assert anna.keys == ["utter_expectation_not_met"]


async def test_no_one_called_is_not_an_answer_to_the_close(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    await anna.say("no one has called me about the other order either")
    assert "utter_expectation_not_met" not in anna.keys
    assert "utter_closing" not in anna.keys


async def test_will_it_take_long_gets_the_place_in_the_queue(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    await anna.say("will it take long?")
    assert anna.keys == ["utter_waiting_place"]
    assert "number 1" in anna.text


async def test_a_short_fragment_while_waiting_raises_nothing(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    await anna.say("last week")
    assert "utter_waiting_raised" not in anna.keys
    assert anna.ticket().priority == 0


async def test_are_you_a_bot_while_waiting_gets_an_answer(anna: Customer) -> None:
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    await anna.say("ok")
    await anna.say("wait, are you a bot?")
    assert anna.keys == ["utter_waiting_bot"]
    assert "person" in anna.text or "colleague" in anna.text


async def test_a_ticket_is_raised_once_not_on_every_mention(staffed: Engine) -> None:
    anna = Customer(staffed)
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    await anna.say("I've contacted a journalist at the local newspaper about this")
    assert anna.keys == ["utter_waiting_raised"]
    await anna.say("and I'm posting the whole story on twitter tonight as well")
    assert "utter_waiting_raised" not in anna.keys
    with staffed.db.session() as session:
        alerts = [
            row.body["key"]
            for row in session.exec(select(StaffPost))
            if row.kind == "event" and row.body.get("alert")
        ]
    assert alerts == ["staff.raised_while_waiting"]


async def test_a_long_wait_is_offered_a_call_back_after_the_close(engine: Engine) -> None:
    """Two customers already wait (about 15 minutes each): the third would wait 45."""
    for index, text in enumerate(
        ["my parcel never came, order 55120934", "you charged me twice for order 66120934"]
    ):
        await _handed_off(Customer(engine, user_id=3000 + index), text, "Yes", "Yes, all")
    anna = Customer(engine)
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    assert "number 3" in anna.text
    await anna.tap("Yes, that's fine")
    assert anna.keys == ["utter_closing", "utter_offer_callback_long"]
    # 11:00 in Shanghai (NOW): from the first full hour at least half an hour away
    assert anna.buttons == [
        "Sun 22 Nov, 12:00–13:00",
        "Sun 22 Nov, 13:00–14:00",
        "Sun 22 Nov, 14:00–15:00",
        "I'll wait",
    ]
    await anna.tap("Sun 22 Nov, 13:00")
    assert anna.keys == ["utter_callback_booked"]
    with engine.db.session() as session:
        booked = session.exec(select(FollowUp).where(FollowUp.kind == "callback")).one()
    assert booked.due_at.replace(tzinfo=UTC) == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    await anna.say("how long now?")
    assert anna.keys == ["utter_waiting_place"]  # offered once per ticket


async def test_a_customer_who_would_rather_wait_keeps_the_place(engine: Engine) -> None:
    for index, text in enumerate(
        [
            "快递显示签收了但我没收到，订单号 30012288771",
            "物流显示已签收但我根本没拿到，订单号 30012288772",
        ]
    ):
        await _handed_off(Customer(engine, user_id=3100 + index, lang="zh"), text, "对", "都对")
    li = Customer(engine, user_id=2002, name="李雷", lang="zh")
    await _handed_off(li, "快递显示签收了但我根本没收到，订单号 30012288776", "对", "都对")
    await li.tap("不太满意")
    assert li.keys == ["utter_expectation_not_met", "utter_offer_callback_long"]
    await li.tap("我继续等")
    assert li.keys == ["utter_callback_declined_waiting"]
    assert "排位不变" in li.text or "继续排队" in li.text


async def test_a_place_that_moves_back_is_explained(engine: Engine) -> None:
    anna = Customer(engine)
    await _handed_off(anna, "I was charged twice for order SO20241105123", "Yes", "Yes, all")
    assert "number 1" in anna.text
    urgent = Customer(engine, user_id=3200, name="Tom")
    await urgent.say("the kettle I bought from you caught fire and burned my hand")
    if urgent.keys[-1] == "utter_ask_safe_now":
        await urgent.tap("Someone is hurt")
    await urgent.tap("Yes")
    await urgent.answer_questions()
    await urgent.tap("Yes, all")
    assert urgent.ticket().priority == 2
    await anna.say("how long will this take?")
    assert anna.keys == ["utter_waiting_moved_back"]
    assert "from number 1 to number 2" in anna.text and "urgent" in anna.text
    await anna.say("and how long now?")
    assert anna.keys == ["utter_waiting_place"]  # explained once, while it stays


async def _asked_a_question(customer: Customer, question: str) -> None:
    await customer.say(question)
    assert "utter_faq_no_match" in customer.keys  # passed to a person: a ticket waits
    assert customer.status == "handed_off"


async def test_something_unsafe_said_while_a_question_waits_goes_to_the_front(
    staffed: Engine,
) -> None:
    anna = Customer(staffed)
    await _asked_a_question(anna, "do you have the corner sofa in dark green?")
    assert anna.ticket().priority == 0
    await anna.say(
        "also the heater I bought from you last week caught fire last night and burned my hand"
    )
    assert anna.keys == ["utter_safety_while_waiting"]  # not "added to your case"
    assert "medical help" in anna.text and "stop using" in anna.text
    ticket = anna.ticket()
    assert (ticket.priority, ticket.supervisor_flag) == (2, True)
    with staffed.db.session() as session:
        rows = session.exec(select(StaffPost).order_by(col(StaffPost.id))).all()
    events = [row.body for row in rows if row.kind == "event"]
    assert [(e["key"], e["alert"]) for e in events] == [("staff.raised_while_waiting", True)]
    assert events[0]["values"]["signals"] in (  # in the desk's language
        "reports a safety problem (fire, injury, health)",
        "反映安全问题（起火、受伤、健康）",
    )
    assert any("caught fire" in (row.body or {}).get("text", "") for row in rows)  # the words too
    await anna.say(
        "the heater is a BrandX 2000, it smelled of burning plastic before it caught fire"
    )
    assert anna.keys in (["utter_safety_while_waiting_again"], ["utter_handoff_waiting"], [])
    with staffed.db.session() as session:
        alerts = [
            row
            for row in session.exec(select(StaffPost))
            if row.kind == "event" and (row.body or {}).get("alert")
        ]
    assert len(alerts) == 1  # the supervisor is told once


async def test_something_unsafe_said_in_chinese_while_a_question_waits(staffed: Engine) -> None:
    li = Customer(staffed, user_id=2002, name="李雷", lang="zh")
    await _asked_a_question(li, "你们的沙发有墨绿色的吗？")
    await li.say("另外上周在你们这买的取暖器昨晚起火了，把我手烫伤了")
    assert li.keys == ["utter_safety_while_waiting"]
    assert "就医" in li.text and "紧急" in li.text
    assert (li.ticket().priority, li.ticket().supervisor_flag) == (2, True)


async def test_more_about_a_hazard_already_reported_is_not_raised_again(staffed: Engine) -> None:
    anna = Customer(staffed)
    await anna.say("the heater you sold me sparked and there was smoke everywhere")
    await anna.tap("Yes, everyone is safe")
    await anna.tap("Yes")
    await anna.answer_questions()
    await anna.tap("Yes, all")
    assert anna.status == "handed_off"
    before = anna.ticket().priority
    await anna.say("it also left a burn mark on the carpet and smelled of burning plastic")
    assert "utter_safety_while_waiting" not in anna.keys  # told once, at the start
    assert anna.ticket().priority == before
