"""Agents in the staff group, end to end: card, take (one wins), relay both ways, close."""

from __future__ import annotations

from typing import Any

import pytest

from bot.store import Ticket
from tests.botapi.double import BotApiDouble
from tests.handoff.helpers import answer_until as _answer_until
from tests.handoff.helpers import complaint, ticket_of
from tests.telegram.conftest import AGENTS, OUTSIDER, STAFF_CHAT, SUPERVISORS, texts

pytestmark = pytest.mark.staff


async def _complaint(double: BotApiDouble, customers: Any) -> Any:
    return await complaint(double, customers)


def _ticket(anna: Any) -> Ticket:
    return ticket_of(anna)


async def test_the_card_opens_its_own_topic_with_buttons(
    double: BotApiDouble, customers: Any
) -> None:
    anna = await _complaint(double, customers)
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


async def test_a_major_complaint_alerts_the_supervisor(
    double: BotApiDouble, customers: Any
) -> None:
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
