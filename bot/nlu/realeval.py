"""`nlu eval`: score the classifier on a support team's own labelled tickets.

Input is JSONL, one ticket per line (UTF-8)::

    {"id": "t-1", "lang": "en", "text": "...", "source": "...", "is_complaint": true}
    {"id": "t-2", "lang": "zh", "text": "...", "complaint_type": "delivery", "motive": "fix"}

A row has ``text`` and at least one of ``is_complaint``, ``complaint_type``,
``motive`` and ``signals`` (the list of signals the message must raise; ``[]`` for a
message that must raise none); a label given as null counts as absent. ``id`` and
``source`` default to ``<file name>:<line>``, ``lang`` to the language the parser
detects. A bad line (not JSON, no text, an unknown label or language) stops the run
before anything is parsed:
a typo in a label would otherwise quietly change the figures.

Per language it scores three axes with :class:`~bot.nlu.evaluate.AxisResult`:
``is_complaint`` (predicted complaint when the top intent is ``complain``),
``complaint_type`` and ``motive`` (see :func:`scored_motives`); and for rows with
``signals``, the share of harmless messages that raised any signal (false alarms: a
confused customer scolded, a polite one sent to a supervisor) and each signal's recall.

Why this module is over 400 lines: reading a labelled file (with a message for every bad
line), scoring it per language and axis, and writing the report are the three steps of
one command over one row type; most of the length is the checks on input a support team
wrote by hand.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.nlu.evaluate import NOT_COMPLAINT, AxisResult
from bot.nlu.labels import COMPLAIN, COMPLAINT_TYPES, LANGUAGES, MOTIVES, SIGNALS, Parse, Ranked

UNSPECIFIED = "unspecified"
MIN_MOTIVE_ROWS = 8
AXES = ("is_complaint", "complaint_type", "motive")
TOP_CONFUSIONS = 10


class TicketFileError(ValueError):
    """A labelled file that cannot be read; the message is one line naming file and line."""


@dataclass(frozen=True)
class Ticket:
    """One labelled row; a label is None when the row does not give it."""

    id: str
    source: str
    text: str
    lang: str | None = None
    is_complaint: bool | None = None
    complaint_type: str | None = None
    motive: str | None = None
    signals: tuple[str, ...] | None = None


def _signals(row: dict[str, Any]) -> tuple[str, ...] | None:
    value = row.get("signals")
    if value is None:
        return None
    if not isinstance(value, list) or any(item not in SIGNALS for item in value):
        raise ValueError(f"signals must be a list of: {', '.join(SIGNALS)}")
    return tuple(value)


def _label(row: dict[str, Any], key: str, allowed: Sequence[str]) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise ValueError(f"unknown {key} {value!r} (one of: {', '.join(allowed)})")
    return str(value)


def _ticket(row: object, where: str) -> Ticket:
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    text = row.get("text")
    if not isinstance(text, str):
        raise ValueError('no "text"' if text is None else '"text" is not a string')
    if not text.strip():
        raise ValueError('"text" is empty')
    is_complaint = row.get("is_complaint")
    if is_complaint is not None and not isinstance(is_complaint, bool):
        raise ValueError(f"is_complaint must be true or false, not {is_complaint!r}")
    ticket = Ticket(
        id=str(row["id"]) if row.get("id") is not None else where,
        source=str(row["source"]) if row.get("source") is not None else where,
        text=text,
        lang=_label(row, "lang", LANGUAGES),
        is_complaint=is_complaint,
        complaint_type=_label(row, "complaint_type", COMPLAINT_TYPES),
        motive=_label(row, "motive", (*MOTIVES, UNSPECIFIED)),
        signals=_signals(row),
    )
    labels = (ticket.is_complaint, ticket.complaint_type, ticket.motive, ticket.signals)
    if all(label is None for label in labels):
        raise ValueError("no label: give is_complaint, complaint_type, motive or signals")
    return ticket


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise TicketFileError(f"no such file: {path}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise TicketFileError(f"{path}:{line}: not UTF-8 text") from None


def read_tickets(paths: Sequence[Path]) -> list[Ticket]:
    """Every labelled row of the files, in order; blank lines are skipped.

    Raises :class:`TicketFileError` for the first bad line, saying how many more there are.
    """
    tickets: list[Ticket] = []
    problems: list[str] = []
    for path in paths:
        for number, line in enumerate(_lines(path), start=1):
            if not line.strip():
                continue
            try:
                tickets.append(_ticket(json.loads(line), f"{path.name}:{number}"))
            except json.JSONDecodeError as error:
                problems.append(f"{path}:{number}: not JSON ({error.msg}, column {error.colno})")
            except ValueError as error:
                problems.append(f"{path}:{number}: {error}")
    if problems:
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        raise TicketFileError(problems[0] + more)
    if not tickets:
        raise TicketFileError(f"no labelled rows in {', '.join(str(path) for path in paths)}")
    return tickets


def scored_motives(gold: Iterable[str], min_rows: int = MIN_MOTIVE_ROWS) -> tuple[str, ...]:
    """The motives that count in one language's motive macro-F1, in MOTIVES order.

    A motive counts when the language has at least ``min_rows`` gold rows of it, so
    that a label with a handful of rows cannot swing the average; ``unspecified``
    never counts, as the model never predicts it. Rows whose gold motive does not
    count are left out of the motive score (neither scored nor listed as errors);
    the summary gives their number per label.
    """
    counts = Counter(gold)
    return tuple(motive for motive in MOTIVES if counts[motive] >= min_rows)


@dataclass
class LanguageResult:
    """The three axes of one language, and the motive rows the ≥8-rows rule left out."""

    rows: int = 0
    axes: dict[str, AxisResult] = field(default_factory=dict)
    motive_left_out: dict[str, int] = field(default_factory=dict)
    signals: SignalResult | None = None


@dataclass
class SignalResult:
    """Harmless messages that raised a signal, and each signal's hits on messages that should."""

    harmless: int = 0
    false_alarms: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    missed: list[dict[str, Any]] = field(default_factory=list)

    def add(self, ticket: Ticket, parse: Parse) -> None:
        fired = set(parse["signals"])
        row = {"id": ticket.id, "text": ticket.text, "gold": list(ticket.signals or ())}
        scores = {"fired": sorted(fired), "scores": parse.get("signal_scores", {})}
        if not ticket.signals:
            self.harmless += 1
            if fired:
                self.false_alarms.append(row | scores)
            return
        for signal in ticket.signals:
            self.expected[signal] = self.expected.get(signal, 0) + 1
            if signal in fired:
                self.found[signal] = self.found.get(signal, 0) + 1
        if not set(ticket.signals) <= fired:
            self.missed.append(row | scores)

    def summary(self) -> dict[str, Any]:
        rate = len(self.false_alarms) / self.harmless if self.harmless else None
        return {
            "harmless": self.harmless,
            "false_alarms": len(self.false_alarms),
            "false_alarm_rate": round(rate, 4) if rate is not None else None,
            "recall": {
                signal: {
                    "found": self.found.get(signal, 0),
                    "of": self.expected[signal],
                    "recall": round(self.found.get(signal, 0) / self.expected[signal], 4),
                }
                for signal in SIGNALS
                if self.expected.get(signal)
            },
        }


