"""The inbox: every update is written down before Telegram hears "received".

Telegram forgets an update once it is acknowledged: by the next ``getUpdates`` in long
polling, by the HTTP 200 in webhook mode. python-telegram-bot acknowledges first and
processes later, so a crash in between loses what was in memory. Here the order is:

1. store the update (:class:`Inbox`, table ``inbound_update``), commit;
2. acknowledge it (the next ``getUpdates`` offset, or the 200);
3. process it (:class:`Dispatcher`): updates of one chat one after another in
   ``update_id`` order, chats side by side; ``done_at`` is set when it has been handled.

After a crash, rows without ``done_at`` are processed on start-up. With several
processes on one PostgreSQL database a chat is worked on by one process at a time: a
:class:`Leases` row ``chat:<id>`` is the lock, and it expires by itself if its holder
dies. A database that does not answer leaves the update unacknowledged (polling) or
answers 503 (webhook), so Telegram delivers it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import col, func, select

from bot.store import Database
from bot.store.models import InboundUpdate, Lease, utcnow
from bot.store.privacy import prune_inbox

log = logging.getLogger(__name__)

LEASE_TIME = timedelta(seconds=60)
"""A chat lease outlives any one turn; a dead holder's lease is free after this."""
SWEEP_EVERY = 1.0
"""Seconds between looks for stored updates nobody is working on."""
BATCH = 20
CONCURRENT_CHATS = 32
"""Chats handled at once. Turns are mostly CPU (NLU, database): more at once does not
finish them sooner, it makes each wait longer for the event loop — and a reply sent
but not yet recorded when the process dies is the one that may be sent twice."""
MAX_ATTEMPTS = 3
"""An update whose handling fails this often (a fault, not the database) is set aside."""
DATABASE_DOWN = (OperationalError, DBAPIError)


def chat_key(data: dict[str, Any]) -> int:
    """The chat an update belongs to (a button press: the chat of its message), else the
    user; 0 for updates that have neither."""
    for value in data.values():
        if not isinstance(value, dict):
            continue
        for holder in (value, value.get("message")):
            chat = holder.get("chat") if isinstance(holder, dict) else None
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                return int(chat["id"])
        for name in ("from", "user"):
            user = value.get(name)
            if isinstance(user, dict) and isinstance(user.get("id"), int):
                return int(user["id"])
    return 0


class Outage:
    """Whether the database answers, as the intake and the dispatcher find it: an
    outage is logged once when it starts and once when it ends, however often it is hit."""

    def __init__(self) -> None:
        self.down = False

    def failed(self, error: BaseException) -> None:
        if not self.down:
            self.down = True
            log.error(
                "database not answering (%s); updates wait until it is back", first_line(error)
            )

    def ok(self) -> None:
        if self.down:
            self.down = False
            log.warning("database answers again; the updates that waited are handled")


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Inbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def store(self, updates: list[dict[str, Any]]) -> list[int]:
        """Write updates not stored before, in one transaction; their chat keys."""
        if not updates:
            return []
        ids = [int(data["update_id"]) for data in updates]
        with self.db.session() as session:
            known = set(
                session.exec(
                    select(InboundUpdate.update_id).where(col(InboundUpdate.update_id).in_(ids))
                )
            )
            keys = []
            for data in updates:
                key = chat_key(data)
                keys.append(key)
                if data["update_id"] in known:
                    continue
                known.add(data["update_id"])
                session.add(_row(data, key))
            try:
                session.commit()
            except IntegrityError:  # another process stored the same update just now
                session.rollback()
                return self._store_one_by_one(updates)
        return keys

    def _store_one_by_one(self, updates: list[dict[str, Any]]) -> list[int]:
        keys = []
        for data in updates:
            keys.append(chat_key(data))
            with self.db.session() as session:
                if session.get(InboundUpdate, data["update_id"]) is not None:
                    continue
                session.add(_row(data, keys[-1]))
                with contextlib.suppress(IntegrityError):
                    session.commit()
        return keys

    def pending(self, key: int, limit: int = BATCH) -> list[InboundUpdate]:
        with self.db.session() as session:
            return list(
                session.exec(
                    select(InboundUpdate)
                    .where(InboundUpdate.chat_key == key, col(InboundUpdate.done_at).is_(None))
                    .order_by(col(InboundUpdate.update_id))
                    .limit(limit)
                )
            )

    def pending_keys(self, limit: int = 1000) -> list[int]:
        with self.db.session() as session:
            return list(
                session.exec(
                    select(InboundUpdate.chat_key)
                    .where(col(InboundUpdate.done_at).is_(None))
                    .group_by(col(InboundUpdate.chat_key))
                    .order_by(func.min(InboundUpdate.update_id))
                    .limit(limit)
                )
            )

    def count_pending(self) -> int:
        with self.db.session() as session:
            return int(
                session.exec(
                    select(func.count())
                    .select_from(InboundUpdate)
                    .where(col(InboundUpdate.done_at).is_(None))
                ).one()
            )

    def done(self, update_id: int, error: str | None = None) -> None:
        with self.db.session() as session:
            session.execute(
                update(InboundUpdate)
                .where(col(InboundUpdate.update_id) == update_id)
                .values(done_at=utcnow(), error=error)
            )
            session.commit()

    def failed(self, update_id: int, error: str) -> int:
        """One more failed attempt; how many there have been."""
        with self.db.session() as session:
            row = session.get(InboundUpdate, update_id)
            if row is None:
                return MAX_ATTEMPTS
            row.attempts += 1
            row.error = error[:500]
            session.add(row)
            session.commit()
            return row.attempts

    def prune(self, before: datetime) -> int:
        """Handled updates older than a time are forgotten (bot/store/privacy.py)."""
        with self.db.session() as session:
            gone = prune_inbox(session, before=before)
            session.commit()
            return gone


