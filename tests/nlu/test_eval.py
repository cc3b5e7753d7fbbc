"""`python -m bot nlu eval FILE.jsonl ...`: figures on a support team's own labelled tickets.

Every text here was written for this test.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import f1_score

from bot.nlu.model import TriageModel
from bot.nlu.realeval import TicketFileError, read_tickets, scored_motives
from tests.conftest import run_cli


def _detection(id_: str, lang: str, text: str, is_complaint: bool) -> dict[str, Any]:
    return {"id": id_, "lang": lang, "text": text, "is_complaint": is_complaint}


def _complaint(id_: str, lang: str, text: str, type_: str, motive: str) -> dict[str, Any]:
    return {"id": id_, "lang": lang, "text": text, "complaint_type": type_, "motive": motive}


DETECTION = [
    _detection("d-en-1", "en", "my card was charged twice for one order and nobody answers", True),
    _detection("d-en-2", "en", "The parcel arrived crushed and the screen is cracked", True),
    _detection("d-en-3", "en", "I've been on hold for an hour, this is ridiculous", True),
    _detection("d-en-4", "en", "hi there", False),
    _detection("d-en-5", "en", "thanks, that solved it", False),
    _detection("d-en-6", "en", "what are your opening hours on Sunday?", False),
    _detection("d-zh-1", "zh", "快递一个礼拜了还没到,太慢了", True),
    _detection("d-zh-2", "zh", "耳机用了两天就坏了,质量太差", True),
    _detection("d-zh-3", "zh", "你好", False),
    _detection("d-zh-4", "zh", "请问周末几点开门?", False),
]
COMPENSATION = [
    ("I was billed twice this month, refund the extra charge", "billing"),
    ("The blender broke after one use, I want my money back", "product_quality"),
    ("My package never arrived, please refund me", "delivery"),
    ("The coat looks nothing like the photo, I want a full refund", "misleading_marketing"),
    ("Charged a cancellation fee nobody told me about, give it back", "billing"),
    ("The heater smoked and burned my rug, I expect compensation", "safety"),
    ("Your technician never showed up, pay me for the day I took off", "after_sales"),
    ("The coupon was refused at checkout, refund the difference", "misleading_marketing"),
]
COMPLAINTS = [
    # en: eight compensation rows (scored), three fix and one unspecified (left out)
    *(
        _complaint(f"c-en-{n}", "en", text, type_, "compensation")
        for n, (text, type_) in enumerate(COMPENSATION, start=1)
    ),
    _complaint("c-en-9", "en", "The app keeps logging me out, fix it", "product_quality", "fix"),
    _complaint("c-en-10", "en", "Two items are missing, send them", "delivery", "fix"),
    _complaint("c-en-11", "en", "My warranty repair still isn't done", "after_sales", "fix"),
    _complaint("c-en-12", "en", "The order was delivered on Tuesday", "delivery", "unspecified"),
    # no id, no lang, no motive: the id is <file>:<line>, the language is detected
    {"text": "The waiter was rude and rolled his eyes at us", "complaint_type": "service_attitude"},
    # zh: two venting rows only, so no zh motive is scored
    _complaint("c-zh-1", "zh", "买的手机屏幕有坏点,质量太差了", "product_quality", "venting"),
    _complaint("c-zh-2", "zh", "外卖送了两个小时,饭都凉了", "delivery", "venting"),
    # a row may have several labels
    {
        "id": "c-zh-3",
        "lang": "zh",
        "text": "发了三封邮件都没人回复",
        "is_complaint": True,
        "complaint_type": "slow_response",
    },
]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    return path


def _line(stdout: str, language: str, axis: str) -> list[str]:
    """The summary-table line of one language and axis, split in columns."""
    found = [line.split() for line in stdout.splitlines() if line.split()[:2] == [language, axis]]
    assert len(found) == 1, stdout
    return found[0]


def _expected(
    model: TriageModel, rows: list[dict[str, Any]], axis: str
) -> tuple[float, set[str], dict[str, dict[str, Any]]]:
    """macro-F1, ids of the errors and the parses, worked out here from the model itself."""
    parses = {row["id"]: model.parse(row["text"]) for row in rows}
    if axis == "is_complaint":
        gold = ["complain" if row["is_complaint"] else "not_complaint" for row in rows]
        predicted = [
            "complain" if parses[row["id"]]["intent"]["name"] == "complain" else "not_complaint"
            for row in rows
        ]
    else:
        gold = [row[axis] for row in rows]
        predicted = [parses[row["id"]][axis]["name"] for row in rows]
    score = f1_score(gold, predicted, labels=sorted(set(gold)), average="macro", zero_division=0)
    wrong = {row["id"] for row, g, p in zip(rows, gold, predicted, strict=True) if g != p}
    return float(score), wrong, parses


SIGNAL_ROWS = [
    {"id": "s-1", "lang": "en", "text": "hi, is anyone there?", "signals": []},
    {"id": "s-2", "lang": "en", "text": "thanks, bye", "signals": []},
    {"id": "s-3", "lang": "en", "text": "how do I change my delivery address", "signals": []},
    {"id": "s-4", "lang": "en", "text": "I'm taking this to the consumer regulator and the local "
     "paper", "signals": ["major_media"]},
    {"id": "s-5", "lang": "en", "text": "fourth time I'm writing about the same refund",
     "signals": ["repeat_contact"]},
    {"id": "s-6", "lang": "zh", "text": "好的谢谢", "signals": []},
    {"id": "s-7", "lang": "zh", "text": "你们这群骗子，我要去12315投诉", "signals": ["abusive",
     "major_media"]},
]  # fmt: skip


@pytest.mark.slow
def test_eval_counts_false_alarms_and_each_signals_recall(
    cli_env: dict[str, str], model: TriageModel, tmp_path: Path
) -> None:
    """Signal rows: a harmless message that raises any signal is a false alarm; each
    signal's recall counts the messages that should raise it."""
    source = _write(tmp_path / "signals.jsonl", SIGNAL_ROWS)
    out = tmp_path / "out"
    done = run_cli("nlu", "eval", str(source), "--out", str(out), env=cli_env)
    assert done.returncode == 0, done.stderr
    parses = {row["id"]: model.parse(row["text"]) for row in SIGNAL_ROWS}
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    written = [
        json.loads(line)
        for language in ("en", "zh")
        for line in (out / f"{language}_signals_errors.jsonl").read_text("utf-8").splitlines()
    ]
    for language in ("en", "zh"):
        rows = [row for row in SIGNAL_ROWS if row["lang"] == language]
        harmless = [row for row in rows if not row["signals"]]
        alarms = [row["id"] for row in harmless if parses[row["id"]]["signals"]]
        figures = summary["languages"][language]["signals"]
        assert (figures["harmless"], figures["false_alarms"]) == (len(harmless), len(alarms))
        line = _line(done.stdout, language, "signals")
        assert line[2:5] == [str(len(harmless)), "false", "alarms"]
        assert line[5] == str(len(alarms))
        for signal in {name for row in rows for name in row["signals"]}:
            expected = [row for row in rows if signal in row["signals"]]
            found = [row for row in expected if signal in parses[row["id"]]["signals"]]
            assert figures["recall"][signal]["found"] == len(found)
            assert _line(done.stdout, language, signal)[2:6] == [
                str(len(expected)),
                "recall",
                f"{len(found) / len(expected):.3f}",
                f"({len(found)}",
            ]
        wrong = {
            row["id"]
            for row in rows
            if (not row["signals"] and parses[row["id"]]["signals"])
            or not set(row["signals"]) <= set(parses[row["id"]]["signals"])
        }
        assert {row["id"] for row in written if row["id"] in {r["id"] for r in rows}} == wrong
    assert all(row["error"] in {"false_alarm", "missed"} for row in written)


