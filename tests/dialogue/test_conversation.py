"""The five steps as a customer lives them: what the bot says, asks, and stores."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.dialogue import Engine
from bot.nlu.model import TriageModel
from bot.store import Complaint, Conversation, FollowUp, Message, Ticket
from handoff import tickets
from tests.dialogue.conftest import NOW, Customer, make_engine


async def test_greets_by_name_and_offers_help(anna: Customer) -> None:
    await anna.say("hi")
    assert anna.keys == ["utter_greet"]
    assert "Anna" in anna.text


async def test_empathy_and_restatement_come_before_any_fact_question(anna: Customer) -> None:
    await anna.say("my parcel hasn't arrived yet, it was supposed to come on Monday")
    assert anna.keys[0] == "utter_greet_brief"
    assert anna.keys[1].startswith("utter_empathy_")
    assert anna.keys[-1] == "utter_restate_delivery"
    assert anna.buttons == ["Yes, that's right", "Not quite"]
    assert not any(key.startswith("utter_ask_") for key in anna.keys)


async def test_an_agitated_customer_gets_a_strong_acknowledgement_and_an_open_question(
    anna: Customer,
) -> None:
    await anna.say("THIS IS RIDICULOUS!!! my parcel is TWO WEEKS late and nobody tells me anything")
    assert "utter_empathy_strong_delivery" in anna.keys
    # it names what happened: a parcel that did not come (either variation)
    assert "all that waiting" in anna.text.lower() or "counting on it" in anna.text.lower()
    assert anna.keys[-1] == "utter_ask_tell_more"
    assert anna.buttons == []  # an open question: no buttons
    await anna.say("I ordered a birthday present and now the birthday is over, I'm fed up")
    assert anna.keys == ["utter_restate_delivery"]


async def test_a_not_quite_is_followed_by_an_open_question(anna: Customer) -> None:
    await anna.say("the screen of my new laptop flickers all the time")
    await anna.tap("Not quite")
    assert anna.keys == ["utter_misunderstood_open"]
    assert anna.buttons == []
    await anna.say("actually the problem is the repair shop kept it 3 weeks and it's still broken")
    assert anna.keys == ["utter_restate_after_sales"]


async def test_facts_already_given_are_never_asked(anna: Customer) -> None:
    await anna.say(
        "I was charged twice for order SO20241105123, $45.90 each time. I want a refund please"
    )
    await anna.tap("Yes")
    asked = [key for key in anna.all_keys if key.startswith("utter_ask_")]
    assert asked == []  # order, what happened, amount and the outcome were all in the message
    assert "utter_summary" in anna.keys
    assert "SO20241105123" in anna.text
    assert "Amount: $45.90" in anna.text  # with the currency they wrote
    assert "Charged twice" in anna.text or "charged twice" in anna.text.lower()
    await anna.tap("Yes, all correct")
    assert anna.status == "handed_off"
    ticket = anna.ticket()
    assert ticket.summary_data["facts"]["order_id"] == "SO20241105123"
    assert ticket.summary_data["facts"]["billing_issue"] == "charged_twice"
    assert ticket.summary_data["desired_outcome"] == "refund"
    assert ticket.summary_data["customer_words"].startswith("I was charged twice")


@pytest.mark.parametrize(
    ("lang", "text", "shown"),
    [
        ("en", "I was charged £12.99 twice for order SO20241105123, I want my money back",
         "Amount: £12.99"),
        ("zh", "同一笔订单扣了我两次299元，订单号 JD778812340，我要退款", "金额：¥299"),
    ],
)  # fmt: skip
async def test_a_sum_reads_back_in_its_currency_and_twice_is_not_asked(
    engine: Engine, lang: str, text: str, shown: str
) -> None:
    """ "£12.99" read back as "12.99" lost what the customer said; "charged £12.99
    twice" was asked "which payment problem?" as if they had not said."""
    customer = Customer(engine, name="Kim", lang=lang)
    await customer.say(text)
    await customer.tap(customer.buttons[0])
    assert [key for key in customer.all_keys if key.startswith("utter_ask_")] == []
    assert shown in customer.text
    await customer.tap(customer.buttons[0])
    assert customer.ticket().summary_data["amount_currency"] == ("GBP" if lang == "en" else "CNY")


