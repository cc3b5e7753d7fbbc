"""Every message to a customer or to staff is a row, and one sender delivers the rows.

What the bot says to a customer — a turn's replies, an agent's words, a status, a
check-in, a follow-up question — is a ``Message`` row (direction "out") written in the
same transaction as the decision that made it; an alert or a note for staff is a
``StaffMessage`` row (:class:`StaffRows`, a second :class:`Outbox`); a line for a
ticket's topic in the staff group is a ``StaffPost`` row (``TopicRows`` in
bot/telegram/lanes.py, a third, whose lanes are tickets). A row's ``outcome``
stays empty until it has gone ("sent") or never will ("blocked", "chat_not_found",
"refused", "unconfirmed").

The :class:`Outbox` delivers them, one *lane* (a task) per chat, in id order: a chat's
later rows wait behind an earlier one that has not gone, so a customer never reads reply
2 without reply 1. Telegram being away — refused connections, 5xx answers, timeouts of a
request that never left — is waited out with backoff and no limit on how long a row may
wait; a 429 is waited out for its ``retry_after``. Telegram's limits are kept before
that: PTB's ``AIORateLimiter`` keeps to 30/s overall and 20/min per group, and each lane
to about one message a second per private chat (:class:`Pace`: a turn's two or three
replies go at once, a longer run — a backlog after an outage — one a second). A row is
sent at most once: the request marks ``send_started_at`` as its body leaves
(:class:`bot.telegram.request.ReplyMark`) and a row so marked whose answer never came is
not sent again ("unconfirmed"); one whose request provably never left, or that Telegram
refused with an answer, is tried again.

A turn awaits its chat's lane for a while (``SEND_WAIT``); if Telegram is away the turn
ends and the lane goes on. After a crash or a stop, :meth:`Outbox.sweep` (at start-up
and every ``SWEEP_EVERY``) starts a lane for each chat with rows waiting. With several
processes, one of them sends a given chat's rows at a time (the lease ``send:<chat>``).

Why this module is over 400 lines: one sender: the lanes, the pacing, the at-most-once
mark and the recorded outcomes are the delivery rules (issue 17), read and changed
together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, func, select
from sqlmodel import update as sa_update
from telegram import Bot, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.dialogue import Button
from bot.store import Conversation, Database, Message, StaffMessage, StaffPost
from bot.store.models import utcnow
from bot.telegram.intake import DATABASE_DOWN, Leases
from bot.telegram.render import escape, keyboard, split_text
from bot.telegram.request import ON_SEND, ReplyMark, retry_seconds

log = logging.getLogger(__name__)

SEND_WAIT = 10.0
"""Seconds a turn waits for its chat's rows to go before it ends (the lane goes on)."""
FIRST_DELAY = 0.5
MAX_DELAY = 4.0
"""The longest pause between two tries of a row while Telegram is away: the backlog
starts moving within this long of Telegram coming back."""
SWEEP_EVERY = 5.0
SWEEP_AGE = timedelta(seconds=10)
"""The sweep leaves rows this young to the turn that wrote them (it is sending them)."""
LANE_LEASE = timedelta(minutes=2)
PER_CHAT_RATE = 1.0
"""Messages a second to one private chat, on average (Telegram asks for about one)."""
PER_CHAT_BURST = 3.0
"""Messages to one private chat that may go at once (a turn's replies)."""
PERMANENT = ("blocked", "chat_not_found", "refused")
"""Outcomes of rows Telegram will never take: the ticket's topic hears of them."""

Failed = Callable[[Bot, Any, str, str], Awaitable[None]]
"""Told of a row that cannot be delivered: (bot, row, outcome, Telegram's words)."""


@dataclass
class Copy:
    """A row that is a copy of a message in another chat (an agent's photo or file)."""

    from_chat_id: int
    message_id: int

    def payload(self) -> str:
        return json.dumps({"copy": [self.from_chat_id, self.message_id]})

    @staticmethod
    def of(row: Message) -> Copy | None:
        if row.payload is None or not row.payload.startswith('{"copy"'):
            return None
        chat, message = json.loads(row.payload)["copy"]
        return Copy(int(chat), int(message))


Row = Message | StaffMessage | StaffPost


