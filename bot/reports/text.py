"""The report as text: Markdown for people (stdout, Telegram), CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
import math
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.dialogue.responses import LANGUAGES, Responses
from bot.reports.figures import NO_MOTIVE, UNASSIGNED, Cause, Report

LABELS_FILE = Path(__file__).parent / "labels.yml"


@cache
def report_labels(path: Path = LABELS_FILE) -> dict[str, dict[str, str]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {lang: {str(k): str(v) for k, v in (raw.get(lang) or {}).items()} for lang in LANGUAGES}


@cache
def _responses() -> Responses:
    return Responses()


def number(value: float) -> str:
    """3.8, 3.75, 4 (no trailing zeros)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def percent(rate: float) -> str:
    """Whole percent, halves rounded up (12.5% -> 13%)."""
    return f"{math.floor(rate * 100 + 0.5)}%"


class Words:
    """The report's words in one language: its own labels, and the bot's for types etc."""

    def __init__(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"no report labels for {language!r}")
        self.language = language
        self.labels = report_labels()[language]
        self.responses = _responses()

    def __call__(self, key: str, **values: Any) -> str:
        text = self.labels[key]
        return text.format(**values) if values else text

    def _bot(self, key: str, fallback: str) -> str:
        return self.responses.label_or(key, self.language, fallback)

    def type(self, kind: str) -> str:
        return self._bot(f"type.{kind}", kind)

    def motive(self, motive: str) -> str:
        if motive == NO_MOTIVE:
            return self("motive.unknown")
        return self._bot(f"motive.{motive}", motive)

    def agent(self, name: str) -> str:
        return self("agent.unassigned") if name == UNASSIGNED else name

    def reason(self, reason: str) -> str:
        return self._bot(f"staff.flag_{reason}", reason)

    def sla(self, kind: str) -> str:
        return self(f"sla.{kind}")

    def cause(self, cause: Cause) -> str:
        colon = "：" if self.language == "zh" else ": "
        value_key = (
            f"button.{cause.value}_plain"
            if cause.value in ("yes", "no")
            else f"choice.{cause.fact}.{cause.value}"
        )
        return (
            f"{self.type(cause.complaint_type)} · {self._bot(f'slot.{cause.fact}', cause.fact)}"
            f"{colon}{self._bot(value_key, cause.value)}"
        )

    def product(self, key: str, name: str) -> str:
        return self._bot(f"choice.product.{key}", name)

    def duration(self, minutes: float | None) -> str:
        if minutes is None:
            return self("value.none")
        if minutes < 120:
            return self("unit.minutes", n=round(minutes))
        if minutes < 48 * 60:
            return self("unit.hours", n=number(round(minutes / 60, 1)))
        return self("unit.days", n=number(round(minutes / 1440, 1)))

    def title(self, report: Report) -> str:
        return self(f"title.{report.period.kind}", span=report.period.span())


