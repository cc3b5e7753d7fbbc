"""Staff-group work beside the customer's turn, never inside it.

Telegram lets a bot send 20 messages a minute to one group. A new ticket's topic and
card, and every line for a topic, wait for that budget. Done inside the customer's turn,
that wait held one of the intake's ``CONCURRENT_CHATS`` slots, and once that many
tickets waited for the group no customer was answered at all (docs/benchmarks.md,
"Load"). Here each ticket has a *lane*: its staff-group work in order — the card first,
then what the customer says after — run as its own task, so the customer's turn ends
when their replies are sent.

Nothing is lost at a stop or a crash. A ticket whose card was never posted is found by
:meth:`StaffLanes.sweep` (the hand-off watch calls it every ``HANDOFF_TICK``) and posted
then. One process posts a given card: it holds the lease ``card:<ticket>`` while it does,
renewed while the card waits for the group; a card that failed is tried again when its
lease has run out.

Everything else for a topic — the customer's lines, "reopened", events written in the
customer's turn; the desk's own lines ("Taken by", "Closed by", a promise, an SLA breach,
a message not delivered) and the closing of the topic — is a ``StaffPost`` row, delivered
by the one sender (bot/telegram/outbox.py) with :class:`TopicRows` as its rows: a lane
per ticket, in id order, behind the ticket's card, under the lease ``posts:<ticket>``
with several processes, at most once (the ``send_started_at`` mark: a row whose request
left and got no answer is "unconfirmed", not posted again), each row's outcome recorded,
rows left by a stop or a crash sent by the outbox's sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select, update
from telegram import Bot
from telegram.error import TelegramError

from bot.store import OPEN_TICKET
from bot.store.db import staff_post_waiting, without_card
from bot.store.models import StaffPost, Ticket, utcnow
from bot.telegram.intake import DATABASE_DOWN, Leases, first_line, shared_leases
from bot.telegram.outbox import NoPace, Outbox, Row, Undeliverable
from bot.telegram.staff import StaffDesk
from handoff.events import StaffEvent

log = logging.getLogger(__name__)

CARD_LEASE = timedelta(minutes=3)
"""How long a claim on posting a card lasts unrenewed (a dead process's claim ends)."""
RENEW_EVERY = 60.0
SWEEP_AGE = timedelta(seconds=10)
"""The sweep leaves a ticket this young to the turn that made it."""
SWEEP_BATCH = 100
CARDS_AT_ONCE = 8
"""Cards being posted at once. A card is two requests to the group (the topic, then
the card), and the group's limiter serves requests in arrival order: with every new
ticket's lane asking at once, the topics of all of them would come before any card
(the load bench saw 2 cards a minute of a possible 10). A few at a time keep a card's
two requests together; enough that a slow Telegram does not leave the budget unused."""


def _lease(ticket_id: int) -> str:
    return f"card:{ticket_id}"


class Turns:
    """Up to `size` holders at once; the others wait, served lowest key first (not in
    arrival order)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.holders = 0
        self._waiting: list[tuple[tuple[int, ...], int, asyncio.Future[None]]] = []
        self._order = 0

    async def acquire(self, key: tuple[int, ...]) -> None:
        if self.holders < self.size and not self._waiting:
            self.holders += 1
            return
        self._order += 1
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (key, self._order, turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # granted, then cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)  # the holder count passes to it unchanged
                return
        self.holders -= 1


class StaffLanes:
    """The cards of new tickets, each posted by its own task (major ones first), and the
    sender of the lines for their topics (`topics`)."""

    def __init__(
        self, desk: StaffDesk, leases: Leases, on_outcome: Callable[[str], object] | None = None
    ) -> None:
        self.desk = desk
        self.db = desk.db
        self.leases = leases
        self.topics = Outbox(
            desk.db,
            shared_leases(desk.db),  # several processes share a ticket's rows on PostgreSQL
            rows=TopicRows(desk),
            pace=NoPace(),
            on_outcome=on_outcome,  # each row's outcome, counted in /metrics
        )
        """The sender of the tickets' StaffPost rows."""
        self._tasks: dict[int, asyncio.Task[None]] = {}
        """Cards being posted (or waiting their turn), by ticket."""
        self._claimed: set[int] = set()
        """Tickets whose card this process is to post (it holds their lease)."""
        self._failed: dict[int, float] = {}
        """Tickets whose card failed here, and when (time.monotonic)."""
        self._renewer: asyncio.Task[None] | None = None
        self._cards = Turns(CARDS_AT_ONCE)
        """Which cards go next: major complaints first, then the oldest ticket."""

    @property
    def pending(self) -> int:
        """Cards queued or being posted, and tickets whose lines are being posted (for
        /metrics)."""
        return len(self._tasks) + self.topics.at_work

    def start(self, bot: Bot) -> None:
        """Post what a previous run left for the topics, and keep an eye on rows left."""
        self.topics.start(bot)

    def card(self, bot: Bot, ticket_id: int) -> None:
        """A new ticket: its topic and card, first in its lane — unless it is already
        queued here or another process is posting it."""
        if self.desk.staff_chat_id is None or ticket_id in self._claimed:
            return
        try:
            claimed = self.leases.acquire(_lease(ticket_id), CARD_LEASE)
        except DATABASE_DOWN as error:  # the sweep posts it when the database is back
            log.warning("card of ticket #%s not queued: %s", ticket_id, first_line(error))
            return
        if not claimed:
            return
        self._claimed.add(ticket_id)
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever())
        self._tasks[ticket_id] = asyncio.create_task(self._run(bot, ticket_id))

    def posts(self, bot: Bot, ticket_id: int) -> None:
        """The ticket has StaffPost rows: its topic lane posts them (after its card: a
        ticket whose card is still to come is started again once the card is up)."""
        del bot  # the outbox sends with the application's
        self.topics.kick(ticket_id)

    def sweep(self, bot: Bot) -> int:
        """Tickets still waiting for their card (the process that made them stopped, or
        the card failed): queue them. Returns how many cards were queued. (Rows for the
        topics left behind are the topic outbox's own sweep.)"""
        if self.desk.staff_chat_id is None:
            return 0
        with self.db.session() as session:
            missing = session.exec(
                select(Ticket.id)
                .where(
                    *without_card(),
                    col(Ticket.created_at) < utcnow() - SWEEP_AGE,
                )
                .order_by(col(Ticket.id))
                .limit(SWEEP_BATCH)
            ).all()
        retry_after = CARD_LEASE.total_seconds()
        queued = 0
        for ticket_id in missing:
            if ticket_id is None or ticket_id in self._claimed:
                continue
            failed = self._failed.get(ticket_id)
            if failed is not None and time.monotonic() - failed < retry_after:
                continue
            self.card(bot, ticket_id)
            queued += ticket_id in self._claimed
        if queued:
            log.info("%s ticket(s) without a card; posting them now", queued)
        return queued

    async def stop(self, timeout: float) -> None:
        """A clean stop: finish what is queued (up to `timeout` seconds), then let go of
        the cards not posted, so the next process's sweep need not wait for the lease;
        the topics' lines left wait in the database for the next start."""
        await self.topics.stop(timeout)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._tasks:
                    await asyncio.sleep(0.05)
        tasks = [task for task in (self._renewer, *self._tasks.values()) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._claimed:
            log.warning("stopping with %s card(s) not posted yet", len(self._claimed))
        for ticket_id in list(self._claimed):
            with contextlib.suppress(*DATABASE_DOWN):
                self.leases.release(_lease(ticket_id))
        self._claimed.clear()

    async def _run(self, bot: Bot, ticket_id: int) -> None:
        """Post the ticket's card; a failure is logged (the sweep tries again later)."""
        try:
            await self._post(bot, ticket_id)
        except TelegramError as error:
            log.error("staff group, ticket #%s, card: %s", ticket_id, error)
        except DATABASE_DOWN as error:
            log.error("staff group, ticket #%s, card: %s", ticket_id, first_line(error))
        except Exception:  # a fault: logged; the sweep tries again once the lease has run out
            log.exception("staff group, ticket #%s, card failed", ticket_id)
        finally:
            self._tasks.pop(ticket_id, None)

    async def _post(self, bot: Bot, ticket_id: int) -> None:
        """Post the card; its lease is let go once it is posted. A card that failed keeps
        its lease until it runs out: then any process's sweep tries again."""
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            urgent = (ticket.priority, ticket.supervisor_flag) if ticket else (0, False)
        await self._cards.acquire((-urgent[0], -int(urgent[1]), ticket_id))
        try:
            await self.desk.post(bot, ticket_id)
        except BaseException:
            self._failed[ticket_id] = time.monotonic()
            raise
        finally:
            self._cards.release()
            self._claimed.discard(ticket_id)
        self._failed.pop(ticket_id, None)
        with contextlib.suppress(*DATABASE_DOWN):
            self.leases.release(_lease(ticket_id))
        self.topics.kick(ticket_id)  # lines that waited for the card

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            for ticket_id in list(self._claimed):
                try:
                    self.leases.acquire(_lease(ticket_id), CARD_LEASE)
                except DATABASE_DOWN as error:
                    log.warning("card lease not renewed: %s", first_line(error))
                    break


class TopicRows:
    """Lines for the tickets' topics (`staff_post` rows), for an :class:`Outbox`: a lane
    per ticket, each row a call on the staff desk (which finds the topic, replaces a
    deleted one, follows a moved group and waits Telegram out)."""

    table: type[Row] = StaffPost
    lease = "posts"
    left_over = "%d ticket(s) with lines for their topic left over; posting them"

    def __init__(self, desk: StaffDesk) -> None:
        self.desk = desk

    def next(self, session: Session, chat_id: int) -> Row | None:
        """The ticket's next row; none while its card is still to come (an open ticket
        not in the staff group yet). Rows of a ticket that no longer exists are done
        with here ("no_ticket")."""
        ticket = session.get(Ticket, chat_id)
        if ticket is None:
            session.execute(
                update(StaffPost)
                .where(col(StaffPost.ticket_id) == chat_id, *staff_post_waiting())
                .values(outcome="no_ticket")
            )
            session.commit()
            return None
        if ticket.staff_chat_id is None and ticket.status in OPEN_TICKET:
            return None
        return session.exec(
            select(StaffPost)
            .where(StaffPost.ticket_id == chat_id, *staff_post_waiting())
            .order_by(col(StaffPost.id))
            .limit(1)
        ).first()

    def chats(self, session: Session, before: datetime) -> list[int]:
        return list(
            session.exec(
                select(StaffPost.ticket_id)
                .where(*staff_post_waiting(), col(StaffPost.created_at) <= before)
                .group_by(col(StaffPost.ticket_id))
                .order_by(func.min(StaffPost.id))
                .limit(SWEEP_BATCH)
            )
        )

    async def send(self, bot: Bot, chat_id: int, row: Row) -> int | None:
        assert isinstance(row, StaffPost)
        desk = self.desk
        try:
            if row.kind == "line":
                await desk.from_customer(bot, row.ticket_id, **row.body)
            elif row.kind == "reopened":
                await desk.reopen(bot, row.ticket_id)
            elif row.kind == "event":
                await desk.event(bot, StaffEvent(**row.body))
            elif row.kind == "note":
                await desk.post_note(bot, row.ticket_id, row.body)
            elif row.kind == "close_topic":
                await desk.close_topic(bot, row.ticket_id)
            else:
                log.error("staff post %s of an unknown kind %r dropped", row.id, row.kind)
                raise Undeliverable("failed")
        except (TelegramError, Undeliverable, *DATABASE_DOWN):
            raise
        except Exception as error:  # a fault: logged, and the lane goes on with the next
            log.exception("staff group, ticket #%s, %s %s failed", chat_id, row.kind, row.id)
            raise Undeliverable("failed") from error
        return None