async def test_closed_questions_one_at_a_time_then_summary_and_handoff(
    anna: Customer, engine: Engine
) -> None:
    await anna.say("the headphones I bought are faulty, the left side has no sound")
    await anna.tap("Yes")
    assert anna.keys[-1] == "utter_ask_outcome"
    assert anna.buttons[:3] == ["Refund", "Replacement", "Repair"]
    await anna.tap("Replacement")
    assert anna.keys[0] == "utter_expectation_fix"
    assert anna.keys[-1] == "utter_ask_purchase_date"  # product and defect were in the message
    assert anna.buttons[-1].startswith("Other")
    await anna.tap("Within 7 days")
    assert anna.keys == ["utter_ask_order_id"]
    await anna.say("SO20241105123")
    assert anna.keys == ["utter_summary", "utter_summary_confirm"]
    await anna.tap("Yes, all correct")
    assert anna.keys == [
        "utter_policy_return_or_exchange",
        "utter_next_steps",
        "utter_queue_place",
        "utter_meets_expectation",
    ]
    assert anna.buttons == ["Yes, that's fine", "Not really"]
    assert "number 1 in the queue" in anna.text
    assert "#" in anna.text and "2 hours" in anna.text
    assert anna.status == "handed_off"

    with engine.db.session() as session:
        ticket = session.exec(select(Ticket)).one()
        complaint = session.exec(select(Complaint)).one()
        follow_ups = session.exec(select(FollowUp).order_by(FollowUp.due_at)).all()
        messages = session.exec(select(Message)).all()
    assert (ticket.kind, ticket.status, ticket.priority) == ("complaint", "waiting", 0)
    assert "Within 7 days" in ticket.summary
    assert complaint.complaint_type == "product_quality"
    assert (complaint.motive, complaint.desired_outcome) == ("fix", "replacement")
    assert complaint.facts == {
        "product": "headphones",
        "purchase_date": "within_7_days",
        "defect": "not_working",
        "order_id": "SO20241105123",
    }
    assert [(f.kind, f.due_at) for f in follow_ups] == [
        ("first_contact", NOW + timedelta(hours=2)),
        ("progress_report", NOW + timedelta(days=3)),
    ]
    assert [m.direction for m in messages].count("in") == 6
    assert all(m.created_at.tzinfo is not None for m in messages)


@pytest.mark.parametrize(
    "answer",
    ["Order no. 71230045.", "order 88231907", "it's #55120934", "ORD-2024-118822"],
)
async def test_an_order_number_typed_as_customers_type_it_is_taken(
    anna: Customer, answer: str
) -> None:
    """Asked for the order number, the customer types it with a label, a '#', dashes or a
    full stop: each is taken as typed (without the label or the '#'), not asked again."""
    await anna.say("my parcel never arrived, it says delivered but nothing at my door")
    await anna.agree("Refund")
    assert anna.keys[-1] == "utter_ask_order_id"
    await anna.say(answer)
    assert "utter_invalid_order_id" not in anna.keys
    await anna.answer_questions()
    assert anna.keys[-1] == "utter_summary_confirm"
    await anna.press(anna.replies[-1].buttons[0].payload)  # yes, all correct
    expected = answer.rstrip(".").split()[-1].lstrip("#")
    assert anna.ticket().summary_data["facts"]["order_id"] == expected


async def test_a_chinese_order_number_after_its_label_is_taken(li: Customer) -> None:
    await li.say("快递显示签收了但我根本没收到")
    await li.agree("退款")
    assert li.keys[-1] == "utter_ask_order_id"
    await li.say("订单号 30012288776")
    assert "utter_invalid_order_id" not in li.keys
    await li.answer_questions()
    assert li.keys[-1] == "utter_summary_confirm"
    await li.press(li.replies[-1].buttons[0].payload)  # 对，都正确
    assert li.ticket().summary_data["facts"]["order_id"] == "30012288776"


async def test_a_date_in_the_future_is_refused(li: Customer) -> None:
    await li.say("客服态度太差了，电话里直接挂我电话")
    await li.agree("道歉")
    while li.keys[-1] != "utter_ask_incident_date":
        await li.press(li.replies[-1].buttons[0].payload)
    await li.say("12月20号")
    assert li.keys == ["utter_invalid_date_future"]
    await li.say("昨天")
    assert li.keys[-1] == "utter_summary_confirm"
    assert "最近一周" in li.text or "今天" in li.text


