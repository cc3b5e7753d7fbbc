"""Webhook mode: the double posts updates to the bot as Telegram does; /healthz, /metrics;
requests without the secret, bodies that are not updates, kinds the bot does not know."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select

from bot.store import Database
from bot.store.models import InboundUpdate
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import WEBHOOK_SECRET, BotProcess, texts

pytestmark = pytest.mark.webhook


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def metric(page: str, name: str) -> float:
    """The value of one sample line of a Prometheus text page (0 when absent)."""
    for line in page.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and "} " in line):
            key, _, value = line.rpartition(" ")
            if key == name or key.startswith(name + "{"):
                return float(value)
    return 0.0


def stored(bot: BotProcess) -> list[InboundUpdate]:
    db = Database(bot.env["DATABASE_URL"])
    try:
        with db.session() as session:
            return list(session.exec(select(InboundUpdate).order_by(col(InboundUpdate.update_id))))
    finally:
        db.dispose()


async def test_a_conversation_through_the_webhook_and_the_figures(
    double: BotApiDouble, bot: BotProcess, customers: Any
) -> None:
    assert double.webhook["url"] == bot.env["WEBHOOK_URL"]
    assert double.webhook["secret_token"] == WEBHOOK_SECRET
    anna = customers(701, "Anna", "en")
    greeting = await anna.say("hello")
    assert "Anna" in texts(greeting)
    reply = await anna.say("I was charged twice for my order, I want my money back")
    assert reply and anna.keyboard, "a question with buttons follows the complaint"
    assert all(status == 200 for _, status in double.webhook_answers)

    status, body = await get(bot.http + "/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok" and health["mode"] == "webhook"
    assert health["inbox_pending"] == 0

    _, page = await get(bot.http + "/metrics")
    assert status == 200
    assert metric(page, 'complaint_desk_updates_processed_total{outcome="handled"}') >= 2
    assert metric(page, "complaint_desk_reply_latency_seconds_count") >= 2
    assert metric(page, "complaint_desk_inbox_pending") == 0
    assert "complaint_desk_tickets" in page
    assert "complaint_desk_followups_due" in page
    assert metric(page, "complaint_desk_cards_waiting") == 0
    assert metric(page, "complaint_desk_staff_posts_waiting") == 0
    assert metric(page, "complaint_desk_staff_group_queue") == 0
    assert "complaint_desk_telegram_429_total" in page
    assert "complaint_desk_sla_breaches" in page
    rows = stored(bot)
    assert len(rows) == 2 and all(row.done_at is not None for row in rows)


async def test_requests_without_the_secret_are_refused_and_not_processed(
    double: BotApiDouble, bot: BotProcess, customers: Any
) -> None:
    anna = customers(702, "Anna", "en")
    await anna.say("hello")
    forged = {
        "update_id": 990001,
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "chat": {"id": 702, "type": "private", "first_name": "Anna"},
            "from": {"id": 702, "is_bot": False, "first_name": "Anna"},
            "text": "I want a refund now",
        },
    }
    before = len(double.sent_to(702))
    assert (await double.post_raw(json.dumps(forged).encode(), None))[0] == 403
    assert (await double.post_raw(json.dumps(forged).encode(), "wrong-secret"))[0] == 403
    # the customer's next real message is answered; the forged one never was
    await anna.say("are you there?")
    assert [row.update_id for row in stored(bot) if row.update_id == 990001] == []
    assert len(double.sent_to(702)) > before
    _, page = await get(bot.http + "/metrics")
    assert metric(page, 'complaint_desk_webhook_rejected_total{reason="secret"}') == 2


async def test_bodies_that_are_not_updates_and_kinds_the_bot_does_not_know(
    double: BotApiDouble, bot: BotProcess, customers: Any
) -> None:
    assert (await double.post_raw(b"{not json", WEBHOOK_SECRET))[0] == 400
    assert (await double.post_raw(b'{"message": {}}', WEBHOOK_SECRET))[0] == 400
    assert (await double.post_raw(b'["update_id", 1]', WEBHOOK_SECRET))[0] == 400
    # a kind of update from a future Bot API: stored, looked at, nothing sent
    future = {"update_id": 990101, "holographic_hello": {"chat": {"id": 703}, "text": "hi"}}
    assert (await double.post_raw(json.dumps(future).encode(), WEBHOOK_SECRET))[0] == 200
    # an update PTB cannot read (a message that is a string): set aside, no crash
    broken = {"update_id": 990102, "message": "garbage"}
    assert (await double.post_raw(json.dumps(broken).encode(), WEBHOOK_SECRET))[0] == 200

    anna = customers(703, "Anna", "en")
    assert "Anna" in texts(await anna.say("hello"))

    def handled() -> bool:
        done = {row.update_id for row in stored(bot) if row.done_at is not None}
        return {990101, 990102} <= done

    await double.wait_for(handled, 20, "both odd updates handled")
    rows = {row.update_id: row for row in stored(bot)}
    assert rows[990101].error is None
    assert (rows[990102].error or "").startswith("unreadable")
    assert [m for m in double.sent_to(703) if m.get("text") == "hi"] == []
    log = bot.log.read_text()
    assert log.count("update 990101 of a kind not handled (holographic_hello)") == 1
    assert log.count("update 990102 is not readable") == 1
    assert log.count("webhook body is not a Telegram update") == 1, "logged once, not thrice"
    _, page = await get(bot.http + "/metrics")
    assert metric(page, 'complaint_desk_webhook_rejected_total{reason="malformed"}') == 3
    assert metric(page, 'complaint_desk_updates_processed_total{outcome="unreadable"}') == 1


async def test_polling_is_refused_while_the_webhook_is_set(
    double: BotApiDouble, bot: BotProcess
) -> None:
    """The double answers getUpdates as Telegram does while a webhook is set (409)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{double.base_url}{double.token}/getUpdates") as response,
    ):
        body = await response.json()
    assert response.status == 409 and not body["ok"]
    assert stored(bot) == []
