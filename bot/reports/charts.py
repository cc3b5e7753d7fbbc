"""Charts as PNG images sized for a phone: 1080×1350 px, no text smaller than 28 px.

Three charts: complaints by type (horizontal bars, most first), the satisfaction
ratings 1–5, and complaints per day (per hour in a day's report). Bars carry their
values; the title names the period. matplotlib's Agg backend (FigureCanvasAgg), object
API only (no pyplot state), so charts can be drawn in a worker thread.

Chinese needs a font with CJK glyphs. One is looked for among matplotlib's fonts and,
where fontconfig is installed, ``fc-list :lang=zh`` (e.g. Debian's fonts-noto-cjk or
fonts-wqy-microhei); it must cover every character the charts write. **If none does,
the charts are drawn with the English labels** (only the PNGs: the text report stays in
the desk's language) and a warning is logged. A glyph still reported missing while
drawing also redraws in English: a chart never shows empty boxes ("tofu") silently.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import textwrap
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text

from bot.reports.figures import Report
from bot.reports.text import Words, number, percent

log = logging.getLogger(__name__)

WIDTH, HEIGHT, DPI = 1080, 1350, 100
TEXT_PT = 22
"""Tick labels, value labels, axis labels: 22 pt at 100 dpi is 30.6 px."""
TITLE_PT = 30
SUBTITLE_PT = 22
BAR = "#2b6cb0"
LOW, MIDDLE, HIGH = "#c53030", "#a0aec0", "#2f855a"
MAX_VALUE_LABELS = 16
"""A timeline with more bars labels only its peak (the labels would overlap)."""

_lock = threading.Lock()


@dataclass(frozen=True)
class Chart:
    name: str
    """by-type, satisfaction, per-day / per-hour."""
    title: str
    """One line: what and the period (a Telegram caption)."""
    language: str
    """The language the chart is drawn in (English when no CJK font was found)."""
    png: bytes
    smallest_text_px: float
    """The height of the smallest text drawn, in pixels (em size)."""

    def filename(self, report: Report) -> str:
        period = report.period
        return f"complaints-{self.name}-{period.kind}-{period.first.isoformat()}.png"


@dataclass(frozen=True)
class _Spec:
    name: str
    title: str
    subtitle: str
    texts: list[str]
    draw: Callable[[Figure], None]


# --- fonts -----------------------------------------------------------------------------


@cache
def _fontconfig_files(language: str) -> list[str]:
    if shutil.which("fc-list") is None:
        return []
    try:
        done = subprocess.run(
            ["fc-list", "-f", "%{file}\n", f":lang={language}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.strip() for line in done.stdout.splitlines() if line.strip()})


@cache
def _charmap(path: str) -> frozenset[int]:
    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def find_font(texts: Iterable[str], language: str = "zh") -> str | None:
    """The family name of an installed font that has a glyph for every character."""
    needed = {ord(char) for text in texts for char in text if not char.isspace()}
    candidates = _fontconfig_files(language) + sorted(
        {entry.fname for entry in font_manager.fontManager.ttflist}
    )
    for path in candidates:
        if needed <= _charmap(path):
            return _family(path)
    return None


@cache
def _family(path: str) -> str:
    """Registers the file with matplotlib (once) and gives its family name."""
    font_manager.fontManager.addfont(path)
    return str(font_manager.FontProperties(fname=path).get_name())


# --- drawing ---------------------------------------------------------------------------


def _wrap(text: str, language: str) -> str:
    if language == "zh":
        return "\n".join(text[i : i + 8] for i in range(0, len(text), 8))
    return textwrap.fill(text, 16)


def _axes(figure: Figure) -> Any:
    ax = figure.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=TEXT_PT, length=0, pad=10)
    return ax


def _by_type(report: Report, w: Words) -> _Spec:
    names = [_wrap(w.type(key), w.language) for key, _ in report.by_type]
    counts = [count for _, count in report.by_type]

    def draw(figure: Figure) -> None:
        ax = _axes(figure)
        places = list(range(len(counts)))[::-1]  # the most frequent on top
        bars = ax.barh(places, counts, color=BAR, height=0.7)
        ax.set_yticks(places, names)
        ax.bar_label(bars, labels=[str(c) for c in counts], padding=10, fontsize=TEXT_PT)
        ax.set_xlim(0, max(counts) * 1.2)
        ax.set_xticks([])
        ax.spines["bottom"].set_visible(False)

    title = w("chart.by_type")
    return _Spec(
        "by-type",
        title,
        w("chart.total_subtitle", count=report.complaints),
        [*names, title],
        draw,
    )


def _satisfaction(report: Report, w: Words) -> _Spec:
    stars = [1, 2, 3, 4, 5]
    counts = [report.ratings[star] for star in stars]
    colours = [LOW, LOW, MIDDLE, HIGH, HIGH]
    axis = w("chart.rating_axis")
    count_axis = w("chart.count_axis")

    def draw(figure: Figure) -> None:
        ax = _axes(figure)
        bars = ax.bar(stars, counts, color=colours, width=0.7)
        ax.bar_label(bars, labels=[str(c) for c in counts], padding=8, fontsize=TEXT_PT)
        ax.set_xticks(stars, [str(star) for star in stars])
        ax.set_xlabel(axis, fontsize=TEXT_PT, labelpad=12)
        ax.set_ylim(0, max(counts) * 1.2)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)

    subtitle = w(
        "chart.sat_subtitle",
        average=number(report.rating_average) if report.rating_average is not None else "—",
        rate=percent(report.solved_rate) if report.solved_rate is not None else "—",
        count=report.surveys,
    )
    title = w("chart.satisfaction")
    return _Spec("satisfaction", title, subtitle, [title, subtitle, axis, count_axis], draw)


def _timeline(report: Report, w: Words) -> _Spec:
    hourly = report.period.kind == "day"
    slots = [slot for slot, _ in report.timeline]
    counts = [count for _, count in report.timeline]
    shown = slots if hourly else [slot[5:] for slot in slots]  # 11-16
    step = 3 if hourly else max(1, round(len(slots) / 7))
    axis = w("chart.hour_axis") if hourly else ""

    def draw(figure: Figure) -> None:
        ax = _axes(figure)
        places = list(range(len(counts)))
        bars = ax.bar(places, counts, color=BAR, width=0.75)
        if len(counts) <= MAX_VALUE_LABELS:
            labels = [str(c) for c in counts]
        else:
            peak = max(counts)
            labels = [str(c) if c == peak and c else "" for c in counts]
        ax.bar_label(bars, labels=labels, padding=8, fontsize=TEXT_PT)
        ticks = places[::step]
        ax.set_xticks(ticks, [shown[i] for i in ticks])
        if axis:
            ax.set_xlabel(axis, fontsize=TEXT_PT, labelpad=12)
        ax.set_ylim(0, max(max(counts) * 1.2, 1))
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)

    title = w("chart.per_hour" if hourly else "chart.per_day")
    subtitle = w("chart.total_subtitle", count=report.complaints)
    return _Spec(
        "per-hour" if hourly else "per-day", title, subtitle, [title, subtitle, axis], draw
    )


def _specs(report: Report, w: Words) -> list[_Spec]:
    specs = []
    if report.complaints:
        specs += [_by_type(report, w), _timeline(report, w)]
    if report.rated:
        specs.insert(1 if specs else 0, _satisfaction(report, w))
    return specs


def _draw(spec: _Spec, heading: str, font: str | None) -> tuple[bytes, float, list[str]]:
    """The PNG, its smallest text in px, and the glyphs the font did not have."""
    rc: Any = {"font.size": TEXT_PT}
    if font:
        rc["font.family"] = [font, "DejaVu Sans"]
    with matplotlib.rc_context(rc), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        # CJK fonts often come in one weight only: bold would be asked for in vain
        weight = "normal" if font else "bold"
        figure.suptitle(f"{spec.title}\n{heading}", fontsize=TITLE_PT, fontweight=weight)
        spec.draw(figure)
        if spec.subtitle:
            figure.supxlabel(spec.subtitle, fontsize=SUBTITLE_PT, color="#4a5568")
        out = BytesIO()
        figure.savefig(out, format="png", dpi=DPI)
        sizes = [
            text.get_fontproperties().get_size_in_points()
            for text in figure.findobj(Text)
            if isinstance(text, Text) and text.get_visible() and text.get_text().strip()
        ]
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    for warning in caught:
        if "missing from font" not in str(warning.message):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return out.getvalue(), min(sizes) * DPI / 72, missing


def render_charts(report: Report, language: str) -> list[Chart]:
    """The charts that have something to show (none for a period without complaints)."""
    with _lock:
        return _render(report, language)


def _render(report: Report, language: str) -> list[Chart]:
    w = Words(language)
    specs = _specs(report, w)
    if not specs:
        return []
    font: str | None = None
    if language != "en":
        texts = [text for spec in specs for text in (*spec.texts, spec.subtitle)]
        font = find_font([*texts, report.period.span()], language)
        if font is None:
            log.warning("no %s font for the charts; drawing them in English", language)
            return _render(report, "en")
    charts = []
    for spec in specs:
        png, smallest, missing = _draw(spec, report.period.span(), font)
        if missing:
            if language != "en":
                log.warning("%s; drawing the charts in English", missing[0])
                return _render(report, "en")
            log.warning("chart %s: %s", spec.name, missing[0])
        title = f"{spec.title} · {report.period.span()}"
        charts.append(Chart(spec.name, title, language, png, smallest))
    return charts


def write_charts(charts: list[Chart], report: Report, folder: Path) -> list[Path]:
    paths = []
    for chart in charts:
        path = folder / chart.filename(report)
        path.write_bytes(chart.png)
        paths.append(path)
    return paths
