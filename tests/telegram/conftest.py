"""`python -m bot run` as a real process against the Bot API double on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from bot.config import PROJECT_ROOT
from bot.nlu.model import TriageModel
from bot.store import Customer, Database, Message
from bot.store.models import Conversation
from tests.support.botapi.double import TOKEN, BotApiDouble
from tests.support.forkserver import Forked, fresh_processes, shared


@pytest.fixture
async def double(request: pytest.FixtureRequest) -> AsyncIterator[BotApiDouble]:
    """The double; a test fails on any request that breaks the Bot API spec."""
    marker = request.node.get_closest_marker("flood")
    rate = marker.kwargs if marker else {}
    server = BotApiDouble(**rate)
    await server.start()
    yield server
    await server.stop()
    assert server.violations == [], server.violations


class BotProcess:
    """The bot as an operator runs it: `python -m bot run`, configured by environment.

    Forked from the worker's fork server (already imported, model loaded: the same code
    from there on, ~0.5 s to start instead of ~7), or with ``fresh`` (the `exec` marker,
    or TEST_BOT_EXEC=1 for every test) a new interpreter."""

    def __init__(self, env: dict[str, str], log: Path, *, fresh: bool = False) -> None:
        self.env = env
        self.log = log
        self.fresh = fresh or fresh_processes()
        self.process: subprocess.Popen[bytes] | Forked | None = None

    async def start(self, double: BotApiDouble) -> None:
        """Start it and wait until it takes updates: its first getUpdates, or (webhook
        mode) its setWebhook and its /healthz answering."""
        intake = "setWebhook" if self.env.get("WEBHOOK_URL") else "getUpdates"
        polls = sum(1 for method, _ in double.requests if method == intake)
        if self.fresh:
            sink = self.log.open("ab")
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            sink.close()
        else:
            self.process = shared().spawn(["run"], self.env, stdout=self.log, stderr=self.log)
        await double.wait_for(
            lambda: (
                sum(1 for m, _ in double.requests if m == intake) > polls
                or self.process is None
                or self.process.poll() is not None
            ),
            timeout=90,
            what="the bot to start polling",
        )
        assert self.process.poll() is None, self.log.read_text()

    def kill(self) -> None:
        """kill -9: no clean-up of any kind, as a power cut or the OOM killer."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def http(self) -> str:
        """The bot's own HTTP server (webhook, /healthz, /metrics), when LISTEN is set."""
        return "http://" + self.env["LISTEN"]

    async def stop(self) -> None:
        """SIGINT, as Ctrl-C: the bot shuts down cleanly (the double keeps answering)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            for _ in range(400):
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                process.kill()
                process.wait()
        self.process = None


WEBHOOK_SECRET = "s3cret-for-the-double_0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


STAFF_CHAT = -100777
AGENTS = {9001: "Ada", 9002: "Bo"}
SUPERVISORS = {9009: "Sue"}
OUTSIDER = 9100
UNSTARTED = (9011, "Max")
"""With the `unstarted` marker: a second supervisor who never pressed Start in a private
chat with the bot (Telegram refuses to let the bot write to him first)."""


def bot_env(
    request: pytest.FixtureRequest, double: BotApiDouble, nlu_cache_dir: Path, database_url: str
) -> dict[str, str]:
    """The environment an operator would give the bot, after the test's markers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=double.base_url,
        DATABASE_URL=database_url,
        NLU_CACHE_DIR=str(nlu_cache_dir),
        PYTHONIOENCODING="utf-8",
        # Lines typed within a moment are one turn (MERGE_WINDOW, 2 s by default); the
        # tests type one message at a time and would each wait it out: off, except where
        # a test sets it (test_merge.py).
        MERGE_WINDOW="0",
    )
    extra = request.node.get_closest_marker("env")
    if extra:
        env.update({name: str(value) for name, value in extra.kwargs.items()})
    staff = request.node.get_closest_marker("staff")
    if staff:
        double.add_group(STAFF_CHAT, "Support desk", forum=True)
        for user_id, name in (*AGENTS.items(), *SUPERVISORS.items(), (OUTSIDER, "Olly")):
            double.add_user(user_id, name, "en")
        env.update(
            STAFF_CHAT_ID=str(STAFF_CHAT),
            AGENT_IDS=",".join(map(str, AGENTS)),
            SUPERVISOR_IDS=",".join(map(str, SUPERVISORS)),
            DEFAULT_LANGUAGE="en",
        )
        if request.node.get_closest_marker("unstarted"):
            double.add_user(*UNSTARTED)
            double.never_started(UNSTARTED[0])
            env["SUPERVISOR_IDS"] += f",{UNSTARTED[0]}"
        env.update({name: str(value) for name, value in staff.kwargs.items()})
    if request.node.get_closest_marker("webhook"):
        port = free_port()
        env.update(
            WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            LISTEN=f"127.0.0.1:{port}",
        )
    return env


def assert_clean_log(log: Path) -> None:
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text


def mentioned(double: BotApiDouble, user_id: int, words: str) -> list[dict[str, Any]]:
    """Messages in the staff group that mention the user (a text mention: a link to
    tg://user?id=…, which notifies them) and contain the words."""
    return [
        message
        for message in double.sent_to(STAFF_CHAT)
        if f'href="tg://user?id={user_id}"' in message.get("raw_text", "")
        and words in message.get("text", "")
    ]