def _add(result: AxisResult, ticket: Ticket, gold: str, predicted: Ranked) -> None:
    result.add(
        ticket.text,
        gold,
        predicted["name"],
        id=ticket.id,
        confidence=predicted["confidence"],
        source=ticket.source,
    )


def evaluate_tickets(
    tickets: Sequence[Ticket], parses: Sequence[Parse]
) -> dict[str, LanguageResult]:
    """Score each ticket against its parse; languages in LANGUAGES order, axes with rows only."""
    by_language: dict[str, list[tuple[Ticket, Parse]]] = {}
    for ticket, parse in zip(tickets, parses, strict=True):
        by_language.setdefault(ticket.lang or parse["language"], []).append((ticket, parse))
    results: dict[str, LanguageResult] = {}
    for language in LANGUAGES:
        rows = by_language.get(language, [])
        if not rows:
            continue
        motives = scored_motives(t.motive for t, _ in rows if t.motive is not None)
        result = LanguageResult(rows=len(rows))
        complaint = AxisResult((COMPLAIN, NOT_COMPLAINT))
        types = AxisResult(COMPLAINT_TYPES)
        motive = AxisResult(motives)
        for ticket, parse in rows:
            if ticket.signals is not None:
                result.signals = result.signals or SignalResult()
                result.signals.add(ticket, parse)
            if ticket.is_complaint is not None:
                intent = parse["intent"]
                complaint.add(
                    ticket.text,
                    COMPLAIN if ticket.is_complaint else NOT_COMPLAINT,
                    COMPLAIN if intent["name"] == COMPLAIN else NOT_COMPLAINT,
                    id=ticket.id,
                    confidence=intent["confidence"],
                    intent=intent["name"],
                    source=ticket.source,
                )
            if ticket.complaint_type is not None:
                _add(types, ticket, ticket.complaint_type, parse["complaint_type"])
            if ticket.motive is not None:
                if ticket.motive in motives:
                    _add(motive, ticket, ticket.motive, parse["motive"])
                else:
                    left_out = result.motive_left_out
                    left_out[ticket.motive] = left_out.get(ticket.motive, 0) + 1
        for axis, scored in zip(AXES, (complaint, types, motive), strict=True):
            if scored.gold:
                result.axes[axis] = scored
        results[language] = result
    return results


