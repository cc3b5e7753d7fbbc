"""Two bot processes in webhook mode on one PostgreSQL database, behind a round-robin
proxy (as docker/compose.yaml runs them behind Caddy): each chat's messages are handled
in order and once, two agents never both take one ticket, one process runs the
scheduler and the other takes over when it dies."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import col, select

from bot.nlu.model import TriageModel
from bot.store import Database, StaffPost, Ticket
from tests.handoff.helpers import card_of, complaint, press
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import (
    AGENTS,
    STAFF_CHAT,
    BotProcess,
    TgCustomer,
    assert_clean_log,
    bot_env,
    free_port,
    transcript,
)

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="several workers share one PostgreSQL database: this runs in the PostgreSQL "
        "pass of `python3 dev.py test` (SQLite is for one process)",
    ),
    pytest.mark.webhook,
    pytest.mark.staff(),
]
RUNS_SCHEDULER = "this process runs the scheduler"


class RoundRobin:
    """The public webhook address: each request goes to the next worker that answers."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.forwarded: Counter[str] = Counter()
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/telegram", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {
            key: value
            for key, value in request.headers.items()
            if key.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        for _ in self.targets:
            target = self.targets[self._next % len(self.targets)]
            self._next += 1
            try:
                async with self._session.post(target, data=body, headers=headers) as response:
                    self.forwarded[target] += 1
                    return web.Response(status=response.status, body=await response.read())
            except aiohttp.ClientError:
                continue  # that worker is down: the next one
        return web.Response(status=502)


@pytest.fixture
async def workers(
    request: pytest.FixtureRequest,
    double: BotApiDouble,
    model: TriageModel,
    nlu_cache_dir: Path,
    tmp_path: Path,
    database_url: str,
) -> AsyncIterator[tuple[list[BotProcess], RoundRobin]]:
    env = bot_env(request, double, nlu_cache_dir, database_url)
    public = env["WEBHOOK_URL"]
    processes = []
    for name in ("a", "b"):
        port = free_port()
        processes.append(
            BotProcess({**env, "LISTEN": f"127.0.0.1:{port}"}, tmp_path / f"worker-{name}.log")
        )
    proxy = RoundRobin([f"{p.http}/telegram" for p in processes])
    await proxy.start(int(public.rsplit(":", 1)[1].split("/")[0]))
    for process in processes:
        await process.start(double)
    yield processes, proxy
    for process in processes:
        await process.stop()
    await proxy.stop()
    for process in processes:
        assert_clean_log(process.log)


@pytest.fixture
def customers(double: BotApiDouble, workers: tuple[list[BotProcess], RoundRobin]) -> Iterator[Any]:
    """Customers of the worker pair. (The shared `customers` fixture starts a bot of its
    own, which would take the webhook: the workers would then see none of the updates.)"""
    made: list[TgCustomer] = []

    def make(user_id: int, name: str, lang: str = "en") -> TgCustomer:
        customer = TgCustomer(double, workers[0][0], user_id, name, lang)
        made.append(customer)
        return customer

    yield make
    for customer in made:
        customer.close()


def scheduler_holders(processes: list[BotProcess]) -> list[int]:
    return [n for n, p in enumerate(processes) if RUNS_SCHEDULER in p.log.read_text()]


async def test_each_chat_in_order_once_across_two_workers(
    double: BotApiDouble, workers: tuple[list[BotProcess], RoundRobin]
) -> None:
    processes, proxy = workers
    await double.wait_for(lambda: len(scheduler_holders(processes)) == 1, 30, "a scheduler")
    await asyncio.sleep(1)
    assert len(scheduler_holders(processes)) == 1, "exactly one process runs the scheduler"
    ids = [30000 + n for n in range(20)]
    said = [
        "hello",
        "my parcel is a week late",
        "it was order SO20241105123",
        "please tell me where it is",
    ]
    for user in ids:
        double.add_user(user, f"D{user}", "en")
    for text in said:  # every customer's messages back to back, nobody waits
        for user in ids:
            double.user_sends(user, text)
    db = Database(processes[0].env["DATABASE_URL"])

    def all_handled() -> bool:
        seen = transcript(db)
        return all(
            sum(1 for m in seen.get(user, []) if m.direction == "in") == len(said)
            and all(m.external_id is not None for m in seen[user] if m.direction == "out")
            for user in ids
        )

    await double.wait_for(all_handled, 180, "every message of every customer handled")
    for user, messages in transcript(db).items():
        if user not in ids:
            continue
        assert [m.text for m in messages if m.direction == "in"] == said, user
        assert messages[0].direction == "in", "nothing is said before the first message"
        assert messages[-1].direction == "out", "the last message was answered"
    assert min(proxy.forwarded.values()) >= 20, proxy.forwarded  # both did their share
    db.dispose()


