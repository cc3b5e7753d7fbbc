"""The Telegram front end's ground floor: building python-telegram-bot's Application (its
rate limiter and HTTP layer) and wiring the staff desk, its lanes, the outboxes and
the metrics together; the constants and helpers the layers above share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, TypeVar

from telegram import (
    Message,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter, Application

from bot.config import Settings
from bot.dialogue import Engine
from bot.telegram.followups import FollowUpKinds
from bot.telegram.intake import (
    Inbox,
    Leases,
    shared_leases,
)
from bot.telegram.lanes import StaffLanes
from bot.telegram.metrics import Metrics
from bot.telegram.outbox import Outbox, StaffRows
from bot.telegram.private import AgentChat
from bot.telegram.request import AiohttpRequest, retry_seconds
from bot.telegram.staff import StaffDesk
from bot.telegram.watch import WaitingWatch

log = logging.getLogger(__name__)
T = TypeVar("T")

SEND_ATTEMPTS = 5
WEBHOOK_CONNECTIONS = 40
"""Telegram's default number of webhook requests in flight at once."""
STOP_GRACE = 10.0
"""Seconds a stopping process gives the updates it is handling to finish."""
SCHEDULER_LEASE = timedelta(seconds=60)
CONNECTION_POOL = 32
BEHIND = 1.0
"""Seconds from a customer's update arriving to its replies having left (averaged over
the last few) above which the bot is behind — waiting for Telegram's 30 messages a
second, or with updates queueing in the inbox: it then spends no requests on extras —
the "✓ choice" edit of a pressed keyboard, "typing…" — so the replies themselves go
first. (A keyboard left in place still works: a second press is answered as expired.)
A press on the latest keyboard still continues its message (one edit instead of a new
message: no extra request)."""
ANSWER_WITHIN = timedelta(seconds=14)
"""How long after a press arrived its answerCallbackQuery is still worth sending:
Telegram refuses answers after about 15 seconds ("query is too old"), so a press that
waited longer in the inbox (the bot was behind, or down) is handled without one."""
MERGED: ContextVar[tuple[dict[str, Any], ...]] = ContextVar("merged", default=())
"""Messages typed right after the one being handled, joined to its turn (MERGE_WINDOW)."""
MAX_TEXT = 4096
"""Telegram's limit on a message's text, also for an edit."""
ARRIVED: ContextVar[datetime | None] = ContextVar("arrived", default=None)
"""When the update this task is handling was received (set by handle_stored)."""
TYPING_AFTER = 0.6
"""Seconds a reply may take before the customer sees "typing…"."""
COMMANDS = {
    "en": [
        ("start", "Start or continue"),
        ("help", "What I can do"),
        ("cancel", "Stop the current conversation"),
        ("lang", "中文 / English"),
        ("privacy", "What we keep and why"),
        ("forget", "Erase my data"),
    ],
    "zh": [
        ("start", "开始或继续"),
        ("help", "我能帮您做什么"),
        ("cancel", "结束当前对话"),
        ("lang", "切换 中文 / English"),
        ("privacy", "我们保存哪些信息"),
        ("forget", "删除我的信息"),
    ],
}
STAFF_COMMANDS = {
    "en": [
        ("queue", "Tickets waiting"),
        ("take", "Take the next ticket, or /take N"),
        ("mine", "My tickets and promises"),
        ("away", "Stop receiving transfers"),
        ("available", "Back at work"),
    ],
    "zh": [
        ("queue", "排队中的工单"),
        ("take", "接下一个工单，或 /take 编号"),
        ("mine", "我的工单和承诺"),
        ("away", "暂时离开，不接收转交"),
        ("available", "恢复在岗"),
    ],
}
MEDIA_KINDS = ("contact", "location", "voice", "video_note", "audio", "video", "sticker")


def file_url(base_url: str) -> str:
    """The file endpoint beside a Bot API base URL (…/bot -> …/file/bot)."""
    head, sep, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}" if sep else base_url.rstrip("/") + "/file/bot"


HANDLED_KINDS = frozenset(
    {"message", "edited_message", "callback_query", "chat_member", "my_chat_member"}
)


def plain_text_from(data: dict[str, Any]) -> int | None:
    """The sender of an update that is a customer's plain typed line in a private chat
    (no command, no media, not an edit), else None."""
    message = data.get("message")
    if not isinstance(message, dict) or (message.get("chat") or {}).get("type") != "private":
        return None
    text = message.get("text")
    sender = (message.get("from") or {}).get("id")
    if not isinstance(text, str) or text.startswith("/") or not isinstance(sender, int):
        return None
    return sender