class Leases:
    """Named locks in the database, each held by one process until it expires."""

    def __init__(self, db: Database, holder: str | None = None) -> None:
        self.db = db
        self.holder = holder or holder_name()

    def acquire(self, name: str, duration: timedelta = LEASE_TIME) -> bool:
        """Take the lease if it is free, expired, ours, or held by a process of this
        machine that no longer exists (killed: it cannot release)."""
        now = utcnow()
        with self.db.session() as session:
            session.add(Lease(name=name, holder=self.holder, until=now + duration))
            try:
                session.commit()
                return True
            except IntegrityError:
                session.rollback()
        with self.db.session() as session:
            current = session.get(Lease, name)
            if current is None:  # released in between: the next look takes it
                return False
            takeable = current.until < now or current.holder == self.holder or _dead(current.holder)
            if not takeable:
                return False
            result = session.execute(
                update(Lease)
                .where(col(Lease.name) == name, col(Lease.holder) == current.holder)
                .values(holder=self.holder, until=now + duration)
            )
            session.commit()
            return bool(getattr(result, "rowcount", 0))

    def release(self, name: str) -> None:
        with self.db.session() as session:
            session.execute(
                delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == self.holder)
            )
            session.commit()


Handler = Callable[[InboundUpdate], Awaitable[bool]]
"""Handles one stored update: True when it is done with, False to try again later."""


def shared_leases(db: Database) -> Leases | None:
    """Leases for lanes several processes may run on one database (PostgreSQL); None on
    SQLite, where one process's own order is enough."""
    return None if db.url.startswith("sqlite") else Leases(db)


class Dispatcher:
    """Works through the inbox: one task per chat with stored updates, in order."""

    def __init__(
        self,
        inbox: Inbox,
        handle: Handler,
        *,
        leases: Leases | None = None,
        concurrency: int = CONCURRENT_CHATS,
        outage: Outage | None = None,
        consumed: set[int] | None = None,
    ) -> None:
        self.inbox = inbox
        self.consumed = consumed if consumed is not None else set()
        """Updates the handler took in with an earlier one (merged lines): skipped."""
        self.handle = handle
        self.leases = leases
        self._gate = asyncio.Semaphore(concurrency)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.outage = outage or Outage()

    def start(self) -> None:
        """Picks up what a previous run left undone, then keeps an eye on the inbox."""
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        tasks = [task for task in (self._sweeper, *self._tasks.values()) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self, timeout: float) -> None:
        """Wait (up to a time) for the updates being handled to finish: a clean stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._tasks:
                    await asyncio.sleep(0.05)

    def notify(self, key: int) -> None:
        if key in self._tasks:
            self._again.add(key)
            return
        self._tasks[key] = asyncio.create_task(self._run(key))

    async def _run(self, key: int) -> None:
        lease = f"chat:{key}"
        try:
            async with self._gate:
                while True:
                    self._again.discard(key)
                    if self.leases is not None and not self.leases.acquire(lease):
                        return  # another process has this chat; the sweep looks again
                    try:
                        await self._drain(key)
                    finally:
                        if self.leases is not None:
                            self.leases.release(lease)
                    if key not in self._again:
                        return
        except DATABASE_DOWN as error:
            self.outage.failed(error)
        finally:
            self._tasks.pop(key, None)

    async def _drain(self, key: int) -> None:
        pause = 0.5
        while True:
            rows = self.inbox.pending(key)
            if not rows:
                return
            for row in rows:
                if row.update_id in self.consumed:
                    self.consumed.discard(row.update_id)
                    continue
                if not await self.handle(row):
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 10.0)
                    break
                self.outage.ok()
            if self.leases is not None:
                self.leases.acquire(f"chat:{key}")  # renew while working

    async def _sweep_forever(self) -> None:
        while True:
            try:
                for key in self.inbox.pending_keys():
                    if key not in self._tasks:
                        self.notify(key)
            except DATABASE_DOWN as error:
                self.outage.failed(error)
            await asyncio.sleep(SWEEP_EVERY)


def _row(data: dict[str, Any], key: int) -> InboundUpdate:
    return InboundUpdate(
        update_id=data["update_id"], chat_key=key, body=json.dumps(data, ensure_ascii=False)
    )


def _dead(holder: str) -> bool:
    """A holder of this machine whose process is gone."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def first_line(error: BaseException) -> str:
    """An error's first line, for a log line or an answer (never empty)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