async def test_two_agents_press_take_at_once_on_two_workers(
    double: BotApiDouble, workers: tuple[list[BotProcess], RoundRobin], customers: Any
) -> None:
    processes, proxy = workers
    await complaint(double, customers, 611, "Anna")
    assert len(proxy.forwarded) == 2, proxy.forwarded  # the workers have her updates
    card = card_of(double, "Anna")
    assert card is not None
    ada, bo = AGENTS
    answers = await asyncio.gather(
        press(double, ada, card, "Take"), press(double, bo, card, "Take")
    )
    won = [a for a in answers if a.startswith("It's yours")]
    assert len(won) == 1, answers
    assert any("already taken" in a.lower() for a in answers), answers
    db = Database(processes[0].env["DATABASE_URL"])
    with db.session() as session:
        ticket = session.exec(select(Ticket)).one()
    winner = ada if answers[0].startswith("It's yours") else bo
    assert (ticket.status, ticket.agent_id) == ("assigned", winner)
    thread = card["message_thread_id"]

    def topic_rows_left() -> int:
        # "Taken by" is a topic row the ticket's lane posts after the Take commits: the
        # press is answered first, so count the lines once every row has its outcome
        with db.session() as session:
            waiting = select(StaffPost).where(col(StaffPost.outcome).is_(None))
            return len(session.exec(waiting).all())

    await double.wait_for(lambda: topic_rows_left() == 0, what="the topic's rows posted")
    taken_lines = [
        m
        for m in double.sent_to(STAFF_CHAT)
        if m.get("message_thread_id") == thread and "taken by" in m.get("text", "").lower()
    ]
    assert len(taken_lines) == 1, [m.get("text") for m in taken_lines]
    db.dispose()


async def test_a_customers_lines_reach_the_topic_in_order_across_two_workers(
    double: BotApiDouble, workers: tuple[list[BotProcess], RoundRobin], customers: Any
) -> None:
    """Her messages are handled by whichever worker holds her chat's lease at the time;
    what reaches the topic is posted under the ticket's own lease (posts:<ticket>), so
    the agents read her lines once each, in the order she wrote them."""
    _, proxy = workers
    await complaint(double, customers, 611, "Anna")
    card = card_of(double, "Anna")
    assert card is not None
    thread = card["message_thread_id"]
    # the group answers slowly and unevenly: lines queue as she writes, and two posts in
    # flight at once (one per worker) could land out of order
    double.slow(STAFF_CHAT, 0.5, jitter=0.45)
    before = dict(proxy.forwarded)
    lines = [f"one more thing, number {n}" for n in range(1, 9)]
    for text in lines:  # far enough apart that each worker handles some of them
        double.user_sends(611, text)
        await asyncio.sleep(0.3)

    def shown() -> list[str]:
        return [
            m["text"]
            for m in double.sent_to(STAFF_CHAT)
            if m.get("message_thread_id") == thread and "one more thing" in m["text"]
        ]

    await double.wait_for(lambda: len(shown()) >= len(lines), 120, "her lines in the topic")
    await asyncio.sleep(1)  # nothing more arrives: each line once
    assert shown() == [f"👤 Anna: {text}" for text in lines]
    assert all(proxy.forwarded[t] > before.get(t, 0) for t in proxy.targets), proxy.forwarded


async def test_the_other_worker_takes_the_scheduler_over_when_its_holder_dies(
    double: BotApiDouble, workers: tuple[list[BotProcess], RoundRobin]
) -> None:
    processes, _ = workers
    await double.wait_for(lambda: len(scheduler_holders(processes)) == 1, 30, "a scheduler")
    holder = scheduler_holders(processes)[0]
    processes[holder].kill()
    survivor = processes[1 - holder]
    await double.wait_for(
        lambda: RUNS_SCHEDULER in survivor.log.read_text(), 40, "the survivor to take over"
    )
    # and the survivor still answers customers alone (the proxy skips the dead one)
    double.add_user(31000, "Eve", "en")
    double.user_sends(31000, "hello")
    await double.wait_for(lambda: bool(double.sent_to(31000)), 30, "an answer")