def render_markdown(report: Report, language: str) -> str:
    """A readable summary: headings, then one `- label: count` line per item."""
    w = Words(language)
    colon = "：" if language == "zh" else ": "
    lines = [
        f"# {w.title(report)}",
        w(
            "summary",
            tz=report.period.timezone,
            complaints=report.complaints,
            tickets=report.tickets,
        ),
    ]
    if report.empty:
        return "\n".join([*lines, "", w("empty")]) + "\n"

    def section(title: str, items: list[str]) -> None:
        lines.extend(["", f"## {title}", *items])

    def shares(counts: list[tuple[str, int]], name: Any) -> list[str]:
        return [
            f"- {name(key)}{colon}{count} ({percent(count / report.complaints)})"
            for key, count in counts
        ]

    if not report.complaints:
        lines.extend(["", w("empty")])
    else:
        section(w("section.by_type"), shares(report.by_type, w.type))
        section(w("section.by_motive"), shares(report.by_motive, w.motive))
        section(w("section.by_agent"), shares(report.by_agent, w.agent))
        section(
            w("section.major", count=report.major),
            [f"- {w.reason(reason)}{colon}{count}" for reason, count in report.major_reasons],
        )
    section(
        w("section.sla", count=report.breaches),
        [f"- {w.sla(kind)}{colon}{count}" for kind, count in report.sla_breaches],
    )
    section(
        w("section.times"),
        [
            "- "
            + w(
                "time.first_contact",
                value=w.duration(report.first_contact_minutes),
                count=report.first_contact_tickets,
            ),
            "- "
            + w(
                "time.resolution",
                value=w.duration(report.resolution_minutes),
                count=report.resolution_tickets,
            ),
        ],
    )
    satisfaction: list[str] = []
    if not report.surveys:
        satisfaction.append(w("sat.none"))
    if report.rating_average is not None:
        satisfaction.append(
            "- " + w("sat.average", value=number(report.rating_average), count=report.rated)
        )
        spread = " · ".join(f"{star}★ {report.ratings[star]}" for star in range(5, 0, -1))
        satisfaction.append(f"- {w('sat.distribution')}{colon}{spread}")
    if report.solved_rate is not None:
        satisfaction.append(
            "- "
            + w(
                "sat.solved",
                rate=percent(report.solved_rate),
                yes=report.solved_yes,
                answered=report.solved_yes + report.solved_no,
            )
        )
    section(w("section.satisfaction", count=report.surveys), satisfaction)
    if report.causes:
        section(
            w("section.causes"),
            [
                f"{place}. {w.cause(cause)} — {count}"
                for place, (cause, count) in enumerate(report.causes, 1)
            ],
        )
    if report.products:
        section(
            w("section.products"),
            [
                f"{place}. {w.product(key, name)} — {count}"
                for place, (key, name, count) in enumerate(report.products, 1)
            ],
        )
    return "\n".join(lines) + "\n"


def csv_rows(report: Report) -> list[tuple[str, str, str]]:
    """section, key, value: codes rather than labels, numbers as plain numbers."""
    period = report.period
    rows: list[tuple[str, str, object]] = [
        ("period", "kind", period.kind),
        ("period", "first_day", period.first.isoformat()),
        ("period", "last_day", period.last.isoformat()),
        ("period", "timezone", period.timezone),
        ("totals", "complaints", report.complaints),
        ("totals", "tickets", report.tickets),
        ("totals", "major", report.major),
        ("totals", "sla_breaches", report.breaches),
    ]
    rows += [("by_type", key, count) for key, count in report.by_type]
    rows += [("by_motive", key, count) for key, count in report.by_motive]
    rows += [("by_agent", key, count) for key, count in report.by_agent]
    rows += [("major_reasons", key, count) for key, count in report.major_reasons]
    rows += [("sla_breaches", key, count) for key, count in report.sla_breaches]
    rows += [
        ("times", "first_contact_median_minutes", _blank(report.first_contact_minutes)),
        ("times", "first_contact_tickets", report.first_contact_tickets),
        ("times", "resolution_median_minutes", _blank(report.resolution_minutes)),
        ("times", "resolution_tickets", report.resolution_tickets),
        ("satisfaction", "surveys", report.surveys),
        ("satisfaction", "rating_average", _blank(report.rating_average)),
        ("satisfaction", "ratings", report.rated),
        ("satisfaction", "solved_yes", report.solved_yes),
        ("satisfaction", "solved_no", report.solved_no),
        (
            "satisfaction",
            "solved_rate",
            _blank(None if report.solved_rate is None else round(report.solved_rate, 4)),
        ),
    ]
    rows += [("rating", str(star), report.ratings[star]) for star in range(1, 6)]
    rows += [("causes", cause.key, count) for cause, count in report.causes]
    rows += [("products", name, count) for _, name, count in report.products]
    timeline = "per_hour" if period.kind == "day" else "per_day"
    rows += [(timeline, slot, count) for slot, count in report.timeline]
    return [(section, key, str(value)) for section, key, value in rows]


def _blank(value: float | None) -> object:
    return "" if value is None else value


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "value"))
    writer.writerows(csv_rows(report))
    return out.getvalue()