class RowSource(Protocol):
    """Which rows an :class:`Outbox` delivers, and how one goes to Telegram. A *chat* is
    the key of a lane: a Telegram chat for messages, a ticket for lines of its topic."""

    table: type[Row]
    lease: str
    left_over: str
    """The log's line when a sweep finds rows a previous run left ("%d": how many lanes)."""

    def next(self, session: Session, chat_id: int) -> Row | None:
        """The chat's next row to go (None: nothing, or nothing may go yet)."""

    def chats(self, session: Session, before: datetime) -> list[int]:
        """Chats with rows written before `before` still waiting."""

    async def send(self, bot: Bot, chat_id: int, row: Row) -> int | None:
        """Send the row: the (last) Telegram message id, if there is one to keep."""


class Undeliverable(Exception):
    """A row that will never go, for a reason of its own (its outcome), not Telegram's:
    a line for a ticket that no longer exists, a kind nobody knows, a fault."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class NoPace:
    """No pace of its own: lanes whose requests go to the staff group, which PTB's
    AIORateLimiter already keeps to 20 a minute."""

    def delay(self, chat_id: int, now: float) -> float:
        return 0.0

    def refused(self, chat_id: int, now: float) -> None:
        return None


class Pace:
    """A token bucket per private chat: `burst` messages at once, then `rate` a second.
    Group chats are left to PTB's AIORateLimiter (20 a minute per group)."""

    def __init__(self, rate: float = PER_CHAT_RATE, burst: float = PER_CHAT_BURST) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, when)

    def delay(self, chat_id: int, now: float) -> float:
        """Seconds to wait before the chat's next message may go; takes its token."""
        if chat_id < 0:
            return 0.0
        tokens, then = self._buckets.get(chat_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate) - 1.0
        self._buckets[chat_id] = (tokens, now)
        if len(self._buckets) > 10_000:  # chats idle long enough are full again anyway
            self._forget(now)
        return max(0.0, -tokens / self.rate)

    def refused(self, chat_id: int, now: float) -> None:
        """Telegram answered 429 and its retry_after has been waited out: the next
        message goes at once (Telegram's own wait is the pace now), then one a second."""
        if chat_id >= 0:
            self._buckets[chat_id] = (1.0, now)

    def _forget(self, now: float) -> None:
        full = self.burst / self.rate
        for chat_id, (_, then) in list(self._buckets.items()):
            if now - then > full:
                del self._buckets[chat_id]


class CustomerRows:
    """Messages to customers: `message` rows (direction "out") of the chat's
    conversations."""

    table: type[Row] = Message
    lease = "send"
    left_over = "sending the waiting messages of %d chat(s)"

    def next(self, session: Session, chat_id: int) -> Row | None:
        return session.exec(
            select(Message)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(Conversation.chat_id == chat_id, *_pending(Message))
            .order_by(col(Message.id))
            .limit(1)
        ).first()

    def chats(self, session: Session, before: datetime) -> list[int]:
        return list(
            session.exec(
                select(Conversation.chat_id)
                .join(Message, col(Message.conversation_id) == col(Conversation.id))
                .where(*_pending(Message), col(Message.created_at) <= before)
                .distinct()
                .limit(1000)
            )
        )

    async def send(self, bot: Bot, chat_id: int, row: Row) -> int:
        assert isinstance(row, Message)
        copy = Copy.of(row)
        if copy is not None:
            copied = await bot.copy_message(chat_id, copy.from_chat_id, copy.message_id)
            return copied.message_id
        # cut the plain text, then escape each piece: a cut never falls inside "&amp;"
        pieces = [escape(piece) for piece in split_text(row.text)] or [" "]
        return await _send_pieces(bot, chat_id, pieces, keyboard(_buttons(row)))


class StaffRows:
    """Alerts and notes for staff, and posts in the staff group: `staff_message` rows."""

    table: type[Row] = StaffMessage
    lease = "staff-send"
    left_over = "sending the waiting staff messages of %d chat(s)"

    def next(self, session: Session, chat_id: int) -> Row | None:
        return session.exec(
            select(StaffMessage)
            .where(StaffMessage.chat_id == chat_id, *_pending(StaffMessage))
            .order_by(col(StaffMessage.id))
            .limit(1)
        ).first()

    def chats(self, session: Session, before: datetime) -> list[int]:
        return list(
            session.exec(
                select(StaffMessage.chat_id)
                .where(*_pending(StaffMessage), col(StaffMessage.created_at) <= before)
                .distinct()
                .limit(1000)
            )
        )

    async def send(self, bot: Bot, chat_id: int, row: Row) -> int:
        assert isinstance(row, StaffMessage)
        if row.photo is not None:  # a report's chart, its title the caption
            picture = InputFile(row.photo, filename=f"chart-{row.id}.png")
            sent = await bot.send_photo(
                chat_id, picture, caption=row.text, parse_mode=ParseMode.HTML
            )
            return sent.message_id
        markup = InlineKeyboardMarkup.de_json(row.markup, bot) if row.markup else None
        try:
            return await _send_pieces(bot, chat_id, [row.text], markup, row.thread_id)
        except BadRequest as error:
            if row.thread_id is None or not topic_gone(error):
                raise
            # the ticket's topic was deleted: the group's General topic instead
            return await _send_pieces(bot, chat_id, [row.text], markup)


