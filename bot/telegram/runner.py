"""`python -m bot run` and `python -m bot scheduler`: set up logging, the database and the
NLU, then run the front end until stopped (long polling or the webhook).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from bot import logmask
from bot.config import Settings
from bot.dialogue import Engine
from bot.nlu import NluService
from bot.store import Database
from bot.telegram.app import TelegramFrontEnd
from bot.telegram.intake import (
    Dispatcher,
    shared_leases,
)
from bot.telegram.serve import ALLOWED_UPDATES, Intake
from bot.telegram.wiring import STOP_GRACE, WEBHOOK_CONNECTIONS

log = logging.getLogger(__name__)


def run(settings: Settings, *, intake: bool = True) -> None:
    """Train or load the NLU, bring the database to the current schema, then take
    updates (long polling, or the webhook when WEBHOOK_URL is set) until stopped.
    ``intake=False`` (`python -m bot scheduler`): follow-ups and the watch only."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logmask.install()
    for chatty in ("httpx", "rasa_sdk", "apscheduler", "aiohttp.access", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    db = Database(settings.database_url)
    db.upgrade()
    nlu = NluService(settings)
    if intake:
        # Ready before the first customer writes: the model, jieba's dictionary, imports.
        nlu.model.parse_batch(["你好，我的快递还没到", "hello, my parcel is late"])
    engine = Engine(settings, db=db, nlu=nlu)
    try:
        asyncio.run(_serve(settings, TelegramFrontEnd(settings, engine), intake=intake))
    finally:
        db.dispose()


async def _serve(settings: Settings, front: TelegramFrontEnd, *, intake: bool) -> None:
    application = front.build()
    db = front.engine.db
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for name in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(name, stopping.set)
    await application.initialize()
    runner = None
    poller: asyncio.Task[None] | None = None
    dispatcher = None
    try:
        await front.start(application)
        if intake:
            # Several processes on one database take turns on a chat (a lease row);
            # one process on SQLite needs no more than its own order.
            dispatcher = Dispatcher(
                front.inbox, front.handle_stored, leases=shared_leases(db), consumed=front.consumed
            )
        gate = Intake(
            settings,
            db,
            front.inbox,
            dispatcher,
            front.metrics,
            front.one_moment,
            unreachable=lambda: front.desk.unreachable,
        )
        if settings.webhook_url or settings.listen:
            runner = await gate.serve(settings.listen or "127.0.0.1:8080")
        if dispatcher is not None:
            dispatcher.start()  # first what a previous run left undone
            if settings.webhook_url:
                await application.bot.set_webhook(
                    settings.webhook_url,
                    secret_token=settings.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                    max_connections=WEBHOOK_CONNECTIONS,
                )
                log.info("webhook %s", settings.webhook_url)
            else:
                poller = asyncio.create_task(gate.poll(application.bot, stopping))
                log.info("polling %s", settings.telegram_api_base_url)
        stop = asyncio.create_task(stopping.wait())
        waits: list[asyncio.Task[Any]] = [stop] + ([poller] if poller else [])
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if poller is not None and poller.done() and not stopping.is_set():
            stop.cancel()
            poller.result()  # a fatal polling error (a wrong token): raise it
    finally:
        if poller is not None and not poller.done():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if runner is not None:
            await runner.cleanup()  # no new updates; then finish those being handled
        if dispatcher is not None:
            await dispatcher.drain(STOP_GRACE)
            await dispatcher.stop()
        await front.stop(application)
        await application.shutdown()