def test_scored_motives_needs_eight_rows_and_never_unspecified() -> None:
    gold = ["venting"] * 8 + ["fix"] * 7 + ["apology"] * 9 + ["unspecified"] * 12
    assert scored_motives(gold) == ("apology", "venting")  # in MOTIVES order
    assert scored_motives(gold, min_rows=7) == ("fix", "apology", "venting")
    assert scored_motives(["compensation"] * 7) == ()
    assert scored_motives([]) == ()


def test_eval_prints_the_figures_and_writes_the_results(
    cli_env: dict[str, str], model: TriageModel, tmp_path: Path
) -> None:
    detection = _write(tmp_path / "detection.jsonl", DETECTION)
    complaints = _write(tmp_path / "complaints.jsonl", COMPLAINTS)
    out = tmp_path / "out"
    done = run_cli("nlu", "eval", str(detection), str(complaints), "--out", str(out), env=cli_env)
    assert done.returncode == 0, done.stderr
    stdout = done.stdout
    assert stdout.startswith("nlu eval: 26 rows (zh 7, en 19) from detection.jsonl, complaints")
    assert "parser: embedded model" in stdout

    unnamed = {**COMPLAINTS[12], "id": "complaints.jsonl:13"}
    cases = {
        ("en", "is_complaint"): [r for r in DETECTION if r["lang"] == "en"],
        ("zh", "is_complaint"): [*(r for r in DETECTION if r["lang"] == "zh"), COMPLAINTS[15]],
        ("en", "complaint_type"): [*COMPLAINTS[:12], unnamed],
        ("zh", "complaint_type"): COMPLAINTS[13:],
        ("en", "motive"): COMPLAINTS[:8],
    }
    for (language, axis), rows in cases.items():
        score, wrong, parses = _expected(model, rows, axis)
        assert _line(stdout, language, axis)[2:4] == [str(len(rows)), f"{score:.3f}"]
        assert f"{language} {axis}: {len(rows)} rows, macro-F1 {score:.3f}" in stdout

        errors_file = out / f"{language}_{axis}_errors.jsonl"
        errors = [json.loads(line) for line in errors_file.read_text("utf-8").splitlines()]
        assert {error["id"] for error in errors} == wrong
        for error in errors:
            assert list(error)[:5] == ["id", "text", "gold", "predicted", "confidence"]
            key = "intent" if axis == "is_complaint" else axis
            assert error["confidence"] == parses[error["id"]][key]["confidence"]
            assert error["gold"] != error["predicted"]

        report = json.loads((out / f"{language}_{axis}_report.json").read_text("utf-8"))
        assert report["support"] == len(rows)
        assert report["macro_f1"] == pytest.approx(score, abs=1e-4)

    # The motive rule: en scores only compensation (8 rows); fix (3) and unspecified are left out.
    assert "left out (< 8 rows or unspecified): fix 3, unspecified 1" in stdout
    assert _line(stdout, "zh", "motive")[2:5] == ["0", "-", "left"]
    assert not (out / "zh_motive_errors.jsonl").exists()
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["rows"] == 26
    en = summary["languages"]["en"]
    assert en["rows"] == 19
    assert en["motive"]["labels"] == ["compensation"]
    assert en["motive"]["left_out"] == {"fix": 3, "unspecified": 1}
    assert summary["languages"]["zh"]["motive"] == {
        "rows": 0,
        "min_rows": 8,
        "left_out": {"venting": 2},
    }
    assert set(en["complaint_type"]["per_label"]["billing"]) == {
        "precision",
        "recall",
        "f1",
        "support",
    }
    # Confusion pairs, printed and in the summary, are counted from the error rows.
    errors_file = out / "en_complaint_type_errors.jsonl"
    errors = [json.loads(line) for line in errors_file.read_text("utf-8").splitlines()]
    counted = Counter((error["gold"], error["predicted"]) for error in errors)
    expected_pairs = sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:10]
    pairs = en["complaint_type"]["confusion_pairs"]
    assert [((p["gold"], p["predicted"]), p["count"]) for p in pairs] == expected_pairs
    for pair in pairs:
        assert f"{pair['gold']} -> {pair['predicted']}" in stdout
    assert sorted(out.iterdir()) == sorted(
        out / name
        for name in [
            "summary.json",
            *(
                f"{lang}_{axis}_{kind}"
                for lang, axis in cases
                for kind in ("report.json", "errors.jsonl")
            ),
        ]
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"text": "late again", "complaint_type": "delivery"}', '{"text": "oops",'],
            "{file}:2: not JSON (Expecting property name enclosed in double quotes, column 17)",
        ),
        (
            ['{"text": "rude staff", "complaint_type": "servce_attitude"}'],
            "{file}:1: unknown complaint_type 'servce_attitude' (one of: product_quality, "
            "delivery, billing, misleading_marketing, service_attitude, slow_response, "
            "after_sales, safety, other)",
        ),
        (
            ["", '{"id": "x", "is_complaint": true}', '{"text": "hi", "motive": "anger"}'],
            '{file}:2: no "text" (and 1 more bad lines)',
        ),
        (
            ['{"text": "hi", "is_complaint": "yes"}'],
            "{file}:1: is_complaint must be true or false, not 'yes'",
        ),
        (['{"text": "hi", "lang": "fr", "is_complaint": false}'], "{file}:1: unknown lang 'fr'"),
        (
            ['{"text": "hi"}'],
            "{file}:1: no label: give is_complaint, complaint_type, motive or signals",
        ),
        (
            ['{"text": "you idiots", "signals": ["rude"]}'],
            "{file}:1: signals must be a list of: major_media, repeat_contact, abusive, "
            "threat_of_harm",
        ),
    ],
    ids=[
        "not-json",
        "unknown-label",
        "no-text",
        "not-a-boolean",
        "unknown-lang",
        "no-label",
        "unknown-signal",
    ],
)
def test_a_bad_line_is_one_line_naming_file_and_line(
    cli_env: dict[str, str], tmp_path: Path, lines: list[str], message: str
) -> None:
    source = tmp_path / "tickets.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli("nlu", "eval", str(source), "--out", str(out), env=cli_env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: " + message.format(file=source))
    assert done.stderr.count("\n") == 1
    assert not out.exists()


def test_a_missing_file_is_named(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("nlu", "eval", str(tmp_path / "nope.jsonl"), env=cli_env)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: no such file: {tmp_path / 'nope.jsonl'}"


def test_defaults_and_a_byte_order_mark(tmp_path: Path) -> None:
    source = tmp_path / "export.jsonl"
    source.write_text(
        '{"text": "where is my order", "motive": "explanation", "id": 7}\n'
        '{"text": "退钱", "complaint_type": null, "motive": "compensation"}\n',
        encoding="utf-8-sig",
    )
    first, second = read_tickets([source])
    assert (first.id, first.source, first.lang, first.motive) == ("7", "export.jsonl:1", None, "explanation")  # fmt: skip  # noqa: E501
    assert (second.id, second.complaint_type) == ("export.jsonl:2", None)
    source.write_bytes(b'{"text": "ok", "is_complaint": true}\n{"text": "\xff"}\n')
    with pytest.raises(TicketFileError, match=r"export\.jsonl:2: not UTF-8 text"):
        read_tickets([source])