class Outbox:
    def __init__(
        self,
        db: Database,
        leases: Leases | None,
        *,
        rows: RowSource | None = None,
        pace: Pace | NoPace | None = None,
        on_outcome: Callable[[str], object] | None = None,
        on_failed: Failed | None = None,
        on_sent: Callable[[Any], object] | None = None,
        on_migrated: Callable[[int, int], object] | None = None,
    ) -> None:
        self.db = db
        self.rows: RowSource = rows or CustomerRows()
        self.leases = leases
        """None with one process (SQLite): its lanes are its own order."""
        self.bot: Bot | None = None
        self.on_outcome = on_outcome
        """Called with each row's outcome (counted in /metrics)."""
        self.on_failed = on_failed
        self.on_sent = on_sent
        self.on_migrated = on_migrated
        self._lanes: dict[int, asyncio.Task[None]] = {}
        self._held: set[int] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.pace = pace or Pace()

    # --- the turn's side ---------------------------------------------------------------

    def start(self, bot: Bot) -> None:
        """Send what a previous run left, then keep an eye on rows left waiting."""
        self.bot = bot
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def deliver(self, chat_id: int, wait: float = SEND_WAIT) -> None:
        """Send the chat's waiting rows, in order; returns when they have gone, or after
        `wait` seconds with the lane still at it (Telegram is away)."""
        task = self.kick(chat_id)
        if task is not None:
            await asyncio.wait({task}, timeout=wait)

    def kick(self, chat_id: int) -> asyncio.Task[None] | None:
        """Make sure the chat's lane runs (not while a turn holds the chat)."""
        if chat_id in self._held or self.bot is None:
            return None
        task = self._lanes.get(chat_id)
        if task is None or task.done():
            task = asyncio.create_task(self._lane(chat_id))
            self._lanes[chat_id] = task
        return task

    @property
    def at_work(self) -> int:
        """Lanes sending now (for /metrics)."""
        return sum(1 for task in self._lanes.values() if not task.done())

    def busy(self, chat_id: int) -> bool:
        """Whether the chat has a lane at work (its rows go in order: nothing jumps it)."""
        task = self._lanes.get(chat_id)
        return task is not None and not task.done()

    @contextlib.contextmanager
    def holding(self, chat_id: int) -> Iterator[None]:
        """No lane starts for the chat meanwhile: the turn sends a row itself (a press
        continues the pressed message) and records it with :meth:`finish`."""
        self._held.add(chat_id)
        try:
            yield
        finally:
            self._held.discard(chat_id)

    def finish(self, row_id: int, outcome: str, external_id: int | None = None) -> None:
        with self.db.session() as session:
            row = self._get(session, row_id)
            if row is None:
                return
            row.outcome = outcome
            if isinstance(row, Message):
                row.delivered = outcome == "sent" or outcome == "unconfirmed"
            elif isinstance(row, StaffMessage) and row.photo is not None:
                row.photo = None  # a report's chart: the database need not keep it
            if external_id is not None and not isinstance(row, StaffPost):
                row.external_id = external_id
            session.add(row)
            session.commit()
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def outcome(self, row_id: int) -> str | None:
        with self.db.session() as session:
            row = self._get(session, row_id)
            return row.outcome if row is not None else None

    async def stop(self, timeout: float) -> None:
        """Give the lanes a moment to finish, then stop them (rows left wait in the
        database for the next start)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        lanes = [task for task in self._lanes.values() if not task.done()]
        if lanes:
            await asyncio.wait(lanes, timeout=timeout)
        for task in lanes:
            task.cancel()
        for task in lanes:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the lanes ----------------------------------------------------------------------

    def sweep(self, age: timedelta = SWEEP_AGE) -> int:
        """Start a lane for every chat with rows that have waited `age` or longer; the
        number started."""
        before = utcnow() - age
        with self.db.session() as session:
            doubtful = unconfirmed(session, self.rows.table, utcnow() - LANE_LEASE)
            if doubtful:
                log.warning(
                    "%s message(s) were on their way to Telegram when the bot stopped; "
                    "not sent again",
                    doubtful,
                )
            chats = self.rows.chats(session, before)
        started = 0
        for chat_id in chats:
            if not self.busy(chat_id) and self.kick(chat_id) is not None:
                started += 1
        return started

    async def _sweep_forever(self) -> None:
        age = timedelta(0)  # at start-up: everything a previous run left
        while True:
            try:
                started = self.sweep(age)
                if started:
                    log.info(self.rows.left_over, started)
            except DATABASE_DOWN as error:
                log.warning("outbox sweep: the database is away (%s)", error)
            age = SWEEP_AGE
            await asyncio.sleep(SWEEP_EVERY)

    async def _lane(self, chat_id: int) -> None:
        lease = f"{self.rows.lease}:{chat_id}"
        delay = FIRST_DELAY
        renewed = utcnow()
        try:
            if self.leases is not None and not self.leases.acquire(lease, LANE_LEASE):
                return  # another process sends this chat's rows
            while True:
                if self.leases is not None and utcnow() - renewed > LANE_LEASE / 3:
                    self.leases.acquire(lease, LANE_LEASE)
                    renewed = utcnow()
                row = self._next(chat_id)
                if row is None:
                    return
                wait = self.pace.delay(chat_id, asyncio.get_running_loop().time())
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    external_id = await self._send(chat_id, row)
                except Undeliverable as error:
                    self.finish(row.id or 0, error.outcome)
                    continue
                except RetryAfter as error:
                    await asyncio.sleep(retry_seconds(error.retry_after))
                    self.pace.refused(chat_id, asyncio.get_running_loop().time())
                    continue
                except ChatMigrated as error:  # the staff group became a supergroup
                    self._moved(row, chat_id, int(error.new_chat_id))
                    return
                except Forbidden as error:
                    await self._failed(row, "blocked", error)
                    continue
                except BadRequest as error:
                    reason = "chat_not_found" if "not found" in error.message.lower() else "refused"
                    await self._failed(row, reason, error)
                    continue
                except TelegramError as error:  # refused, reset, 5xx, timed out, no JSON
                    if self.left(row.id or 0):
                        log.warning(
                            "message %s to chat %s left and got no answer (%s); not sent "
                            "again: Telegram may have it",
                            row.id,
                            chat_id,
                            error,
                        )
                        self.finish(row.id or 0, "unconfirmed")
                        await self._tell(row, "unconfirmed", str(error))
                        continue
                    if delay == FIRST_DELAY:
                        log.warning("chat %s: Telegram is away (%s); trying again", chat_id, error)
                    await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                    delay = min(delay * 2, MAX_DELAY)
                    continue
                self.finish(row.id or 0, "sent", external_id)
                if self.on_sent is not None:
                    self.on_sent(row)
                delay = FIRST_DELAY
        except DATABASE_DOWN as error:  # the sweep starts the lane again
            log.warning("chat %s: the database is away; sending later (%s)", chat_id, error)
        except Exception:
            log.exception("chat %s: the sender stopped on an error; the sweep goes on", chat_id)
        finally:
            if self.leases is not None:
                with contextlib.suppress(Exception):
                    self.leases.release(lease)

    def _moved(self, row: Row, old: int, new: int) -> None:
        """The chat's rows go to the supergroup it became (a private chat never
        migrates); `on_migrated` tells the rest of the bot."""
        log.warning("chat %s is now %s: its waiting messages go there", old, new)
        if isinstance(row, StaffMessage):
            with self.db.session() as session:
                session.execute(
                    sa_update(StaffMessage)
                    .where(col(StaffMessage.chat_id) == old, col(StaffMessage.outcome).is_(None))
                    .values(chat_id=new)
                )
                session.commit()
        else:
            self.finish(row.id or 0, "refused")
        if self.on_migrated is not None:
            self.on_migrated(old, new)
        self.kick(new)

    def _get(self, session: Session, row_id: int) -> Row | None:
        row = session.get(self.rows.table, row_id)
        return row if isinstance(row, Message | StaffMessage | StaffPost) else None

    def _next(self, chat_id: int) -> Row | None:
        with self.db.session() as session:
            return self.rows.next(session, chat_id)

    def left(self, row_id: int) -> bool:
        """Whether the row's request left for Telegram (its answer may not have come)."""
        return has_left(self.db, self.rows.table, row_id)

    def first_waiting(self, chat_id: int) -> int | None:
        """The id of the chat's next row to go."""
        row = self._next(chat_id)
        return row.id if row is not None else None

    def marking(self, row_id: int, *, on_its_way: bool) -> None:
        """Message.send_started_at set as the row's request leaves, cleared if refused."""
        mark_leaving(self.db, self.rows.table, row_id, on_its_way=on_its_way)

    async def _send(self, chat_id: int, row: Row) -> int | None:
        """One row to Telegram: the (last) message id."""
        assert self.bot is not None and row.id is not None
        ON_SEND.set(ReplyMark(self.marking, row.id))
        try:
            return await self.rows.send(self.bot, chat_id, row)
        finally:
            ON_SEND.set(None)

    async def _failed(self, row: Row, outcome: str, error: TelegramError) -> None:
        log.warning("%s %s not delivered: %s", self.rows.table.__name__, row.id, error)
        self.finish(row.id or 0, outcome)
        await self._tell(row, outcome, error.message)

    async def _tell(self, row: Row, outcome: str, reason: str) -> None:
        """`on_failed` hears of a row that did not (or may not have) reached its chat."""
        if self.on_failed is not None and self.bot is not None:
            try:
                await self.on_failed(self.bot, row, outcome, reason)
            except TelegramError as told:
                log.warning("could not tell the staff about message %s: %s", row.id, told)