async def test_no_order_number_gets_an_open_follow_up_and_the_answer_is_kept(
    anna: Customer,
) -> None:
    await anna.say("I got the wrong item, ordered a black jacket and got a pink one")
    await anna.agree("Replacement")
    while anna.keys[-1] != "utter_ask_order_id":
        await anna.press(anna.replies[-1].buttons[0].payload)
    await anna.tap("I don't have it")
    assert anna.keys == ["utter_ask_order_id_open"]
    await anna.say("bought it on the app around the 10th, my email is anna@example.com")
    await anna.answer_questions()
    # read back under what it is for, not as a second "Order number"
    assert "To find the order: bought it on the app" in anna.text
    assert "Order number: bought" not in anna.text
    await anna.tap("Yes, all correct")
    complaint_facts = anna.ticket().summary_data
    assert complaint_facts["facts"]["order_id"] == "no_order_id"
    assert complaint_facts["notes"]["order_id"].startswith("bought it on the app")


async def test_request_human_hands_off_at_once_with_what_is_known(anna: Customer) -> None:
    await anna.say("my order SO20241105123 is two weeks late")
    await anna.say("I want to talk to a real person")
    assert anna.keys[0] == "utter_handoff_request_human"
    assert anna.status == "handed_off"
    ticket = anna.ticket()
    assert ticket.kind == "request_human"
    assert ticket.summary_data["facts"]["order_id"] == "SO20241105123"
    await anna.say("hello?")  # still there? yes: where they are in the queue
    assert anna.keys == ["utter_waiting_place"]
    await anna.say("my neighbour might have taken it in")
    assert anna.keys == ["utter_handoff_waiting"]
    await anna.say("ok thanks, I'll wait")
    assert anna.keys == ["utter_thank_reply_waiting"]  # not "added to your case"
    await anna.say("thanks")
    assert anna.replies == []  # said once; the agent answers from here
    await anna.say("anyone there?")
    assert anna.keys == ["utter_waiting_place"]  # a question the bot can answer


async def test_cancel_ends_politely(anna: Customer, engine: Engine) -> None:
    await anna.say("the app keeps crashing when I pay")
    await anna.say("/cancel")
    assert anna.keys == ["utter_cancel"]
    assert anna.status == "closed"
    await anna.say("hi")
    assert anna.keys == ["utter_greet_returning"]  # a new conversation


async def test_abuse_three_strikes_then_a_supervisor(anna: Customer) -> None:
    await anna.say("you idiots lost my parcel")
    assert anna.keys[:2] == ["utter_greet_brief", "utter_abuse_strike_1"]
    assert anna.keys[2].startswith("utter_empathy_")  # still helped with the complaint
    await anna.say("you useless morons, do your job")
    assert anna.keys[0] == "utter_abuse_strike_2"
    await anna.say("f*** you, stupid bot")
    assert anna.keys[0] == "utter_abuse_strike_3"
    assert anna.status == "handed_off"
    ticket = anna.ticket()
    assert (ticket.kind, ticket.priority, ticket.supervisor_flag) == ("abuse", 2, True)


async def test_a_threat_of_harm_goes_straight_to_a_supervisor(li: Customer) -> None:
    await li.say("再不给我解决我就去你们店里捅人")
    assert li.keys[0] == "utter_threat_supervisor"
    ticket = li.ticket()
    assert (ticket.kind, ticket.priority, ticket.supervisor_flag) == ("threat", 2, True)


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "three weeks without my refund, i'm done with life honestly"),
        ("zh", "退款一直不到账，我真的不想活了"),
        # no self-harm key phrase: the model raises the threat, words of despair say whose
        ("en", "this refund was the last of my savings, i can't go on anymore. goodbye"),
        ("zh", "钱都被你们骗光了，我真的撑不下去了，再见了"),
    ],
)
async def test_words_of_self_harm_are_met_with_care_and_a_supervisor(
    engine: Engine, lang: str, text: str
) -> None:
    """Not "keep it respectful", not a threat to others: the customer hears that they
    matter and where to get help now, and a supervisor is asked to contact them."""
    customer = Customer(engine, name="Sam", lang=lang)
    await customer.say(text)
    assert customer.keys[0] == "utter_self_harm_supervisor"
    assert "respectful" not in customer.text and "threat" not in customer.text
    assert ("120" in customer.text) and ("110" in customer.text)
    assert customer.status == "handed_off"
    ticket = customer.ticket()
    assert (ticket.kind, ticket.priority, ticket.supervisor_flag) == ("self_harm", 2, True)


