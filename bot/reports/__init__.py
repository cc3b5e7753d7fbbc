"""Reports for supervisors: `python -m bot report` and the scheduled report in Telegram.

Complaints by type, motive and agent; major complaints; SLA breaches; median times to
first contact and to resolution; satisfaction; top causes and products (shared/domain.md
§6, §8). The period rule is in :mod:`bot.reports.period`; what each figure counts, in
:mod:`bot.reports.figures`. Wording: ``labels.yml`` here, and the bot's response files
for types, motives and facts, in ``DEFAULT_LANGUAGE``.
"""

from bot.reports.charts import Chart, render_charts, write_charts
from bot.reports.figures import Report, build_report
from bot.reports.period import PERIODS, Period, period_at, period_ending
from bot.reports.send import report_rows
from bot.reports.text import render_csv, render_markdown

__all__ = [
    "PERIODS",
    "Chart",
    "Period",
    "Report",
    "build_report",
    "period_at",
    "period_ending",
    "render_charts",
    "render_csv",
    "render_markdown",
    "report_rows",
    "write_charts",
]
