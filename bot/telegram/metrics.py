"""`/metrics` in Prometheus' text format.

Counters and the latency histogram live in the process (each worker reports its own);
the figures of the whole desk — the inbox queue, tickets by state, SLA breaches,
follow-ups due — are read from the database when Prometheus scrapes, so every process
reports the same numbers for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlmodel import col, func, select

from bot.store import Database, FollowUp, StaffMessage, StaffPost, Ticket
from bot.store.db import staff_post_waiting, without_card
from bot.store.models import InboundUpdate, utcnow
from bot.telegram.outbox import waiting_out

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self, db: Database | None) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "complaint_desk_updates_processed",
            "Telegram updates handled, by outcome (handled, set_aside, unreadable)",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "complaint_desk_reply_latency_seconds",
            "From a customer's update reaching the bot to the bot's answer being sent",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.flood = Counter(
            "complaint_desk_telegram_429",
            "Bot API answers 429 Too Many Requests (each was waited out and retried)",
            registry=self.registry,
        )
        self.rejected = Counter(
            "complaint_desk_webhook_rejected",
            "Webhook requests refused, by reason (secret, malformed, unavailable)",
            ["reason"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "complaint_desk_extras_skipped",
            "Extras not sent because customers were waiting for their replies (the bot "
            "is behind), by kind (keyboard_edit, typing)",
            ["what"],
            registry=self.registry,
        )
        self.sent = Counter(
            "complaint_desk_messages_out",
            "Messages to customers by outcome: sent, or why never (blocked, "
            "chat_not_found, refused, unconfirmed: left with no answer, not sent again)",
            ["outcome"],
            registry=self.registry,
        )
        self.staff_sent = Counter(
            "complaint_desk_staff_messages_out",
            "Alerts and notes for staff by outcome: sent, or why never (a private message "
            "refused is followed by a mention in the staff group)",
            ["outcome"],
            registry=self.registry,
        )
        self.posted = Counter(
            "complaint_desk_staff_posts_out",
            "Lines for tickets' topics by outcome: sent, or why not (refused, "
            "unconfirmed: left with no answer, not posted again; no_ticket; failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.staff_queue = Gauge(
            "complaint_desk_staff_group_queue",
            "Staff-group jobs (cards, lines for topics) queued in this process, "
            "waiting for the group's 20 messages a minute",
            registry=self.registry,
        )
        if db is not None:
            self.registry.register(DeskCollector(db))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class DeskCollector(Collector):
    """Figures of the whole desk, read from the database at scrape time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        now = utcnow()
        with self.db.session() as session:
            pending = session.exec(
                select(func.count())
                .select_from(InboundUpdate)
                .where(col(InboundUpdate.done_at).is_(None))
            ).one()
            tickets = session.exec(
                select(Ticket.status, func.count()).group_by(col(Ticket.status))
            ).all()
            breaches = session.exec(
                select(FollowUp.kind, func.count())
                .where(FollowUp.outcome == "breached")
                .group_by(col(FollowUp.kind))
            ).all()
            no_card = session.exec(
                select(func.count()).select_from(Ticket).where(*without_card())
            ).one()
            posts = session.exec(
                select(func.count()).select_from(StaffPost).where(*staff_post_waiting())
            ).one()
            outbox, oldest = waiting_out(session)
            staff_out, staff_oldest = waiting_out(session, StaffMessage)
            due = session.exec(
                select(func.count())
                .select_from(FollowUp)
                .where(FollowUp.status == "pending", col(FollowUp.due_at) <= now)
            ).one()
        yield GaugeMetricFamily(
            "complaint_desk_inbox_pending", "Updates stored and not yet handled", value=pending
        )
        by_state = GaugeMetricFamily(
            "complaint_desk_tickets", "Tickets by state", labels=["status"]
        )
        for status, count in tickets:
            by_state.add_metric([status], float(count))
        yield by_state
        breached = CounterMetricFamily(
            "complaint_desk_sla_breaches",
            "SLA timers that ran out (first contact, progress report)",
            labels=["kind"],
        )
        for kind, count in breaches:
            breached.add_metric([kind], float(count))
        yield breached
        for name, text, value in (
            ("cards_waiting", "Open tickets whose card is not in the staff group yet", no_card),
            (
                "staff_posts_waiting",
                "Lines and notes for tickets' topics written and not yet in the staff group",
                posts,
            ),
            (
                "messages_waiting",
                "Messages to customers written and not yet sent (Telegram away, or queued)",
                outbox,
            ),
            (
                "messages_waiting_oldest_seconds",
                "How long the oldest message to a customer not yet sent has waited",
                oldest,
            ),
            (
                "staff_messages_waiting",
                "Alerts and notes for staff written and not yet sent",
                staff_out,
            ),
            (
                "staff_messages_waiting_oldest_seconds",
                "How long the oldest alert or note for staff not yet sent has waited",
                staff_oldest,
            ),
            ("followups_due", "Follow-ups due now and not yet done", due),
        ):
            yield GaugeMetricFamily(f"complaint_desk_{name}", text, value=float(value))