async def test_a_major_complaint_is_flagged_and_asks_only_the_essentials(li: Customer) -> None:
    await li.say("这已经是我第三次投诉了！买的冰箱不制冷，再不处理我就去12315投诉，还要找媒体曝光")
    assert "utter_empathy_major" in li.keys
    await li.agree("退款")
    asked = await li.answer_questions({"utter_ask_order_id": "JD-778812340"})
    assert "utter_ask_defect" not in asked  # not essential
    await li.tap("都对")
    assert "utter_next_steps_major" in li.keys
    ticket = li.ticket()
    assert ticket.priority == 1 and ticket.supervisor_flag
    assert set(ticket.summary_data["major_reasons"]) == {"major_media", "repeat_contact"}


def _resolve(engine: Engine, customer: Customer, when: datetime) -> int:
    """What an agent's /close does to the customer's ticket and conversation."""
    with engine.db.session() as session:
        ticket = session.exec(
            select(Ticket).where(Ticket.conversation_id == customer.conversation_id)
        ).one()
        tickets.resolve(session, ticket_id=ticket.id or 0, resolution="sent again", now=when)
        conversation = session.get(Conversation, customer.conversation_id)
        assert conversation is not None
        conversation.status, conversation.stage = "closed", "closed"
        session.add(conversation)
        session.commit()
        return ticket.id or 0


@pytest.mark.parametrize(
    ("lang", "first", "again", "other"),
    [
        (
            "en",
            "my parcel never arrived, order SO20241105123",
            "the parcel I wrote to you about still hasn't come",
            "my parcel never arrived, order SO20241199999",
        ),
        (
            "zh",
            "快递一直没到，订单号 JD778812340",
            "上次跟你们说的那个快递，到现在还是没收到",
            "快递一直没到，订单号 JD778899999",
        ),
    ],
)
async def test_coming_back_about_the_same_problem_is_known_and_made_major(
    settings: Settings, model: TriageModel, lang: str, first: str, again: str, other: str
) -> None:
    """Domain §4: came back without a fix. Two weeks after the agent closed the case
    (past the 7 days that reopen it), the same order again: the bot says it knows
    (the old case number), does not ask again for the order number it was told then,
    the new ticket is high priority with a supervisor, and the card says why. Another
    order number is another problem."""
    day = [NOW]
    engine = make_engine(settings, model, clock=lambda: day[0])
    sam = Customer(engine, user_id=3010, name="Sam", lang=lang)
    try:
        await sam.say(first)
        await sam.tap(sam.buttons[0])
        await sam.answer_questions()
        await sam.tap(sam.buttons[0])  # the read-back is right
        assert sam.status == "handed_off"
        old = _resolve(engine, sam, NOW + timedelta(days=1))
        day[0] = NOW + timedelta(days=14)
        await sam.say(again)
        assert "utter_empathy_came_back" in sam.keys
        assert f"#{old}" in sam.text
        assert "utter_empathy_major" not in sam.keys
        await sam.tap(sam.buttons[0])
        asked = await sam.answer_questions()
        assert "utter_ask_order_id" not in asked
        order = first.split()[-1]
        assert "utter_summary" in sam.keys and order in sam.text  # shown, to check
        await sam.tap(sam.buttons[0])
        ticket = sam.ticket()
        assert ticket.summary_data["facts"]["order_id"] == order
        assert ticket.id != old
        assert (ticket.priority, ticket.supervisor_flag) == (1, True)
        assert "came_back" in ticket.summary_data["major_reasons"]

        _resolve(engine, sam, day[0] + timedelta(days=1))
        day[0] += timedelta(days=10)
        await sam.say(other)
        assert "utter_empathy_came_back" not in sam.keys
        assert not any(key.startswith("utter_empathy_major") for key in sam.keys)
    finally:
        await engine.close()
        engine.db.dispose()


