"""The scheduled report in Telegram: the summary as text, then the charts, to each supervisor."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TypeVar

import telegram
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.config import Settings
from bot.reports.charts import Chart, render_charts
from bot.reports.figures import build_report
from bot.reports.period import period_at
from bot.reports.text import render_markdown
from bot.store import Database
from bot.telegram.render import escape, split_text

log = logging.getLogger(__name__)

RETRIES = 3
T = TypeVar("T")


def prepare(settings: Settings, period: str, now: datetime) -> tuple[str, list[Chart]]:
    """The text and charts of the period that ended at the last local midnight before now."""
    db = Database(settings.database_url)
    try:
        report = build_report(db, period_at(period, now, settings.timezone))
    finally:
        db.dispose()
    language = settings.default_language
    return render_markdown(report, language), render_charts(report, language)


async def _patiently(call: Callable[[], Awaitable[T]]) -> T:
    """One Bot API call, waiting out flood control (429) a few times."""
    for attempt in range(RETRIES):
        try:
            return await call()
        except RetryAfter as error:
            if attempt == RETRIES - 1:
                raise
            wait = error.retry_after
            await asyncio.sleep(wait.total_seconds() if not isinstance(wait, int) else wait)
    raise AssertionError("unreachable")


async def send_report(bot: telegram.Bot, settings: Settings, period: str, now: datetime) -> None:
    """Send the report of ``period`` (day, week, month) ending before ``now`` to the supervisors.

    The text goes as plain text (escaped HTML, cut at Telegram's 4,096 characters), then
    each chart as a photo captioned with its title. A period with nothing in it still
    sends its short report. A supervisor who blocked the bot or never started it is
    logged and skipped; the others still get it.
    """
    text, charts = await asyncio.to_thread(prepare, settings, period, now)
    for supervisor in settings.supervisor_ids:
        try:
            for piece in split_text(text.strip()):
                await _patiently(
                    partial(bot.send_message, supervisor, escape(piece), parse_mode=ParseMode.HTML)
                )
            for chart in charts:
                await _patiently(
                    partial(
                        bot.send_photo,
                        supervisor,
                        chart.png,
                        caption=escape(chart.title),
                        parse_mode=ParseMode.HTML,
                        filename=f"{chart.name}.png",
                    )
                )
        except (Forbidden, BadRequest) as error:  # blocked the bot, or never started it
            log.warning("report not sent to supervisor %s: %s", supervisor, error)
