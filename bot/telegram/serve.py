"""How updates come in: long polling, or a webhook served by aiohttp; plus /healthz and
/metrics.

Either way an update is in the inbox (:class:`bot.telegram.intake.Inbox`) before
Telegram is told it arrived. The webhook refuses a request without the secret token
Telegram was given (403, not processed), answers 400 to a body that is not an update and
503 while the database is away (Telegram delivers it again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import text
from telegram import Bot, Update
from telegram.error import Forbidden, InvalidToken, NetworkError, TelegramError, TimedOut

from bot.config import Settings
from bot.store import Database
from bot.telegram.intake import DATABASE_DOWN, Dispatcher, Inbox, Outage, first_line
from bot.telegram.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

POLL_TIMEOUT = 10
"""Seconds a getUpdates call waits for news (long polling)."""
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = Update.ALL_TYPES
QUIET_FOR = 60.0
"""The same complaint about incoming requests is logged once per this many seconds."""


class Throttled:
    """Logs a repeated problem once, then once a minute with how often it happened."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warn(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        self._count[key] = self._count.get(key, 0) + 1
        if now - self._last.get(key, -QUIET_FOR) >= QUIET_FOR:
            times = self._count.pop(key)
            self._last[key] = now
            suffix = f" ({times} times since the last line)" if times > 1 else ""
            log.warning(message + suffix, *args)


def listen_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "0.0.0.0", int(port)


def webhook_path(url: str) -> str:
    return urlsplit(url).path or "/"


class Intake:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        inbox: Inbox,
        dispatcher: Dispatcher | None,
        metrics: Metrics,
        one_moment: Callable[[dict[str, Any]], Awaitable[None]],
        unreachable: Callable[[], set[int]] = set,
    ) -> None:
        self.settings = settings
        self.unreachable = unreachable
        """Members of staff the bot cannot write to privately (shown in /healthz)."""
        self.db = db
        self.inbox = inbox
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.one_moment = one_moment
        self.throttled = Throttled()
        self.outage = dispatcher.outage if dispatcher is not None else Outage()

    def _store(self, updates: list[dict[str, Any]]) -> list[int]:
        keys = self.inbox.store(updates)
        self.outage.ok()
        return keys

    # --- long polling ------------------------------------------------------------------

    async def poll(self, bot: Bot, stopping: asyncio.Event) -> None:
        """getUpdates until stopped; the offset moves on only past stored updates."""
        await _retry_network(lambda: bot.delete_webhook(drop_pending_updates=False))
        offset: int | None = None
        pause = 1.0
        while not stopping.is_set():
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES
                )
            except TimedOut:
                continue
            except (InvalidToken, Forbidden):
                raise
            except (NetworkError, TelegramError) as error:
                self.throttled.warn("poll", "getUpdates failed: %s", error)
                await asyncio.sleep(pause)
                # At most 5 s: customers written to during an outage are heard soon after
                # it (one long poll every 5 s costs Telegram nothing)
                pause = min(pause * 2, 5.0)
                continue
            pause = 1.0
            if not updates:
                continue
            batch = [update.to_dict() for update in updates]
            try:
                keys = self._store(batch)
            except DATABASE_DOWN as error:
                self.outage.failed(error)  # Telegram keeps the updates meanwhile
                for data in batch:
                    await self.one_moment(data)
                await asyncio.sleep(2.0)
                continue  # not acknowledged: Telegram gives them again
            offset = updates[-1].update_id + 1
            if self.dispatcher is not None:
                for key in dict.fromkeys(keys):
                    self.dispatcher.notify(key)
        if offset is not None:  # acknowledge what was stored before going
            with contextlib.suppress(TelegramError):
                await bot.get_updates(offset=offset, timeout=0, limit=1)

    # --- the HTTP server ---------------------------------------------------------------

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/metrics", self._metrics)
        if self.settings.webhook_url and self.dispatcher is not None:
            app.router.add_post(webhook_path(self.settings.webhook_url), self._webhook)
        return app

    async def serve(self, listen: str) -> web.AppRunner:
        runner = web.AppRunner(self.web_app(), access_log=None)
        await runner.setup()
        host, port = listen_address(listen)
        await web.TCPSite(runner, host, port).start()
        log.info("listening on %s:%s", host, port)
        return runner

    async def _webhook(self, request: web.Request) -> web.Response:
        secret = self.settings.webhook_secret or ""
        given = request.headers.get(SECRET_HEADER, "")
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            self.metrics.rejected.labels("secret").inc()
            self.throttled.warn(
                "secret", "webhook request from %s without the right secret: 403", request.remote
            )
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            self.metrics.rejected.labels("malformed").inc()
            self.throttled.warn("malformed", "webhook body is not a Telegram update: 400")
            return web.Response(status=400, text="not an update")
        try:
            keys = self._store([data])
        except DATABASE_DOWN as error:
            self.outage.failed(error)  # Telegram delivers it again later
            self.metrics.rejected.labels("unavailable").inc()
            await self.one_moment(data)
            return web.Response(status=503, text="try again")
        assert self.dispatcher is not None
        self.dispatcher.notify(keys[0])
        return web.Response(text="ok")

    async def _health(self, request: web.Request) -> web.Response:
        try:
            with self.db.session() as session:
                session.execute(text("SELECT 1"))
            pending = self.inbox.count_pending()
        except DATABASE_DOWN as error:
            return web.json_response({"status": "down", "database": first_line(error)}, status=503)
        return web.json_response(
            {
                "status": "ok",
                "mode": "webhook" if self.settings.webhook_url else "polling",
                "inbox_pending": pending,
                # never pressed Start: their alerts go to the staff group, mentioning them
                "staff_not_reachable_privately": sorted(self.unreachable()),
            }
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            body = self.metrics.render()
        except DATABASE_DOWN as error:
            return web.Response(status=503, text=f"database: {first_line(error)}\n")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _retry_network(call: Callable[[], Awaitable[Any]], attempts: int = 5) -> Any:
    pause = 1.0
    for attempt in range(attempts):
        try:
            return await call()
        except TimedOut:
            pass
        except NetworkError:
            if attempt == attempts - 1:
                raise
        await asyncio.sleep(pause)
        pause *= 2
    return await call()