async def _send_pieces(
    bot: Bot,
    chat_id: int,
    pieces: list[str],
    markup: InlineKeyboardMarkup | None,
    thread_id: int | None = None,
) -> int:
    """HTML pieces, each within Telegram's limit, the keyboard on the last: its id."""
    sent_id = 0
    for index, piece in enumerate(pieces):
        sent = await bot.send_message(
            chat_id,
            piece,
            parse_mode=ParseMode.HTML,
            reply_markup=markup if index == len(pieces) - 1 else None,
            message_thread_id=thread_id,
        )
        sent_id = sent.message_id
    return sent_id


def topic_gone(error: BadRequest) -> bool:
    """Telegram's answer when a message goes to a forum topic that was deleted."""
    text = error.message.lower()
    return "thread not found" in text or "topic_deleted" in text


def mark_leaving(db: Database, table: Any, row_id: int, *, on_its_way: bool) -> None:
    """A row of `table` (messages, staff messages, lines for topics) marked as its
    request leaves (send_started_at), or unmarked when Telegram answered with an error
    (it does not have it): the mark a ReplyMark sets."""
    with db.session() as session:
        session.execute(
            sa_update(table)
            .where(col(table.id) == row_id)
            .values(send_started_at=utcnow() if on_its_way else None)
        )
        session.commit()