@pytest.fixture
async def bot(
    request: pytest.FixtureRequest,
    double: BotApiDouble,
    model: TriageModel,
    nlu_cache_dir: Path,
    tmp_path: Path,
    database_url: str,
) -> AsyncIterator[BotProcess]:
    env = bot_env(request, double, nlu_cache_dir, database_url)
    fresh = request.node.get_closest_marker("exec") is not None
    process = BotProcess(env, tmp_path / "bot.log", fresh=fresh)
    await process.start(double)
    yield process
    await process.stop()
    assert_clean_log(tmp_path / "bot.log")


class TgCustomer:
    """A person in Telegram: sends through the double, waits until the bot has answered."""

    def __init__(self, double: BotApiDouble, bot: BotProcess, user_id: int, name: str, lang: str):
        self.double = double
        self.bot = bot
        self.user_id = user_id
        double.add_user(user_id, name, lang)
        url = bot.env["DATABASE_URL"]
        self.db = Database(url)

    def _counts(self) -> tuple[int, int]:
        """(messages stored from this customer, bot messages not yet sent or failed)."""
        with self.db.session() as session:
            customer = session.exec(
                select(Customer).where(Customer.telegram_id == self.user_id)
            ).first()
            if customer is None:
                return 0, 0
            mine = select(Conversation.id).where(Conversation.customer_id == customer.id)
            stored = session.exec(
                select(func.count())
                .select_from(Message)
                .where(col(Message.conversation_id).in_(mine), Message.direction == "in")
            ).one()
            pending = session.exec(
                select(func.count())
                .select_from(Message)
                .where(
                    col(Message.conversation_id).in_(mine),
                    Message.direction == "out",
                    col(Message.outcome).is_(None),
                )
            ).one()
            return int(stored), int(pending)

    async def _settle(self, stored_before: int, expected: int = 1, timeout: float = 60) -> None:
        def done() -> bool:
            stored, pending = self._counts()
            return stored >= stored_before + expected and pending == 0

        await self.double.wait_for(done, timeout, "the bot to answer")

    async def say(self, text: str | None = None, **media: Any) -> list[dict[str, Any]]:
        before_out = len(self.double.sent_to(self.user_id))
        stored = self._counts()[0]
        self.double.user_sends(self.user_id, text, **media)
        await self._settle(stored)
        return self.double.sent_to(self.user_id)[before_out:]

    async def tap(self, label: str) -> list[dict[str, Any]]:
        """Press the button with this label (or starting with it) on the latest keyboard."""
        for message in reversed(self.double.sent_to(self.user_id)):
            for row in message.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"].startswith(label):
                        return await self.press(message["message_id"], button["callback_data"])
        raise AssertionError(f"no button {label!r} on screen")

    async def press(self, message_id: int, data: str) -> list[dict[str, Any]]:
        """Press a button; what the customer sees next: new messages, and first, when the
        bot continued the pressed message in place ("✓ choice" and the next question),
        that message with only its new part as text."""
        before_out = len(self.double.sent_to(self.user_id))
        pressed = self._message(message_id)
        before_text = pressed.get("text", "") if pressed else ""
        stored = self._counts()[0]
        query = self.double.user_presses(self.user_id, message_id, data)
        await self._settle(stored)
        await self.double.wait_for(lambda: self.double.callbacks[query]["answered"], 10, "answer")
        new = self.double.sent_to(self.user_id)[before_out:]
        now = self._message(message_id)
        head = before_text + "\n\n✓ "
        if pressed and now and now.get("text", "").startswith(head):
            _, sep, tail = now["text"][len(head) :].partition("\n\n")
            if sep and tail:
                new = [{**now, "text": tail}, *new]
        return new

    def _message(self, message_id: int) -> dict[str, Any] | None:
        for message in self.double.sent_to(self.user_id):
            if message["message_id"] == message_id:
                return message
        return None

    @property
    def keyboard(self) -> list[str]:
        for message in reversed(self.double.sent_to(self.user_id)):
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            if rows:
                return [button["text"] for row in rows for button in row]
        return []

    def close(self) -> None:
        self.db.dispose()


@pytest.fixture
def customers(double: BotApiDouble, bot: BotProcess) -> Iterator[Any]:
    made: list[TgCustomer] = []

    def make(user_id: int, name: str, lang: str = "en") -> TgCustomer:
        customer = TgCustomer(double, bot, user_id, name, lang)
        made.append(customer)
        return customer

    yield make
    for customer in made:
        customer.close()


def transcript(db: Database) -> dict[int, list[Message]]:
    """Every stored message, by the customer's Telegram id, in order."""
    with db.session() as session:
        rows = session.exec(
            select(Customer.telegram_id, Message)
            .join(Conversation, col(Conversation.customer_id) == col(Customer.id))
            .join(Message, col(Message.conversation_id) == col(Conversation.id))
            .order_by(col(Message.id))
        ).all()
    by_customer: dict[int, list[Message]] = {}
    for telegram_id, message in rows:
        by_customer.setdefault(telegram_id, []).append(message)
    return by_customer


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


async def wait(seconds: float) -> None:
    await asyncio.sleep(seconds)
