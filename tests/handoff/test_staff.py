"""Agents in the staff group, end to end: card, take (one wins), relay both ways, close."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot.store import FollowUp, Ticket
from tests.handoff.helpers import BILLING, card_of, complained, complaint, press, ticket_of
from tests.handoff.helpers import answer_until as _answer_until
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import (
    AGENTS,
    OUTSIDER,
    STAFF_CHAT,
    SUPERVISORS,
    UNSTARTED,
    BotProcess,
    free_port,
    mentioned,
    texts,
)

pytestmark = pytest.mark.staff


async def _complaint(double: BotApiDouble, customers: Any) -> Any:
    return await complaint(double, customers)


def _ticket(anna: Any) -> Ticket:
    return ticket_of(anna)


async def test_the_card_opens_its_own_topic_with_buttons(
    double: BotApiDouble, customers: Any
) -> None:
    anna = customers(601, "Anna", "en")
    await anna.say(BILLING)
    photo = {"file_id": "stmt-1", "file_unique_id": "ustmt-1", "width": 90, "height": 90}
    await anna.say(caption="my bank statement", photo=[photo])
    await anna.tap("Yes")
    await _answer_until(anna, "Yes, all correct", "bought it online last month")
    await anna.tap("Yes, all correct")
    await double.wait_for(lambda: card_of(double, "Anna") is not None, 20, "the card")
    card = double.sent_to(STAFF_CHAT)[0]
    ticket = _ticket(anna)
    topic_id = card["message_thread_id"]
    topic = double.topics[(STAFF_CHAT, topic_id)]
    assert topic["name"].startswith(f"#{ticket.id} · ") and topic["name"].endswith("Anna")
    in_topic = [m for m in double.sent_to(STAFF_CHAT) if m.get("message_thread_id") == topic_id]
    assert in_topic[0] is card  # the topic opens with the card
    buttons = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["Take", "Transfer", "Escalate", "Close"]
    for needle in ("SO20241105123", "Charged twice", "Refund", "I was charged twice"):
        assert needle in card["text"]
    assert "practical" in card["text"]  # the handling approach for the motive
    assert "Evidence: 1 photo(s) or file(s), shown below" in card["text"]
    await double.wait_for(lambda: len(in_topic_now(double, topic_id)) >= 2, 20, "the photo")
    shown = in_topic_now(double, topic_id)[1]
    assert shown["photo"][0]["file_id"] == "stmt-1" and shown["caption"] == "my bank statement"


def in_topic_now(double: BotApiDouble, topic_id: int) -> list[dict[str, Any]]:
    return [m for m in double.sent_to(STAFF_CHAT) if m.get("message_thread_id") == topic_id]


async def test_a_photo_sent_after_the_hand_off_reaches_the_topic(
    double: BotApiDouble, customers: Any
) -> None:
    """Without a caption too: the agent sees the photo itself (a copy), under her name."""
    anna, _, thread = await complained(double, customers)
    photo = {"file_id": "receipt-2", "file_unique_id": "ureceipt-2", "width": 90, "height": 90}
    replies = await anna.say(photo=[photo])
    assert "your case" in texts(replies)  # acknowledged
    await double.wait_for(
        lambda: any(m.get("photo") for m in in_topic_now(double, thread)), 20, "the photo"
    )
    shown = in_topic_now(double, thread)
    copy = next(m for m in shown if m.get("photo"))
    assert copy["photo"][0]["file_id"] == "receipt-2"
    assert shown[shown.index(copy) - 1]["text"] == "👤 Anna:"


async def test_take_relay_and_close(double: BotApiDouble, customers: Any) -> None:
    anna = await _complaint(double, customers)
    card = double.sent_to(STAFF_CHAT)[0]
    thread = card["message_thread_id"]
    ada, bo = AGENTS
    # a non-agent can neither take nor talk to the customer
    refused = double.user_presses(
        OUTSIDER,
        card["message_id"],
        card["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        chat_id=STAFF_CHAT,
    )
    await double.wait_for(lambda: double.callbacks[refused]["answered"], 20, "refusal")
    assert "Only agents" in (double.callbacks[refused]["text"] or "")
    before = len(double.sent_to(601))
    double.user_sends(OUTSIDER, "hi Anna, I'm not staff", chat_id=STAFF_CHAT, thread_id=thread)
    # two agents press Take at once: exactly one wins
    data = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    first = double.user_presses(ada, card["message_id"], data, chat_id=STAFF_CHAT)
    second = double.user_presses(bo, card["message_id"], data, chat_id=STAFF_CHAT)
    await double.wait_for(
        lambda: double.callbacks[first]["answered"] and double.callbacks[second]["answered"], 20
    )
    answers = [double.callbacks[first]["text"], double.callbacks[second]["text"]]
    assert sorted(a.startswith("Already taken") for a in answers) == [False, True]
    assert _ticket(anna).agent_id in AGENTS and _ticket(anna).status == "assigned"
    winner = _ticket(anna).agent_id
    await double.wait_for(lambda: len(double.sent_to(601)) > before, 20, "agent joined")
    assert "from our support team" in texts(double.sent_to(601)[before:])
    assert "not staff" not in texts(double.sent_to(601))
    # relay: agent -> customer (not /note), customer -> topic
    double.user_sends(
        winner, "/note check the payment provider first", chat_id=STAFF_CHAT, thread_id=thread
    )
    double.user_sends(
        winner,
        "Hi Anna, I can see both charges; refunding one now.",
        chat_id=STAFF_CHAT,
        thread_id=thread,
    )
    await double.wait_for(lambda: "refunding one now" in texts(double.sent_to(601)), 20, "relay")
    assert _ticket(anna).first_contact_at is not None
    assert "payment provider" not in texts(double.sent_to(601))
    replies = await anna.say("thank you, how long will it take?")
    assert replies == []  # the bot is silent while an agent has the case
    await double.wait_for(lambda: "how long will it take" in texts(double.sent_to(STAFF_CHAT)), 20)
    # /history: earlier tickets and the transcript, in the topic only
    double.user_sends(winner, "/history", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "Earlier tickets: 0" in texts(double.sent_to(STAFF_CHAT)), 20)
    history = next(m for m in double.sent_to(STAFF_CHAT) if "Earlier tickets" in m["text"])
    assert "👤 I was charged twice" in history["text"]
    assert "Earlier tickets" not in texts(double.sent_to(601))
    # close with a resolution: the customer is told, the bot takes the conversation back
    double.user_sends(
        winner,
        "/close Refunded $45.90 to your card; 3-5 working days.",
        chat_id=STAFF_CHAT,
        thread_id=thread,
    )
    await double.wait_for(lambda: "Refunded $45.90" in texts(double.sent_to(601)), 20, "close")
    assert _ticket(anna).status == "resolved"
    await double.wait_for(lambda: double.topics[(STAFF_CHAT, thread)].get("closed"), 20)
    back = await anna.say("hello again")
    assert "Anna" in texts(back)
    # within the reopen window, "not solved" reopens the same case and its topic
    again = await anna.say("the second charge is still on my card, it's not solved")
    assert "reopened" in texts(again) and f"#{_ticket(anna).id}" in texts(again)
    assert _ticket(anna).status == "waiting"
    await double.wait_for(lambda: not double.topics[(STAFF_CHAT, thread)].get("closed"), 20)
    await double.wait_for(lambda: "still on my card" in texts(double.sent_to(STAFF_CHAT)), 20)


@pytest.mark.unstarted
@pytest.mark.env(LISTEN=f"127.0.0.1:{free_port()}")
async def test_a_major_complaint_alerts_the_supervisor(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    """Sue gets alerts privately; Max never pressed Start, so Telegram will not let the
    bot write to him first: his alerts mention him in the staff group (the ticket's
    topic), and /healthz and the log say who is in that state."""
    max_id, _ = UNSTARTED
    li = customers(602, "Li", "zh")
    first = await li.say("第三次投诉了！冰箱不制冷，再不处理我就去12315投诉，找媒体曝光")
    assert li.keyboard, texts(first)
    await li.tap("对")
    if "退款" in li.keyboard:
        await li.tap("退款")
    await _answer_until(li, "都对", "上个月在商场买的")
    await li.tap("都对")
    supervisor = next(iter(SUPERVISORS))
    await double.wait_for(lambda: double.sent_to(supervisor), 20, "supervisor alert")
    assert "Major complaint" in double.sent_to(supervisor)[0]["text"]
    await double.wait_for(lambda: mentioned(double, max_id, "Major complaint"), 20, "Max told")
    alert = mentioned(double, max_id, "Major complaint")[0]
    assert alert["message_thread_id"] == ticket_of(li).topic_id  # in the ticket's topic
    assert "Max" in alert["text"] and "press Start" in alert["text"]
    assert double.sent_to(max_id) == []
    # a threat of harm from another customer: the same, at once
    ben = customers(603, "Ben", "zh")
    await ben.say("再不给我解决我就去你们店里捅人")
    await double.wait_for(lambda: len(mentioned(double, max_id, "Major complaint")) == 2, 20)
    assert len([m for m in double.sent_to(supervisor) if "Major complaint" in m["text"]]) == 2
    async with aiohttp.ClientSession() as session, session.get(bot.http + "/healthz") as answer:
        health = await answer.json()
    assert health["staff_not_reachable_privately"] == [max_id]
    assert f"supervisor {max_id} has not pressed Start" in bot.log.read_text()


async def test_a_phrase_to_avoid_is_held_with_a_better_wording(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await _complaint(double, customers)
    card = double.sent_to(STAFF_CHAT)[0]
    thread = card["message_thread_id"]
    ada = next(iter(AGENTS))
    take = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    query = double.user_presses(ada, card["message_id"], take, chat_id=STAFF_CHAT)
    await double.wait_for(lambda: double.callbacks[query]["answered"], 20)
    await double.wait_for(lambda: "has your case" in texts(double.sent_to(601)), 20)
    double.user_sends(
        ada, "Sorry, that's our policy, refunds take 10 days.", chat_id=STAFF_CHAT, thread_id=thread
    )
    await double.wait_for(lambda: "Held, not sent" in texts(double.sent_to(STAFF_CHAT)), 20)
    assert "our policy" not in texts(double.sent_to(601))
    held = next(m for m in double.sent_to(STAFF_CHAT) if "Held, not sent" in m["text"])
    assert "I'll do my best" in held["text"]
    buttons = held["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Send anyway", "Discard"]
    discard = double.user_presses(
        ada, held["message_id"], buttons[1]["callback_data"], chat_id=STAFF_CHAT
    )
    await double.wait_for(lambda: double.callbacks[discard]["answered"], 20)
    double.user_sends(
        ada, "I'll make sure the refund goes out today.", chat_id=STAFF_CHAT, thread_id=thread
    )
    await double.wait_for(lambda: "goes out today" in texts(double.sent_to(601)), 20)
    assert "our policy" not in texts(double.sent_to(601))
    assert anna


@pytest.mark.flood(group_per_minute=600)
async def test_a_chinese_customer_from_complaint_to_close(
    double: BotApiDouble, customers: Any
) -> None:
    li = customers(605, "李雷", "zh")
    await li.say("同一笔订单SO20241105123扣了我两次钱，每次45.9元，我要退款")
    await li.tap("对")
    await _answer_until(li, "都对", "上个月在网上买的")
    await li.tap("都对")
    await double.wait_for(lambda: card_of(double, "李雷") is not None, 20, "the card")
    card = card_of(double, "李雷")
    assert card is not None and "SO20241105123" in card["text"]
    thread = card["message_thread_id"]
    ada = next(iter(AGENTS))
    await press(double, ada, card, "Take")
    await double.wait_for(lambda: "Ada" in texts(double.sent_to(605)), 20, "joined")
    assert "客服团队的Ada" in texts(double.sent_to(605))
    double.user_sends(
        ada, "李先生您好，重复扣款已核实，正在退回。", chat_id=STAFF_CHAT, thread_id=thread
    )
    await double.wait_for(lambda: "正在退回" in texts(double.sent_to(605)), 20, "relay")
    assert "Ada（客服团队）：" in texts(double.sent_to(605))
    assert await li.say("好的，大概几天到账？") == []
    await double.wait_for(lambda: "几天到账" in texts(double.sent_to(STAFF_CHAT)), 20)
    double.user_sends(
        ada, "/close 已退回45.9元，3-5个工作日到账。", chat_id=STAFF_CHAT, thread_id=thread
    )
    await double.wait_for(lambda: "3-5个工作日到账" in texts(double.sent_to(605)), 20, "close")
    assert "已处理完毕" in texts(double.sent_to(605)) or "已经结案" in texts(double.sent_to(605))
    assert ticket_of(li).status == "resolved"


@pytest.mark.flood(group_per_minute=600)
async def test_a_customer_never_sees_another_customers_case(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await complaint(double, customers)
    ben = await complaint(double, customers, 602, "Ben")
    card_a, card_b = card_of(double, "Anna"), card_of(double, "Ben")
    assert card_a is not None and card_b is not None
    ada = next(iter(AGENTS))
    await press(double, ada, card_a, "Take")
    await press(double, ada, card_b, "Take")
    topic_a, topic_b = card_a["message_thread_id"], card_b["message_thread_id"]
    double.user_sends(ada, "Anna: your refund ref is R-111", chat_id=STAFF_CHAT, thread_id=topic_a)
    double.user_sends(ada, "Ben: your refund ref is R-222", chat_id=STAFF_CHAT, thread_id=topic_b)
    await double.wait_for(lambda: "R-111" in texts(double.sent_to(601)), 20)
    await double.wait_for(lambda: "R-222" in texts(double.sent_to(602)), 20)
    await ben.say("my card ends in 4242")
    await double.wait_for(lambda: "4242" in texts(double.sent_to(STAFF_CHAT)), 20)
    line = next(m for m in double.sent_to(STAFF_CHAT) if "4242" in m["text"])
    assert line["message_thread_id"] == topic_b
    double.user_sends(ada, "/history", chat_id=STAFF_CHAT, thread_id=topic_a)
    await double.wait_for(lambda: "Earlier tickets" in texts(double.sent_to(STAFF_CHAT)), 20)
    history = next(m for m in double.sent_to(STAFF_CHAT) if "Earlier tickets" in m["text"])
    assert history["message_thread_id"] == topic_a and "4242" not in history["text"]
    seen_by_anna, seen_by_ben = texts(double.sent_to(601)), texts(double.sent_to(602))
    assert "R-222" not in seen_by_anna and "4242" not in seen_by_anna and "Ben" not in seen_by_anna
    assert "R-111" not in seen_by_ben and "Anna" not in seen_by_ben
    assert anna and ben


async def test_someone_outside_staff_can_do_nothing(double: BotApiDouble, customers: Any) -> None:
    anna, card, thread = await complained(double, customers)
    for label in ("Take", "Transfer", "Escalate", "Close"):
        assert "Only agents" in await press(double, OUTSIDER, card, label)
    to_anna = len(double.sent_to(601))
    in_group = len(double.sent_to(STAFF_CHAT))
    for text in ("/close done", "/note hmm", "/promise 1d call", "/history", "hello Anna"):
        double.user_sends(OUTSIDER, text, chat_id=STAFF_CHAT, thread_id=thread)
    for text in ("/queue", "/take", f"/take {ticket_of(anna).id}", "/mine", "/away"):
        double.user_sends(OUTSIDER, text)
    await double.wait_for(lambda: len(double.sent_to(OUTSIDER)) >= 5, 30, "answers in private")
    ticket = ticket_of(anna)
    assert (ticket.status, ticket.agent_id, ticket.priority) == ("waiting", None, 0)
    assert len(double.sent_to(601)) == to_anna  # nothing reached the customer
    assert len(double.sent_to(STAFF_CHAT)) == in_group  # no history, no promise line
    private = texts(double.sent_to(OUTSIDER))
    for leak in ("Anna", "SO20241105123", "Waiting", f"#{ticket.id}", "45.90"):
        assert leak not in private
    with anna.db.session() as session:
        assert session.exec(select(FollowUp).where(FollowUp.kind == "promise")).first() is None


async def test_without_topics_agents_reply_to_the_card(
    double: BotApiDouble, customers: Any
) -> None:
    double.chats[STAFF_CHAT]["is_forum"] = False
    anna = await complaint(double, customers)
    card = card_of(double, "Anna")
    assert card is not None and "message_thread_id" not in card
    ada = next(iter(AGENTS))
    await press(double, ada, card, "Take")
    double.user_sends(ada, "Hi Anna, looking now.", chat_id=STAFF_CHAT, reply_to=card["message_id"])
    await double.wait_for(lambda: "looking now" in texts(double.sent_to(601)), 20, "relay")
    await anna.say("thanks, it was on the 3rd")
    await double.wait_for(lambda: "on the 3rd" in texts(double.sent_to(STAFF_CHAT)), 20)
    line = next(m for m in double.sent_to(STAFF_CHAT) if "on the 3rd" in m["text"])
    assert line["text"].startswith(f"#{ticket_of(anna).id} · ")
    # a reply to the customer's line (not to the card) still reaches the customer
    double.user_sends(ada, "Got it, thank you.", chat_id=STAFF_CHAT, reply_to=line["message_id"])
    await double.wait_for(lambda: "Got it, thank you" in texts(double.sent_to(601)), 20)
