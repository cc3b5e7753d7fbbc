"""`python -m bot ...` as an operator runs it: JSON on stdout, one-line errors on stderr."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.chat import chat
from bot.config import Settings
from bot.store import Database, Message
from tests.conftest import copy_small_nlu_data, run_cli


def test_parse_prints_one_json_object(cli_env: dict[str, str]) -> None:
    done = run_cli("nlu", "parse", "我的快递丢了,订单号SO2024110588123,赶紧给我补发", env=cli_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["intent"]["name"] == "complain"
    assert result["complaint_type"]["name"] == "delivery"
    assert result["language"] == "zh"
    assert {"entity": "order_id", "value": "SO2024110588123"}.items() <= result["entities"][
        0
    ].items()


@pytest.mark.slow
def test_parse_file_keeps_order_for_a_thousand_lines(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    base = ["hello", "退钱!", "", "where is my parcel, it's a week late", "😡", "谢谢"]
    texts = [
        f"{base[i % len(base)]}" if i % 7 else f"line {i}: order #{10_000_000 + i}"
        for i in range(1000)
    ]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    done = run_cli("nlu", "parse", "--file", str(source), env=cli_env)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [result["text"] for result in results] == texts
    assert results[7]["entities"][0]["value"] == "10000007"


def test_parse_reads_standard_input(cli_env: dict[str, str]) -> None:
    done = run_cli(
        "nlu", "parse", "--file", "-", env=cli_env, stdin="hi\nmy card was charged twice\n"
    )
    assert [json.loads(line)["intent"]["name"] for line in done.stdout.splitlines()] == [
        "greet",
        "complain",
    ]


def test_bad_input_never_prints_a_traceback(cli_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "bad.txt"
    source.write_bytes("ok\n\xff\xfe broken bytes \x00\n<b>x</b>\n".encode("latin-1"))
    done = run_cli("nlu", "parse", "--file", str(source), env=cli_env)
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 3
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_file_is_one_line_on_stderr(cli_env: dict[str, str]) -> None:
    done = run_cli("nlu", "parse", "--file", "/no/such/file.txt", env=cli_env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == "error: no such file: /no/such/file.txt"


def test_bad_configuration_is_reported_clearly(cli_env: dict[str, str]) -> None:
    done = run_cli("nlu", "parse", "hi", env={**cli_env, "DEFAULT_LANGUAGE": "fr"})
    assert done.returncode == 2
    assert "DEFAULT_LANGUAGE: Input should be 'zh' or 'en'" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_without_a_token_says_what_to_do(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("run", env=cli_env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "TELEGRAM_BOT_TOKEN is not set" in done.stderr
    assert "-m bot chat" in done.stderr  # and how to try the bot without one


@pytest.mark.slow
def test_nlu_test_writes_reports(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = copy_small_nlu_data(tmp_path / "nlu_data")  # reports, not figures: a third of it
    env = {**cli_env, "NLU_DATA_DIR": str(data)}
    done = run_cli("nlu", "test", "--folds", "2", "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr
    assert "2-fold cross-validation" in done.stdout and "held-out set" in done.stdout
    report = json.loads(
        (tmp_path / "out" / "cross_validation" / "zh" / "complaint_type.json").read_text()
    )
    assert set(report["per_label"]) >= {"product_quality", "safety", "macro avg"}
    assert len(report["confusion_matrix"]["rows_gold_columns_predicted"]) == 9
    assert (tmp_path / "out" / "holdout" / "en" / "motive_errors.jsonl").exists()


def test_chat_with_piped_input_prints_bot_lines_and_numbered_buttons(
    cli_env: dict[str, str], database_url: str
) -> None:
    env = {**cli_env, "DATABASE_URL": database_url}
    script = "hi\nmy parcel never arrived, order SO20241105123\n1\nRefund\n"
    done = run_cli("chat", "--lang", "en", "--name", "Anna", stdin=script, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith(("bot>", "  [", "you> ")) for line in lines), lines
    assert lines[0] == "you> hi"  # piped lines are echoed: the output reads as a transcript
    assert "Anna" in lines[1]
    assert [line for line in lines if line.startswith("you> ")] == [
        f"you> {typed}" for typed in script.splitlines()
    ]
    assert "  [1] Yes, that's right" in lines
    assert "  [2] Not quite" in lines
    # "1" pressed the first button, "Refund" the button with that label
    assert any("refund" in line.lower() or "money" in line.lower() for line in lines)
    assert done.stderr == ""


def test_chat_a_number_after_a_reply_without_buttons_is_typed_text(
    cli_env: dict[str, str], database_url: str
) -> None:
    """ "1" presses a button of the latest reply only; after one without buttons (an open
    question) it is what the customer typed, not a press of an older keyboard."""
    env = {**cli_env, "DATABASE_URL": database_url}
    script = "my parcel never arrived, order SO20241105123\n2\n1\n"
    done = run_cli("chat", "--lang", "en", "--name", "Anna", stdin=script, env=env)
    assert done.returncode == 0, done.stderr
    after = done.stdout.split("you> 1\n", 1)[1]
    assert "expired" not in after and "earlier question" not in after, done.stdout
    assert after.strip(), done.stdout  # answered, as typed text


def test_chat_continues_after_a_restart_and_ends_cleanly_on_empty_input(
    cli_env: dict[str, str], database_url: str
) -> None:
    env = {**cli_env, "DATABASE_URL": database_url}
    first = run_cli("chat", "--lang", "zh", stdin="我的快递丢了\n", env=env)
    assert first.returncode == 0, first.stderr
    assert "  [1] " in first.stdout
    second = run_cli("chat", "--lang", "zh", stdin="1\n", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("you> 1\nbot> ")
    assert "  [1] 退款" in second.stdout or "  [1] " in second.stdout  # "1" pressed "yes"
    assert run_cli("chat", stdin="", env=env).returncode == 0


def test_each_name_or_user_number_is_its_own_customer(
    cli_env: dict[str, str], database_url: str
) -> None:
    """`--name Tom` then `--name Joe`: Joe is greeted as new, not shown Tom's complaint."""
    env = {**cli_env, "DATABASE_URL": database_url}
    tom = run_cli("chat", "--lang", "en", "--name", "Tom", stdin="my parcel is late\n", env=env)
    assert tom.returncode == 0, tom.stderr
    assert "  [1] Yes, that's right" in tom.stdout
    joe = run_cli("chat", "--lang", "en", "--name", "Joe", stdin="hi\n", env=env)
    assert "Hi Joe, thanks" in joe.stdout  # a first greeting, not Tom's open complaint
    assert "welcome back" not in joe.stdout.lower()
    again = run_cli("chat", "--lang", "en", "--name", "Tom", stdin="1\n", env=env)
    assert "Tom" not in again.stdout.splitlines()[1]  # Tom's chat goes on where it was
    assert "you> 1" in again.stdout and "bot> " in again.stdout
    other = run_cli("chat", "--lang", "en", "--user", "42", stdin="hi\n", env=env)
    assert "Hi Guest, thanks" in other.stdout


