"""The scheduled report in Telegram: the summary as text, then the charts, to each
supervisor — as rows for the staff outbox (bot/telegram/outbox.py), like every other
message the bot sends. A report due while Telegram is away goes when it is back; one
due just before a stop or a crash goes after the restart; a supervisor Telegram refuses
(blocked the bot, never pressed Start) gets an outcome on the row and one log line,
and the others still get it."""

from __future__ import annotations

from datetime import datetime

from bot.config import Settings
from bot.html_text import escape, split_text
from bot.reports.charts import Chart, render_charts
from bot.reports.figures import build_report
from bot.reports.period import period_at
from bot.reports.text import render_markdown
from bot.store import Database, StaffMessage


def prepare(settings: Settings, period: str, now: datetime) -> tuple[str, list[Chart]]:
    """The text and charts of the period that ended at the last local midnight before now."""
    db = Database(settings.database_url)
    try:
        report = build_report(db, period_at(period, now, settings.timezone))
    finally:
        db.dispose()
    language = settings.default_language
    return render_markdown(report, language), render_charts(report, language)


def report_rows(settings: Settings, period: str, now: datetime) -> list[StaffMessage]:
    """The report of ``period`` (day, week, month) ending before ``now``, for each
    supervisor: the text as plain text (escaped HTML, cut at Telegram's 4,096
    characters), then each chart as a photo captioned with its title. A period with
    nothing in it still gets its short report. Not yet written: the caller writes the
    rows in one transaction and starts their lanes."""
    text, charts = prepare(settings, period, now)
    rows: list[StaffMessage] = []
    for supervisor in settings.supervisor_ids:
        rows += [
            StaffMessage(chat_id=supervisor, text=escape(piece))
            for piece in split_text(text.strip())
        ]
        rows += [
            StaffMessage(chat_id=supervisor, text=escape(chart.title), photo=chart.png)
            for chart in charts
        ]
    return rows
