"""When things go wrong around the hand-off, end to end against the Bot API double: a
customer who blocked the bot, a ticket's topic deleted by hand, the staff group upgraded
to a supergroup, an agent who leaves the staff group. Each is answered sensibly, nothing
is lost, and the bot's log says it once (the bot fixture fails on any traceback)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, select

from bot.store import Agent, FollowUp, Message, StaffPost, Ticket
from tests.handoff.helpers import (
    BILLING,
    answer_until,
    button,
    card_of,
    complaint,
    press,
    taken,
    ticket_of,
)
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import (
    AGENTS,
    STAFF_CHAT,
    SUPERVISORS,
    UNSTARTED,
    BotProcess,
    mentioned,
    texts,
)

pytestmark = [pytest.mark.staff, pytest.mark.flood(group_per_minute=600)]
ADA, BO = AGENTS
SUE = next(iter(SUPERVISORS))
OLD_GROUP = -777
"""A basic group (not a supergroup), before Telegram upgrades it to STAFF_CHAT."""


def _topic(double: BotApiDouble, thread: int) -> list[dict[str, Any]]:
    return [m for m in double.sent_to(STAFF_CHAT) if m.get("message_thread_id") == thread]


def _log(bot: BotProcess) -> str:
    return bot.log.read_text(errors="replace")


async def _dm(double: BotApiDouble, user_id: int, text: str) -> str:
    """A member of staff writes to the bot privately; returns the bot's answer."""
    before = len(double.sent_to(user_id))
    double.user_sends(user_id, text)
    await double.wait_for(lambda: len(double.sent_to(user_id)) > before, 20, f"answer to {text}")
    return texts(double.sent_to(user_id)[before:])


