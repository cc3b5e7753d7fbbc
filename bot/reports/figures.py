"""The report's figures, read from the database for one period.

Complaints, their tickets' agents, major complaints and the causes and products are
those of complaints *created* in the period; response times are those of tickets
created in the period (any kind of hand-off); SLA breaches are timers *due* in the
period; satisfaction is the surveys *answered* in the period.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from actions.facts import load_facts
from bot.reports.period import Period
from bot.store import Complaint, Database, FollowUp, Ticket

SLA_KINDS = ("first_contact", "progress_report")
UNASSIGNED = "unassigned"
NO_MOTIVE = "unknown"
TOP = 10
EXCLUDED_CAUSES = frozenset({"product"})
"""Closed questions that are not causes (the product has its own list)."""

Counts = list[tuple[str, int]]


@dataclass(frozen=True)
class Cause:
    """A closed answer given for a complaint type, e.g. delivery / delivery_issue / missing."""

    complaint_type: str
    fact: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.complaint_type}/{self.fact}/{self.value}"


@dataclass
class Report:
    period: Period
    complaints: int = 0
    tickets: int = 0
    by_type: Counts = field(default_factory=list)
    by_motive: Counts = field(default_factory=list)
    by_agent: Counts = field(default_factory=list)
    major: int = 0
    major_reasons: Counts = field(default_factory=list)
    sla_breaches: Counts = field(default_factory=list)
    """Per timer kind (first_contact, progress_report), both always present."""
    first_contact_minutes: float | None = None
    first_contact_tickets: int = 0
    resolution_minutes: float | None = None
    resolution_tickets: int = 0
    surveys: int = 0
    """Surveys answered in the period."""
    ratings: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    rating_average: float | None = None
    solved_yes: int = 0
    solved_no: int = 0
    causes: list[tuple[Cause, int]] = field(default_factory=list)
    products: list[tuple[str, str, int]] = field(default_factory=list)
    """(key: the name case-folded, the name as first written, count)."""
    timeline: list[tuple[str, int]] = field(default_factory=list)
    """Complaints per local day (`2026-11-16`), or per hour (`09`) for a day's report."""

    @property
    def rated(self) -> int:
        return sum(self.ratings.values())

    @property
    def solved_rate(self) -> float | None:
        answered = self.solved_yes + self.solved_no
        return self.solved_yes / answered if answered else None

    @property
    def breaches(self) -> int:
        return sum(count for _, count in self.sla_breaches)

    @property
    def empty(self) -> bool:
        """Nothing happened: no complaint, no hand-off, no breach, no survey answered."""
        return not (self.complaints or self.tickets or self.breaches or self.surveys)