def has_left(db: Database, table: Any, row_id: int) -> bool:
    """Whether the row's request left for Telegram (its answer may not have come)."""
    with db.session() as session:
        fresh = session.get(table, row_id)
        return fresh is not None and fresh.send_started_at is not None


def unconfirmed(session: Session, table: Any, before: datetime) -> int:
    """Rows of `table` (messages, staff messages, lines for topics) whose request left
    before `before` and never got an answer — their run stopped or crashed meanwhile:
    Telegram may have them, so they are not sent again (outcome "unconfirmed"). Commits;
    returns how many."""
    result = session.execute(
        sa_update(table)
        .where(col(table.outcome).is_(None), col(table.send_started_at) < before)
        .values(outcome="unconfirmed")
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def waiting_out(session: Session, table: type[Row] = Message) -> tuple[int, float]:
    """Rows waiting for the sender: how many, and the oldest one's age in seconds."""
    count, oldest = session.exec(
        select(func.count(), func.min(table.created_at)).where(*_pending(table))
    ).one()
    age = (utcnow() - _aware(oldest)).total_seconds() if oldest is not None else 0.0
    return int(count), max(age, 0.0)


def _pending(table: type[Row]) -> tuple[Any, ...]:
    waiting = (col(table.outcome).is_(None), col(table.send_started_at).is_(None))
    return (col(Message.direction) == "out", *waiting) if table is Message else waiting


def _buttons(row: Message) -> list[Button]:
    return [Button(**button) for button in row.buttons]


def _aware(moment: Any) -> Any:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
