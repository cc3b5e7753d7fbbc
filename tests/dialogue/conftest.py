"""A customer talking to the real engine (real NLU, actions, SQLite) without a channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.dialogue import Engine, Incoming, Reply
from bot.dialogue.actions_client import ActionRunner
from bot.nlu import NluService
from bot.nlu.model import TriageModel
from bot.store import Database, Ticket

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 11:00 in Asia/Shanghai, a Sunday


class Customer:
    """Types or taps like a person in a chat; remembers the last buttons shown."""

    def __init__(
        self, engine: Engine, *, user_id: int = 1001, name: str = "Anna", lang: str = "en"
    ):
        self.engine = engine
        self.user_id = user_id
        self.name = name
        self.lang = lang
        self.replies: list[Reply] = []
        self.history: list[Reply] = []
        self.status = "open"
        self.stage = "idle"
        self.conversation_id = 0

    async def say(self, text: str) -> list[Reply]:
        return await self._send(text=text, payload=None)

    async def tap(self, label: str) -> list[Reply]:
        """Press the button whose label is (or starts with) ``label``, or has that payload."""
        for reply in reversed(self.replies):
            for button in reply.buttons:
                if button.label.startswith(label) or button.payload == label:
                    return await self._send(text=button.label, payload=button.payload)
        shown = [b.label for r in self.replies for b in r.buttons]
        raise AssertionError(f"no button {label!r}; shown: {shown}")

    async def press(self, payload: str) -> list[Reply]:
        """Send a button's payload as Telegram would, even one no longer on screen."""
        return await self._send(text=None, payload=payload)

    async def answer_questions(self, typed: dict[str, str] | None = None) -> list[str]:
        """Answer each closed question with its first button (or ``typed`` text) until
        the read-back; return the questions asked."""
        asked = []
        while self.keys and self.keys[-1].startswith("utter_ask_") and len(asked) < 12:
            key = self.keys[-1]
            asked.append(key)
            if typed and key in typed:
                await self.say(typed[key])
            elif self.replies[-1].buttons:
                await self.press(self.replies[-1].buttons[0].payload)
            elif self.lang == "zh":
                await self.say("在市中心那家店买的")
            else:
                await self.say("I bought it in the shop on Main Street")
        return asked

    async def agree(self, outcome: str) -> list[Reply]:
        """Confirm the restatement; pick ``outcome`` if the bot asks what outcome they want."""
        replies = await self.tap(self.replies[-1].buttons[0].label)
        if self.keys[-1] == "utter_ask_outcome":
            replies = await self.tap(outcome)
        return replies

    async def _send(self, *, text: str | None, payload: str | None) -> list[Reply]:
        result = await self.engine.handle(
            Incoming(
                user_id=self.user_id,
                chat_id=self.user_id,
                name=self.name,
                text=text,
                payload=payload,
                language_hint=self.lang,
            )
        )
        self.replies = result.replies
        self.history += result.replies
        self.status, self.stage = result.status, result.stage
        self.conversation_id = result.conversation_id
        return result.replies

    @property
    def keys(self) -> list[str]:
        return [key for reply in self.replies for key in reply.responses]

    @property
    def all_keys(self) -> list[str]:
        return [key for reply in self.history for key in reply.responses]

    @property
    def text(self) -> str:
        return "\n".join(reply.text for reply in self.replies)

    @property
    def buttons(self) -> list[str]:
        return [button.label for reply in self.replies for button in reply.buttons]

    def ticket(self) -> Ticket:
        with self.engine.db.session() as session:
            ticket = session.exec(
                select(Ticket).where(Ticket.conversation_id == self.conversation_id)
            ).first()
            assert ticket is not None, "no ticket"
            return ticket


def make_engine(
    settings: Settings, model: TriageModel, actions: ActionRunner | None = None, **kw: Any
) -> Engine:
    db = Database(settings.database_url)
    db.upgrade()
    return Engine(
        settings,
        db=db,
        nlu=NluService(settings, model=model),
        actions=actions,
        clock=kw.get("clock", lambda: NOW),
    )


@pytest.fixture
async def engine(settings: Settings, model: TriageModel) -> AsyncIterator[Engine]:
    engine = make_engine(settings, model)
    yield engine
    await engine.close()
    engine.db.dispose()


STAFF_CHAT = -1001234567890


@pytest.fixture
async def staffed(settings: Settings, model: TriageModel) -> AsyncIterator[Engine]:
    """An engine with a staff group: what the agents are to see is written as rows."""
    engine = make_engine(settings.model_copy(update={"staff_chat_id": STAFF_CHAT}), model)
    yield engine
    await engine.close()
    engine.db.dispose()


@pytest.fixture
def anna(engine: Engine) -> Customer:
    return Customer(engine)


@pytest.fixture
def li(engine: Engine) -> Customer:
    return Customer(engine, user_id=2002, name="李雷", lang="zh")