def _ranked(counter: Counter[str]) -> Counts:
    """Most first; ties in name order, so the same data always reads the same."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _median_minutes(durations: list[float]) -> float | None:
    return round(statistics.median(durations), 1) if durations else None


def _rating(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        rating = int(value)
    except (TypeError, ValueError):
        return None
    return rating if 1 <= rating <= 5 and str(value).strip() == str(rating) else None


def _solved(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("no", "false"):
        return False
    return None


def closed_answers(complaint_type: str, facts: dict[str, Any]) -> list[Cause]:
    """The facts that are answers to closed questions (actions/data/facts.yml).

    A `choice` fact counts when its value is one of the choices (free text typed after
    "other" does not); a `yesno` fact counts only when the answer is yes (e.g. injury,
    a call-back was promised). Order numbers, amounts, date buckets and the product are
    not causes.
    """
    slots = load_facts().slots
    causes = []
    for name, value in facts.items():
        slot = slots.get(name)
        if slot is None or name in EXCLUDED_CAUSES or not isinstance(value, str):
            continue
        if (slot.kind == "choice" and value in slot.choices) or (
            slot.kind == "yesno" and value == "yes"
        ):
            causes.append(Cause(complaint_type, name, value))
    return causes


def build_report(db: Database, period: Period) -> Report:
    with db.session() as session:
        return _build(session, period)


def _build(session: Session, period: Period) -> Report:
    start, end = period.start, period.end
    report = Report(period=period)

    complaints = session.exec(
        select(Complaint)
        .where(Complaint.created_at >= start, Complaint.created_at < end)
        .order_by(col(Complaint.id))
    ).all()

    # The agent of a complaint: that of its latest ticket an agent has had.
    agents: dict[int, str] = {}
    if complaints:
        handled = session.exec(
            select(Ticket.complaint_id, Ticket.agent_name)
            .join(Complaint, col(Complaint.id) == col(Ticket.complaint_id))
            .where(Complaint.created_at >= start, Complaint.created_at < end)
            .where(col(Ticket.agent_name).is_not(None))
            .order_by(col(Ticket.id))
        ).all()
        for complaint_id, agent_name in handled:
            if complaint_id is not None and agent_name and agent_name.strip():
                agents[complaint_id] = agent_name.strip()

    types: Counter[str] = Counter()
    motives: Counter[str] = Counter()
    by_agent: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    causes: Counter[Cause] = Counter()
    products: Counter[str] = Counter()
    product_names: dict[str, str] = {}
    timeline: Counter[str] = Counter()
    for complaint in complaints:
        kind = complaint.complaint_type or "other"
        facts = complaint.facts or {}
        types[kind] += 1
        motives[complaint.motive or NO_MOTIVE] += 1
        by_agent[agents.get(complaint.id or 0, UNASSIGNED)] += 1
        if complaint.major:
            report.major += 1
            reasons.update(complaint.major_reasons or [])
        causes.update(closed_answers(kind, facts))
        product = facts.get("product")
        if isinstance(product, str) and product.strip():
            key = " ".join(product.split()).casefold()
            products[key] += 1
            product_names.setdefault(key, " ".join(product.split()))
        local = period.local(complaint.created_at)
        timeline[f"{local.hour:02d}" if period.kind == "day" else local.date().isoformat()] += 1

    report.complaints = len(complaints)
    report.by_type = _ranked(types)
    report.by_motive = _ranked(motives)
    report.by_agent = _ranked(by_agent)
    report.major_reasons = _ranked(reasons)
    report.causes = sorted(causes.items(), key=lambda item: (-item[1], item[0].key))[:TOP]
    report.products = [(key, product_names[key], count) for key, count in _ranked(products)][:TOP]
    slots = [f"{hour:02d}" for hour in range(24)] if period.kind == "day" else None
    report.timeline = [
        (slot, timeline[slot]) for slot in (slots or [day.isoformat() for day in period.days()])
    ]

    tickets = session.exec(
        select(Ticket.created_at, Ticket.first_contact_at, Ticket.resolved_at, Ticket.status).where(
            Ticket.created_at >= start, Ticket.created_at < end
        )
    ).all()
    report.tickets = len(tickets)
    first_contact = [
        (contact - created).total_seconds() / 60
        for created, contact, _, _ in tickets
        if contact is not None and contact >= created
    ]
    resolution = [
        (resolved - created).total_seconds() / 60
        for created, _, resolved, status in tickets
        if status == "resolved" and resolved is not None and resolved >= created
    ]
    report.first_contact_minutes = _median_minutes(first_contact)
    report.first_contact_tickets = len(first_contact)
    report.resolution_minutes = _median_minutes(resolution)
    report.resolution_tickets = len(resolution)

    breached = Counter(
        session.exec(
            select(FollowUp.kind).where(
                col(FollowUp.kind).in_(SLA_KINDS),
                FollowUp.outcome == "breached",
                FollowUp.due_at >= start,
                FollowUp.due_at < end,
            )
        ).all()
    )
    report.sla_breaches = [(kind, breached[kind]) for kind in SLA_KINDS]

    surveys = session.exec(
        select(FollowUp.data).where(
            FollowUp.kind == "survey",
            col(FollowUp.answered_at).is_not(None),
            col(FollowUp.answered_at) >= start,
            col(FollowUp.answered_at) < end,
        )
    ).all()
    report.surveys = len(surveys)
    total = 0
    for data in surveys:
        rating = _rating((data or {}).get("rating"))
        if rating is not None:
            report.ratings[rating] += 1
            total += rating
        solved = _solved((data or {}).get("solved"))
        if solved is True:
            report.solved_yes += 1
        elif solved is False:
            report.solved_no += 1
    report.rating_average = round(total / report.rated, 2) if report.rated else None
    return report
