"""The database goes away for a while: the customer hears "one moment" (once), Telegram
keeps the update (polling: not acknowledged; webhook: 503), and when the database is
back the messages are handled, in order, once; the outage is logged once."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from bot.store import Conversation, Customer, Database, Message
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import BotProcess

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="a database server going away: runs in the PostgreSQL pass of "
    "`python3 dev.py test` (SQLite is a file inside the bot's own process)",
)
ONE_MOMENT = "moment"


def switch(database_url: str, *, allow: bool) -> None:
    """As an outage looks to the bot: its connections are cut and new ones refused."""
    url = make_url(database_url)
    name = url.database
    admin = sa.create_engine(url.set(database="postgres"), poolclass=NullPool)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {allow!s}'))
        if not allow:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    admin.dispose()


def incoming(db: Database, user: int) -> list[str]:
    with db.session() as session:
        return list(
            session.exec(
                select(Message.text)
                .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
                .join(Customer, col(Customer.id) == col(Conversation.customer_id))
                .where(Customer.telegram_id == user, Message.direction == "in")
                .order_by(col(Message.id))
            )
        )


async def health(bot: BotProcess) -> int:
    async with aiohttp.ClientSession() as session, session.get(bot.http + "/healthz") as answer:
        await answer.read()
        return answer.status


@pytest.mark.parametrize("mode", ["polling", pytest.param("webhook", marks=pytest.mark.webhook)])
async def test_one_moment_then_everything_is_handled(
    double: BotApiDouble, bot: BotProcess, customers: Any, mode: str
) -> None:
    anna = customers(801, "Anna", "en")
    await anna.say("hello")
    db = Database(bot.env["DATABASE_URL"])
    switch(bot.env["DATABASE_URL"], allow=False)
    try:
        before = len(double.sent_to(801))
        double.user_sends(801, "my parcel is a week late")
        double.user_sends(801, "it was order SO20241105123")
        await double.wait_for(
            lambda: any(
                ONE_MOMENT in m.get("text", "").lower() for m in double.sent_to(801)[before:]
            ),
            30,
            "one moment",
        )
        if mode == "webhook":
            assert await health(bot) == 503
            await double.wait_for(
                lambda: any(status == 503 for _, status in double.webhook_answers),
                10,
                "Telegram told to come back later",
            )
        await asyncio.sleep(3)  # the outage goes on; the customer is not told again
    finally:
        switch(bot.env["DATABASE_URL"], allow=True)
    await double.wait_for(
        lambda: (
            incoming(db, 801) == ["hello", "my parcel is a week late", "it was order SO20241105123"]
        ),
        60,
        "both messages handled after the outage",
    )
    await double.wait_for(
        lambda: len(double.sent_to(801)) >= before + 3, 30, "answers to both messages"
    )
    told = [m for m in double.sent_to(801) if ONE_MOMENT in m.get("text", "").lower()]
    assert len(told) == 1
    if mode == "webhook":
        assert await health(bot) == 200
    log = bot.log.read_text()
    assert log.count("database not answering") == 1, log
    assert "answers again" in log
    await anna.say("thanks")  # and the conversation simply goes on
    db.dispose()