def test_the_readme_scripted_chat_runs_as_shown(cli_env: dict[str, str], database_url: str) -> None:
    """README: printf 'hi\\nmy parcel never arrived\\n1\\n' | python -m bot chat --fresh"""
    env = {**cli_env, "DATABASE_URL": database_url}
    done = run_cli("chat", "--fresh", stdin="hi\nmy parcel never arrived\n1\n", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["you> hi", "bot> Hi Guest, thanks for getting in touch. How can I help?"]
    assert "顾客" not in done.stdout  # no Chinese name in an English chat
    assert "you> 1" in lines


async def test_lines_typed_quickly_at_a_terminal_are_one_message(settings: Settings) -> None:
    """A customer pasting (or quickly typing) their story over four lines at a terminal
    gets one answer, as in Telegram (MERGE_WINDOW); the lines are stored as one message."""
    primary, secondary = os.openpty()
    source = os.fdopen(secondary, "r", encoding="utf-8")
    out = io.StringIO()
    lines = [
        "my parcel never arrived",
        "order SO20241105123",
        "I've waited two weeks",
        "I want my money back",
    ]
    try:
        assert source.isatty()
        os.write(primary, ("\n".join(lines) + "\n").encode())
        task = asyncio.create_task(
            chat(settings, name="Rosa", language="en", user_id=-77, source=source, out=out)
        )
        await asyncio.sleep(0.5)
        os.write(primary, b"\x04")  # Ctrl-D: end of input
        assert await asyncio.wait_for(task, 300) == 0
    finally:
        source.close()
        os.close(primary)
    shown = out.getvalue()
    db = Database(settings.database_url)
    with db.session() as session:
        said = session.exec(
            select(Message.text).where(Message.direction == "in").order_by(col(Message.id))
        ).all()
    db.dispose()
    assert said == ["\n".join(lines)]  # one turn, not four
    assert "Rosa" in shown and "you> " not in shown.replace("you> ", "", 1), shown