@pytest.mark.staff(HANDOFF_TICK="0.2s", SURVEY_DELAY="1s", NO_ANSWER_AFTER="1h")
async def test_a_customer_who_blocked_the_bot(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    await double.wait_for(lambda: "Ada from our support team" in texts(double.sent_to(601)), 20)
    double.block(601)
    # an agent's message: not delivered, and the topic says why
    double.user_sends(ADA, "Hi Anna, refunding it now.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(
        lambda: "blocked the bot" in texts(_topic(double, thread)), 20, "the line in the topic"
    )
    assert "refunding it now" not in texts(double.sent_to(601))
    # an action: the close is recorded, the resolution not delivered, the topic told
    double.user_sends(ADA, "/close Refunded $45.90.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "Closed by Ada" in texts(_topic(double, thread)), 20, "closed")
    assert ticket_of(anna).status == "resolved"
    # (the survey may already be due by now, so the topic's lines are counted below; the
    # resolution goes through the outbox beside the close, so its refusal may come after)
    await double.wait_for(
        lambda: "blocked the bot: utter_ticket_resolved" in _log(bot), 20, "the refusal"
    )
    # the satisfaction survey: blocked, not retried, and the topic told once more
    await double.wait_for(lambda: _survey(anna).status == "done", 20, "the survey")
    survey = _survey(anna)
    assert (survey.outcome, survey.attempts) == ("blocked", 1)
    await double.wait_for(lambda: texts(_topic(double, thread)).count("blocked the bot") == 3, 20)
    # nothing is lost: the transcript keeps each message, marked undelivered
    with anna.db.session() as session:
        undelivered = session.exec(
            select(Message.response).where(
                Message.direction == "out", col(Message.delivered).is_(False)
            )
        ).all()
    assert sorted(undelivered) == ["relay", "utter_survey_solved", "utter_ticket_resolved"]
    await asyncio.sleep(1)
    assert texts(_topic(double, thread)).count("blocked the bot") == 3
    assert _log(bot).count("not delivered, the customer blocked the bot") == 3


@pytest.mark.staff(HANDOFF_TICK="0.2s")
async def test_a_reply_that_may_not_have_arrived_is_shown_in_the_topic(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    await double.wait_for(lambda: "Ada from our support team" in texts(double.sent_to(601)), 20)
    # The connection drops after Telegram has read the agent's reply, before it answers
    double.swallow_next(601)
    double.user_sends(ADA, "Hi Anna, refunding it now.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(
        lambda: "Perhaps not delivered" in texts(_topic(double, thread)), 20, "the topic told"
    )
    line = next(m["text"] for m in _topic(double, thread) if "Perhaps not" in m["text"])
    assert "Hi Anna, refunding it now." in line and "say it again here" in line
    # Not sent again (it may have arrived: twice would be worse), and recorded so
    sent = [
        p
        for _, p in double.requests
        if p.get("chat_id") == "601" and "refunding" in p.get("text", "")
    ]
    assert len(sent) == 1
    with anna.db.session() as session:
        outcome = session.exec(
            select(Message.outcome).where(Message.text.contains("refunding it now"))  # type: ignore[attr-defined]
        ).one()
    assert outcome == "unconfirmed"
    # The agent says it again: it arrives, and the topic hears nothing more
    double.user_sends(ADA, "Anna, your refund is on its way.", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "refund is on its way" in texts(double.sent_to(601)), 20)
    assert texts(_topic(double, thread)).count("Perhaps not delivered") == 1


@pytest.mark.staff(HANDOFF_TICK="0.2s")
async def test_a_topic_line_that_may_have_arrived_is_not_posted_twice(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna, _, thread = await taken(double, customers, ADA)
    # The staff group's connection drops after Telegram has read the line for the topic
    double.swallow_next(STAFF_CHAT)
    double.user_sends(ADA, "/promise 2d send the repair date", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "unconfirmed" in _outcomes(anna), 20, "the line's outcome")
    await asyncio.sleep(1.5)  # several sweeps (HANDOFF_TICK): none posts it again
    asked = [p for _, p in double.requests if "send the repair date" in str(p.get("text", ""))]
    assert len(asked) == 1
    assert "send the repair date" not in texts(_topic(double, thread))
    # The next line goes as usual
    double.user_sends(ADA, "/promise 1d call Anna back", chat_id=STAFF_CHAT, thread_id=thread)
    await double.wait_for(lambda: "call Anna back" in texts(_topic(double, thread)), 20)
    await double.wait_for(lambda: _outcomes(anna)[-1] == "sent", 20, "its outcome")


def _outcomes(customer: Any) -> list[str | None]:
    """The outcomes of the lines for the customer's ticket's topic, in order."""
    with customer.db.session() as session:
        return list(
            session.exec(
                select(StaffPost.outcome)
                .where(StaffPost.ticket_id == ticket_of(customer).id)
                .order_by(col(StaffPost.id))
            )
        )


def _survey(customer: Any) -> FollowUp:
    with customer.db.session() as session:
        row = session.exec(select(FollowUp).where(FollowUp.kind == "survey")).first()
    assert row is not None, "no survey"
    return row


async def test_a_deleted_topic_is_replaced_and_nothing_is_lost(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna, card, thread = await taken(double, customers, ADA)
    double.delete_topic(STAFF_CHAT, thread)  # someone in the staff group deletes it
    assert await anna.say("the bank sent me a letter about it") == []
    await double.wait_for(
        lambda: "sent me a letter" in texts(double.sent_to(STAFF_CHAT)), 20, "the relayed line"
    )
    assert ("sendMessage", 400, "Bad Request: message thread not found") in double.errors
    line = next(m for m in double.sent_to(STAFF_CHAT) if "sent me a letter" in m["text"])
    new_thread = line["message_thread_id"]
    assert new_thread != thread
    ticket = ticket_of(anna)
    assert ticket.topic_id == new_thread
    assert double.topics[(STAFF_CHAT, new_thread)]["name"].startswith(f"#{ticket.id} · ")
    # the new topic opens with the card again, saying what happened and who has it
    new_card = _topic(double, new_thread)[0]
    assert new_card["message_id"] == ticket.card_message_id
    assert "previous topic was deleted" in new_card["text"] and "Taken by Ada" in new_card["text"]
    assert "I was charged twice" in new_card["text"]
    assert [b["text"] for r in new_card["reply_markup"]["inline_keyboard"] for b in r] == [
        "Take",
        "Transfer",
        "Escalate",
        "Close",
    ]
    # the next message goes straight there; the agent carries on in the new topic
    await anna.say("and my card ends in 4242")
    await double.wait_for(lambda: "4242" in texts(_topic(double, new_thread)), 20, "next line")
    double.user_sends(ADA, "Thanks Anna, noted.", chat_id=STAFF_CHAT, thread_id=new_thread)
    await double.wait_for(lambda: "Thanks Anna, noted" in texts(double.sent_to(601)), 20, "relay")
    assert len([call for call in double.requests if call[0] == "createForumTopic"]) == 2
    assert _log(bot).count("was deleted from the staff group") == 1
    assert card


@pytest.mark.staff(STAFF_CHAT_ID=str(OLD_GROUP))
async def test_a_group_upgraded_to_a_supergroup_is_followed(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    double.chats[OLD_GROUP] = {"id": OLD_GROUP, "type": "group", "title": "Support desk"}
    anna = customers(601, "Anna", "en")
    await anna.say(BILLING)
    await anna.tap("Yes")
    await answer_until(anna, "Yes, all correct", "bought it online last month")
    await anna.tap("Yes, all correct")
    await double.wait_for(lambda: bool(double.sent_to(OLD_GROUP)), 20, "the card, old group")
    card = double.sent_to(OLD_GROUP)[0]
    assert "Customer: Anna " in card["text"] and "message_thread_id" not in card  # no topics
    query = double.user_presses(ADA, card["message_id"], button(card, "Take"), chat_id=OLD_GROUP)
    await double.wait_for(lambda: double.callbacks[query]["answered"], 20, "take")
    await double.wait_for(lambda: "Ada from our support team" in texts(double.sent_to(601)), 20)
    # Telegram upgrades the group; the bot missed the service messages
    double.migrate_group(OLD_GROUP, STAFF_CHAT, announce=False)
    assert await anna.say("any news about my refund?") == []
    await double.wait_for(lambda: "any news" in texts(double.sent_to(STAFF_CHAT)), 20, "resent")
    upgraded = "Bad Request: group chat was upgraded to a supergroup chat"
    assert [e for e in double.errors if e[2] == upgraded] == [("sendMessage", 400, upgraded)]
    line = next(m for m in double.sent_to(STAFF_CHAT) if "any news" in m["text"])
    ticket = ticket_of(anna)
    assert line["text"].startswith(f"#{ticket.id} · ") and ticket.staff_chat_id == STAFF_CHAT
    # the new group is the staff group now: a reply there reaches the customer
    double.user_sends(ADA, "Refund sent today.", chat_id=STAFF_CHAT, reply_to=line["message_id"])
    await double.wait_for(lambda: "Refund sent today" in texts(double.sent_to(601)), 20, "relay")
    # the next ticket goes to the new group at once
    ben = await complaint(double, customers, 602, "Ben")
    ben_card = card_of(double, "Ben")
    assert ben_card is not None
    # the ticket row records the card just after Telegram has it
    await double.wait_for(lambda: ticket_of(ben).staff_chat_id == STAFF_CHAT, 20, "Ben's card")
    assert (await press(double, BO, ben_card, "Take")).startswith("It's yours")
    assert len([e for e in double.errors if e[2] == upgraded]) == 1
    log = _log(bot)
    assert log.count(f"set STAFF_CHAT_ID={STAFF_CHAT}") == 1, log


@pytest.mark.staff(STAFF_CHAT_ID=str(OLD_GROUP))
async def test_an_upgrade_announced_by_telegram_needs_no_failed_send(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    double.chats[OLD_GROUP] = {"id": OLD_GROUP, "type": "group", "title": "Support desk"}
    double.migrate_group(OLD_GROUP, STAFF_CHAT)  # with its service messages in both chats
    await double.wait_for(lambda: "set STAFF_CHAT_ID" in _log(bot), 20, "the log line")
    anna = await complaint(double, customers)
    anna_card = card_of(double, "Anna")
    assert anna_card is not None
    assert (await press(double, ADA, anna_card, "Take")).startswith("It's yours")
    assert ticket_of(anna).staff_chat_id == STAFF_CHAT
    assert not [e for e in double.errors if "upgraded" in e[2]]
    assert _log(bot).count(f"set STAFF_CHAT_ID={STAFF_CHAT}") == 1


async def test_an_agent_who_leaves_the_group_gives_their_tickets_back(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna, anna_card, anna_topic = await taken(double, customers, ADA)
    ben = await complaint(double, customers, 602, "Ben")
    ben_card = card_of(double, "Ben")
    assert ben_card is not None
    assert (await press(double, ADA, ben_card, "Take")).startswith("It's yours")
    await double.wait_for(lambda: "Ada from our support team" in texts(double.sent_to(602)), 20)
    told = {601: len(double.sent_to(601)), 602: len(double.sent_to(602))}
    assert "chat_member" in (double.allowed_updates or [])  # the bot asked for them
    double.member_leaves(STAFF_CHAT, ADA)  # a chat_member update and a service message
    await double.wait_for(
        lambda: ticket_of(anna).status == "waiting" and ticket_of(ben).status == "waiting",
        20,
        "back in the queue",
    )
    assert ticket_of(anna).agent_id is None and ticket_of(ben).agent_id is None
    first, second = ticket_of(anna).id, ticket_of(ben).id
    topics = {first: anna_topic, second: ben_card["message_thread_id"]}
    await double.wait_for(
        lambda: all(
            "Ada left the staff group" in texts(_topic(double, t)) for t in topics.values()
        ),
        20,
        "a line in each topic",
    )
    for ticket_id, topic in topics.items():
        assert f"ticket #{ticket_id} is back in the queue" in texts(_topic(double, topic))
    await double.wait_for(
        lambda: all(len(double.sent_to(c)) > before for c, before in told.items()), 20, "told"
    )
    for customer_id, before in told.items():
        news = texts(double.sent_to(customer_id)[before:])
        assert "A colleague will pick up your case shortly" in news
        assert "Everything you've told us stays with it" in news
    await double.wait_for(lambda: "Ada left" in texts(double.sent_to(SUE)), 20, "supervisor")
    await asyncio.sleep(1)  # the second update about the same departure adds nothing
    alerts = [m for m in double.sent_to(SUE) if "Ada left" in m["text"]]
    assert len(alerts) == 1 and f"#{first}, #{second}" in alerts[0]["text"]
    with anna.db.session() as session:
        ada = session.get(Agent, ADA)
        assert ada is not None and not ada.available
    # Ada can no longer take: not by the card, not privately; she sees no queue
    assert "not in the staff group" in await press(double, ADA, anna_card, "Take")
    assert "not in the staff group" in await _dm(double, ADA, f"/take {first}")
    listing = await _dm(double, ADA, "/queue")
    assert "not in the staff group" in listing and "Anna" not in listing
    assert ticket_of(anna).status == "waiting"
    # nobody can transfer to her; Bo takes over
    await press(double, BO, anna_card, "Transfer")
    await double.wait_for(lambda: "Transfer ticket" in texts(_topic(double, anna_topic)), 20)
    picker = next(m for m in _topic(double, anna_topic) if "Transfer ticket" in m["text"])
    labels = [b["text"] for r in picker["reply_markup"]["inline_keyboard"] for b in r]
    assert not [label for label in labels if label.startswith("Ada")]
    assert (await press(double, BO, anna_card, "Take")).startswith("It's yours")
    with anna.db.session() as session:
        held = session.exec(select(Ticket).where(Ticket.agent_id == ADA)).all()
    assert held == []
    assert _log(bot).count("left the staff group") == 1


@pytest.mark.unstarted
@pytest.mark.staff(STAFF_CHAT_ID=str(OLD_GROUP))
async def test_an_alert_for_someone_unreachable_follows_the_group_to_its_supergroup(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    """Max never pressed Start: a threat's alert mentions him in the staff group, which
    Telegram has just upgraded (the bot missed the service messages): the mention
    reaches the new group (whichever of the card and the mention meets the upgrade
    first; the outbox's own move is tests/telegram/test_outbox.py)."""
    double.chats[OLD_GROUP] = {"id": OLD_GROUP, "type": "group", "title": "Support desk"}
    double.migrate_group(OLD_GROUP, STAFF_CHAT, announce=False)
    ben = customers(603, "Ben", "zh")
    await ben.say("再不给我解决我就去你们店里捅人")
    await double.wait_for(lambda: mentioned(double, UNSTARTED[0], "Major complaint"), 30, "Max")
    assert any("Major complaint" in m["text"] for m in double.sent_to(SUE))
    assert double.sent_to(OLD_GROUP) == []
    assert _log(bot).count(f"set STAFF_CHAT_ID={STAFF_CHAT}") == 1
