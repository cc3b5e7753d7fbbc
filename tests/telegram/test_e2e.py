"""The bot in Telegram, end to end: a real `python -m bot run` process, the Bot API double."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot.dialogue.responses import Responses
from bot.store import Evidence, Message, Ticket
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import BotProcess, texts


def said(key: str, language: str, messages: list[dict]) -> bool:
    """Whether one of the messages is (or starts with) a variation of the response."""
    patterns = [
        re.compile(re.sub(r"\\\{\w+\\\}", ".*?", re.escape(v)), re.DOTALL)
        for v in Responses().variations(key, language)
    ]
    return any(p.match(m.get("text", "")) for m in messages for p in patterns)


@pytest.mark.exec  # one conversation through a new interpreter, as an operator starts it
async def test_a_complaint_through_buttons_and_free_text(double: BotApiDouble, customers) -> None:
    anna = customers(501, "Anna", "en")
    first = await anna.say(
        "my headphones from order SO20241105123 stopped working, no sound at all"
    )
    assert "Anna" in first[0]["text"]
    assert anna.keyboard == ["Yes, that's right", "Not quite"]
    await anna.tap("Yes")
    # the pressed keyboard is gone: its message shows the choice, then the next question
    # with that question's buttons (one edit, no new message)
    confirm = [m for m in double.sent_to(501) if "✓ Yes, that's right" in m["text"]]
    assert confirm and confirm[0]["reply_markup"]["inline_keyboard"] != [
        [{"text": "Yes, that's right", "callback_data": "confirm:yes"}],
        [{"text": "Not quite", "callback_data": "confirm:no"}],
    ]
    assert len(double.sent_to(501)) == 1
    if "Refund" in anna.keyboard:
        await anna.tap("Replacement")
    while "Within 7 days" in anna.keyboard or anna.keyboard[:1] == ["Doesn't work at all"]:
        await anna.tap(anna.keyboard[0])
    assert anna.keyboard == ["Yes, all correct", "Change something"]
    assert "SO20241105123" in texts(double.sent_to(501))
    closing = await anna.tap("Yes, all correct")
    assert "2 hours" in texts(closing)
    assert all(query["answered"] for query in double.callbacks.values())
    with anna.db.session() as session:
        ticket = session.exec(select(Ticket)).one()
    assert ticket.summary_data["facts"]["order_id"] == "SO20241105123"
    assert set(double.commands) == {"en", "zh", ""}


async def test_photo_evidence_edit_and_markup_in_customer_text(
    double: BotApiDouble, customers
) -> None:
    li = customers(502, "李雷", "zh")
    await li.say("买的<b>电饭煲</b>盖子裂了 & 漏气，订单JD-778812340")
    assert "<b>" not in double.sent_to(502)[0]["raw_text"]  # escaped, not markup
    photo = await li.say(
        **{"photo": [{"file_id": "p1", "file_unique_id": "up1", "width": 90, "height": 90}]}
    )
    assert "附" in texts(photo) or "收到" in texts(photo)
    sent = double.user_sends(502, "补充一下：是上周买的")
    await li._settle(li._counts()[0])
    double.user_edits(502, sent["message_id"], "补充一下：是上周三买的")
    await double.wait_for(lambda: _edited(li, sent["message_id"]), 20, "the edit to be stored")
    with li.db.session() as session:
        evidence = session.exec(select(Evidence)).one()
    assert evidence.file_id == "p1" and evidence.kind == "photo"
    await li.tap("对")
    if "换货" in li.keyboard:
        await li.tap("换货")
    while li.keyboard and li.keyboard[0] != "都对":
        await li.tap(li.keyboard[0])
    read_back = double.sent_to(502)[-1]
    # The customer's words are shown as they typed them: escaped on the wire, not markup.
    assert "<b>电饭煲</b>盖子裂了 & 漏气" in read_back["text"]
    assert "&lt;b&gt;电饭煲&lt;/b&gt;盖子裂了 &amp; 漏气" in read_back["raw_text"]
    closing = await li.tap("都对")
    assert "2小时" in texts(closing)
    with li.db.session() as session:
        ticket = session.exec(select(Ticket)).one()
    assert ticket.summary_data["facts"]["order_id"] == "JD-778812340"


def _edited(customer, message_id: int) -> bool:
    with customer.db.session() as session:
        row = session.exec(select(Message).where(Message.external_id == message_id)).first()
        return row is not None and row.text.endswith("上周三买的") and row.original_text is not None


async def test_a_stale_or_forged_button_gets_expired_and_the_current_question(
    double: BotApiDouble, customers
) -> None:
    tom = customers(503, "Tom", "en")
    await tom.say("I was charged twice for my order, please refund")
    old = next(m for m in double.sent_to(503) if m.get("reply_markup"))
    await tom.tap("Yes")
    again = await tom.press(old["message_id"], "confirm:yes")
    assert said("utter_choice_expired", "en", again)
    forged = await tom.press(old["message_id"], "summary:yes")
    assert said("utter_choice_expired", "en", forged)
    assert tom.keyboard  # the current question is on screen again


async def test_long_text_and_commands(double: BotApiDouble, customers) -> None:
    sam = customers(504, "Sam", "en")
    replies = await sam.say("The blender I bought leaks everywhere. " * 130)  # ~5,000 characters
    assert replies and all(len(m["text"]) <= 4096 for m in replies)
    privacy = await sam.say("/privacy")
    assert "keep" in texts(privacy).lower() or "store" in texts(privacy).lower()
    switched = await sam.say("/lang")
    assert "中文" in texts(switched)


async def test_a_restart_in_the_middle_continues(
    double: BotApiDouble, bot: BotProcess, customers
) -> None:
    kim = customers(505, "Kim", "en")
    await kim.say("my parcel never arrived, order SO20241105123")
    await bot.stop()
    await bot.start(double)
    replies = await kim.tap("Yes")
    assert replies and not said("utter_choice_expired", "en", replies)


async def test_a_redelivered_update_is_handled_once(double: BotApiDouble, customers) -> None:
    eve = customers(506, "Eve", "en")
    await eve.say("hello")
    count = len(double.sent_to(506))
    update_id = double.messages[(506, 1)]["update_id"]
    double.redeliver(update_id)
    await eve.say("thanks")
    greetings = [m for m in double.sent_to(506)[: count + 2] if "Eve" in m["text"]]
    assert len(greetings) == 1


async def test_group_messages_are_pointed_to_a_private_chat(
    double: BotApiDouble, customers
) -> None:
    customers(507, "Zoe", "en")
    customers(517, "Lin", "zh")
    double.add_group(-100500, "Fans", forum=False)
    double.user_sends(507, "/start", chat_id=-100500)
    replies = await double.wait_for_replies(-100500, 1)
    assert replies[0]["reply_markup"]["inline_keyboard"][0][0]["url"].startswith("https://t.me/")
    assert said("utter_group_private", "en", replies[:1])  # in her Telegram's language
    double.user_sends(517, "/start", chat_id=-100500)
    replies = await double.wait_for_replies(-100500, 2)
    assert said("utter_group_private", "zh", replies[1:])


@pytest.mark.slow
@pytest.mark.flood(per_chat_rate=5.0, per_chat_burst=3.0)
async def test_a_burst_of_50_messages_is_answered_in_order(double: BotApiDouble, customers) -> None:
    ben = customers(508, "Ben", "en")
    lines = [f"and another thing, number {i}: the parcel is still not here" for i in range(50)]
    sent_ids = [double.user_sends(508, line)["message_id"] for line in lines]
    await ben._settle(0, expected=50, timeout=180)
    with ben.db.session() as session:
        stored = session.exec(
            select(Message).where(Message.direction == "in").order_by(Message.id)
        ).all()
        undelivered = session.exec(select(Message).where(Message.delivered == False)).all()  # noqa: E712
    assert [row.external_id for row in stored] == sent_ids  # handled in the order sent
    assert undelivered == []
    assert len(double.sent_to(508)) >= 50
    # The bot keeps to about one message a second per chat itself: Telegram never had to
    # refuse one (a 429 being waited out: tests/telegram/test_outbox.py)
    assert [code for _, code, _ in double.errors if code == 429] == []


async def test_deep_link_voice_sticker_and_contact(double: BotApiDouble, customers) -> None:
    mia = customers(509, "Mia", "zh")
    await mia.say("/start SO20241105123")
    assert said("utter_greet", "zh", double.sent_to(509))
    voice = await mia.say(voice={"file_id": "v1", "file_unique_id": "uv1", "duration": 3})
    assert said("utter_media_voice", "zh", voice)
    sticker = await mia.say(
        sticker={
            "file_id": "s1",
            "file_unique_id": "us1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
    )
    assert said("utter_media_sticker", "zh", sticker)
    contact = await mia.say(contact={"phone_number": "+8613800138000", "first_name": "Mia"})
    assert said("utter_contact_received", "zh", contact)
    await mia.say("快递丢了，一直没收到")
    await mia.tap("对")
    if "退款" in mia.keyboard:
        await mia.tap("退款")
    asked = "\n".join(m["text"] for m in double.sent_to(509))
    assert "订单号" not in asked.split("对，没错")[-1]  # the deep link's order number is known
    with mia.db.session() as session:
        from bot.store import Customer

        customer = session.exec(select(Customer).where(Customer.telegram_id == 509)).one()
    assert customer.phone == "+8613800138000"


async def test_a_customer_who_blocked_the_bot_loses_nothing(
    double: BotApiDouble, customers
) -> None:
    """Sending fails for good (403): the reply is kept, marked undelivered; the bot goes on."""
    ida = customers(510, "Ida", "en")
    await ida.say("hello")
    double.block(510)
    await ida.say("my parcel is late")
    with ida.db.session() as session:
        failed = session.exec(select(Message).where(Message.delivered == False)).all()  # noqa: E712
    assert failed and all(row.direction == "out" for row in failed)
    assert any(code == 403 for _, code, _ in double.errors)
    other = customers(511, "Olga", "en")
    assert await other.say("hello")  # everyone else is still served