def _per_label(result: AxisResult) -> dict[str, dict[str, float]]:
    report = result.report()["per_label"]
    return {
        label: {
            "precision": round(report[label]["precision"], 4),
            "recall": round(report[label]["recall"], 4),
            "f1": round(report[label]["f1-score"], 4),
            "support": int(report[label]["support"]),
        }
        for label in result.present()
    }


def _axis_summary(result: AxisResult) -> dict[str, Any]:
    return {
        "rows": len(result.gold),
        "macro_f1": round(result.macro_f1(), 4),
        "labels": result.present(),
        "per_label": _per_label(result),
        "confusion_pairs": [
            {"gold": gold, "predicted": predicted, "count": count}
            for gold, predicted, count in result.confusion_pairs(TOP_CONFUSIONS)
        ],
        "errors": len(result.errors()),
    }


def summarise(
    results: dict[str, LanguageResult], files: Sequence[Path], parser: str
) -> dict[str, Any]:
    """Every figure of the run, as written to summary.json."""
    languages: dict[str, Any] = {}
    for language, result in results.items():
        axes: dict[str, Any] = {"rows": result.rows}
        for axis, scored in result.axes.items():
            axes[axis] = _axis_summary(scored)
        if "motive" in axes or result.motive_left_out:
            axes.setdefault("motive", {"rows": 0})
            axes["motive"]["min_rows"] = MIN_MOTIVE_ROWS
            axes["motive"]["left_out"] = dict(sorted(result.motive_left_out.items()))
        if result.signals is not None:
            axes["signals"] = result.signals.summary()
        languages[language] = axes
    return {
        "files": [str(path) for path in files],
        "parser": parser,
        "rows": sum(result.rows for result in results.values()),
        "languages": languages,
    }