def kinds_of(data: dict[str, Any]) -> str:
    return ", ".join(sorted(key for key in data if key != "update_id")) or "empty"


def known_kind(data: dict[str, Any]) -> bool:
    return any(key in HANDLED_KINDS for key in data)


def media_of(message: Message) -> dict[str, Any] | None:
    if message.photo:
        return {"kind": "photo", "file_id": message.photo[-1].file_id}
    if message.document is not None:
        return {"kind": "document", "file_id": message.document.file_id}
    if message.contact is not None:
        return {"kind": "contact", "phone_number": message.contact.phone_number}
    if message.location is not None:
        return {
            "kind": "location",
            "latitude": message.location.latitude,
            "longitude": message.location.longitude,
        }
    for kind in MEDIA_KINDS[2:]:
        if getattr(message, kind, None) is not None:
            return {"kind": kind}
    if message.text is None and message.caption is None:
        return {"kind": "other"}
    return None


def pressed_label(message: Message | None, data: str | None) -> str | None:
    if message is None or message.reply_markup is None:
        return None
    for row in message.reply_markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


class Wiring:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.desk = StaffDesk.of(engine)
        self.agents = AgentChat(self.desk)
        self.watch = WaitingWatch(self.desk)
        self._watch_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self.followups: FollowUpKinds | None = None
        self.inbox = Inbox(engine.db)
        self.metrics = Metrics(engine.db)
        self.lanes = StaffLanes(
            self.desk,
            Leases(engine.db),
            on_outcome=lambda outcome: self.metrics.posted.labels(outcome).inc(),
        )
        self.desk.posting = self.lanes.posts
        self.metrics.staff_queue.set_function(lambda: self.lanes.pending)
        self.outbox = Outbox(
            engine.db,
            shared_leases(engine.db),  # several processes share a chat's rows on PostgreSQL
            on_outcome=lambda outcome: self.metrics.sent.labels(outcome).inc(),
            on_failed=self.desk.not_delivered,
        )
        self.desk.outbox = self.outbox
        self.staff_outbox = Outbox(
            engine.db,
            shared_leases(engine.db),
            rows=StaffRows(),
            on_outcome=lambda outcome: self.metrics.staff_sent.labels(outcome).inc(),
            on_failed=self.desk.staff_not_delivered,
            on_sent=self.desk.staff_sent,
            on_migrated=self.desk.migrated,
        )
        self.desk.staff_outbox = self.staff_outbox
        self.application: Application | None = None
        self._lag = 0.0
        """Seconds from a customer's update arriving to its replies having left, a moving
        average (see BEHIND)."""
        self._told_to_wait: set[int] = set()
        """Chats told "one moment" while the database is away (told once per outage)."""
        self.consumed: set[int] = set()
        """Stored updates handled as part of an earlier one's turn (merged lines): the
        dispatcher skips them."""

    def build(self) -> Application:
        assert self.settings.telegram_bot_token
        application = (
            Application.builder()
            .token(self.settings.telegram_bot_token)
            .base_url(self.settings.telegram_api_base_url)
            .base_file_url(file_url(self.settings.telegram_api_base_url))
            .rate_limiter(
                AIORateLimiter(
                    overall_max_rate=self.settings.telegram_max_rate,
                    # TELEGRAM_MAX_RATE=0 (benchmarks against a double) lifts both caps
                    group_max_rate=20 if self.settings.telegram_max_rate else 0,
                    max_retries=SEND_ATTEMPTS,
                )
            )
            # The inbox receives updates (bot.telegram.intake), not PTB's Updater: PTB
            # acknowledges an update before handling it and loses it in a crash.
            .updater(None)
            # PTB's HTTP layer on aiohttp: httpx/httpcore cost more CPU per call than
            # the NLU under load (docs/benchmarks.md). 32 connections keep requests flowing.
            .request(
                AiohttpRequest(
                    connection_pool_size=CONNECTION_POOL, on_flood=self.metrics.flood.inc
                )
            )
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
            .build()
        )
        self.application = application
        return application

    def _behind(self, what: str) -> bool:
        """Whether customers wait for their replies now; if so an extra is skipped."""
        if self._lag <= BEHIND:
            return False
        self.metrics.skipped.labels(what).inc()
        return True

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Network errors and a 429 that got past the rate limiter: wait and try again."""
        delay = 0.5
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await call()
            except RetryAfter as error:
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(retry_seconds(error.retry_after))
            except (BadRequest, Forbidden):
                raise
            except NetworkError:
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")