async def test_habitual_is_recorded_from_history_and_never_said(
    settings: Settings, model: TriageModel
) -> None:
    engine = make_engine(settings, model)
    tom = Customer(engine, user_id=3003, name="Tom")
    try:
        for day in range(3):
            engine.clock = lambda day=day: NOW + timedelta(days=10 * day)  # type: ignore[misc]
            await tom.say("my parcel is late again, order SO20241105123")
            await tom.say("/cancel")
        with engine.db.session() as session:
            flags = [c.habitual for c in session.exec(select(Complaint).order_by(Complaint.id))]
            said = " ".join(m.text for m in session.exec(select(Message)))
        assert flags == [False, False, True]
        assert "habitual" not in said.lower() and "习惯" not in said
    finally:
        await engine.close()
        engine.db.dispose()


async def test_questions_are_answered_from_the_faq(anna: Customer, li: Customer) -> None:
    await anna.say("how long does a refund take?")
    assert anna.keys[-2].startswith("faq:refund_time")
    await li.say("你们周六上班吗")
    assert li.keys[-2] == "faq:opening_hours"


async def test_an_unknown_question_is_handed_to_a_person(anna: Customer) -> None:
    await anna.say("do you sell gift wrapping for corporate orders over 500 units?")
    assert "utter_faq_no_match" in anna.keys
    assert anna.ticket().kind == "inquiry"


async def test_praise_is_thanked(li: Customer) -> None:
    await li.say("你们的客服小王服务太好了，点赞")
    assert "utter_praise_thanks" in li.keys


async def test_gibberish_gets_a_menu_not_a_guess(anna: Customer) -> None:
    await anna.say("🙂🙂🙂")
    assert anna.keys[-1] == "utter_not_understood"
    assert anna.buttons == ["Make a complaint", "Ask a question", "Talk to a person"]
    await anna.tap("Make a complaint")
    assert anna.keys == ["utter_ask_tell_more"]
    await anna.say("the blender I bought is leaking")
    assert anna.keys[0].startswith("utter_empathy_")


async def test_the_summary_can_be_corrected(anna: Customer) -> None:
    await anna.say("I was charged twice for order SO20241105123, $45.90 each time, refund please")
    await anna.tap("Yes")
    await anna.tap("Change something")
    assert anna.keys == ["utter_ask_which_change"]
    assert "Order number" in anna.buttons
    await anna.tap("Order number")
    assert anna.keys == ["utter_ask_order_id"]
    await anna.say("SO20241105999")
    assert anna.keys[-1] == "utter_summary_confirm"
    assert "Order number: SO20241105999" in anna.text
    assert "Order number: SO20241105123" not in anna.text


async def test_a_restart_continues_the_conversation(settings: Settings, model: TriageModel) -> None:
    first = make_engine(settings, model)
    await Customer(first).say("my parcel never arrived")
    await first.close()
    first.db.dispose()

    second = make_engine(settings, model)
    try:
        anna = Customer(second)
        await anna.say("yes")
        assert anna.keys[0].startswith("utter_expectation_") or anna.keys == ["utter_ask_outcome"]
        with second.db.session() as session:
            assert len(session.exec(select(Conversation)).all()) == 1
    finally:
        await second.close()
        second.db.dispose()


async def test_a_returning_customer_reads_a_different_greeting(anna: Customer) -> None:
    greetings = []
    for _ in range(3):
        await anna.say("hello")
        greetings.append(anna.text)
        await anna.say("/cancel")
    assert len(set(greetings)) == 3


async def test_bad_input_never_crashes(anna: Customer) -> None:
    for text in ["", "   ", "x" * 10_000, "\x00\x07", "<b>hi</b>", "Привет", "/unknown"]:
        await anna.say(text)
        assert anna.replies, f"no answer to {text[:20]!r}"
    await anna.tap("Make a complaint")
    await anna.press("menu:complain")  # a stale button: it has expired; the open question again
    assert anna.keys == ["utter_choice_expired", "utter_ask_tell_more"]


async def test_hello_again_is_a_greeting_not_a_repeat_complaint(anna: Customer) -> None:
    """'again' alone lights the repeat_contact model; without a complaint it is a greeting."""
    await anna.say("hello again")
    assert anna.keys == ["utter_greet"]