def write_eval(results: dict[str, LanguageResult], summary: dict[str, Any], out: Path) -> None:
    """summary.json, and per language and axis <lang>_<axis>_report.json and _errors.jsonl.

    Files of ours from an earlier run for an axis without rows now are removed.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    for language in LANGUAGES:
        result = results.get(language)
        signals_path = out / f"{language}_signals_errors.jsonl"
        if result is None or result.signals is None:
            signals_path.unlink(missing_ok=True)
        else:
            with signals_path.open("w", encoding="utf-8") as handle:
                for kind, rows in (
                    ("false_alarm", result.signals.false_alarms),
                    ("missed", result.signals.missed),
                ):
                    for row in rows:
                        handle.write(json.dumps({"error": kind} | row, ensure_ascii=False) + "\n")
        for axis in AXES:
            report_path = out / f"{language}_{axis}_report.json"
            errors_path = out / f"{language}_{axis}_errors.jsonl"
            scored = result.axes.get(axis) if result else None
            if scored is None:
                report_path.unlink(missing_ok=True)
                errors_path.unlink(missing_ok=True)
                continue
            report = scored.report()
            if axis == "motive" and result is not None:
                report["min_rows"] = MIN_MOTIVE_ROWS
                report["left_out"] = dict(sorted(result.motive_left_out.items()))
            report_path.write_text(
                json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            with errors_path.open("w", encoding="utf-8") as handle:
                for error in scored.errors():
                    handle.write(json.dumps(error, ensure_ascii=False) + "\n")


def format_eval(summary: dict[str, Any], out: Path) -> str:
    """The stdout table: macro-F1 per language and axis, then per-label figures and confusions."""
    names = ", ".join(Path(name).name for name in summary["files"])
    counts = ", ".join(f"{lang} {axes['rows']}" for lang, axes in summary["languages"].items())
    lines = [
        f"nlu eval: {summary['rows']} rows ({counts}) from {names}; parser: {summary['parser']}",
        f"results written to {out}/",
        "",
        f"{'lang':<6}{'axis':<16}{'rows':>6}{'macro-F1':>10}",
    ]
    details: list[str] = []
    for language, axes in summary["languages"].items():
        signals = axes.get("signals")
        if signals is not None:
            if signals["harmless"]:
                lines.append(
                    f"{language:<6}{'signals':<16}{signals['harmless']:>6}"
                    f"  false alarms {signals['false_alarms']} "
                    f"({100 * signals['false_alarm_rate']:.1f}%) on harmless messages"
                )
            for signal, figures in signals["recall"].items():
                lines.append(
                    f"{language:<6}{signal:<16}{figures['of']:>6}"
                    f"  recall {figures['recall']:.3f} ({figures['found']} of {figures['of']})"
                )
        for axis in AXES:
            figures = axes.get(axis)
            if figures is None:
                continue
            note = ""
            if figures.get("left_out"):
                left = ", ".join(f"{label} {n}" for label, n in figures["left_out"].items())
                note = f"  left out (< {MIN_MOTIVE_ROWS} rows or unspecified): {left}"
            if not figures["rows"]:
                lines.append(f"{language:<6}{axis:<16}{0:>6}{'-':>10}{note}")
                continue
            lines.append(
                f"{language:<6}{axis:<16}{figures['rows']:>6}{figures['macro_f1']:>10.3f}{note}"
            )
            details.append("")
            details.append(
                f"{language} {axis}: {figures['rows']} rows, macro-F1 {figures['macro_f1']:.3f}, "
                f"{figures['errors']} errors"
            )
            details.append(f"  {'label':<22}{'prec':>6}{'rec':>7}{'F1':>7}{'n':>6}")
            for label, score in figures["per_label"].items():
                details.append(
                    f"  {label:<22}{score['precision']:>6.3f}{score['recall']:>7.3f}"
                    f"{score['f1']:>7.3f}{score['support']:>6}"
                )
            if figures["confusion_pairs"]:
                details.append("  confusions (gold -> predicted):")
                for pair in figures["confusion_pairs"]:
                    arrow = f"{pair['gold']} -> {pair['predicted']}"
                    details.append(f"    {arrow:<42}{pair['count']:>4}")
    return "\n".join(lines + details)
