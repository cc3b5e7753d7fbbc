"""Settings: read from the environment, validated with one clear line per problem."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.config import BusinessHours, ClockWindow, ConfigError, load_settings, parse_duration

GOOD_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


def test_defaults_follow_the_architecture_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    settings = load_settings(_env_file=None)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.default_language == "zh"
    assert settings.first_contact_sla == timedelta(hours=2)
    assert settings.progress_sla == timedelta(days=3)
    assert settings.action_server_url is None
    assert settings.telegram_bot_token is None


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", GOOD_TOKEN)
    monkeypatch.setenv("AGENT_IDS", "11, 22,33")
    monkeypatch.setenv("SUPERVISOR_IDS", "44")
    monkeypatch.setenv("SURVEY_DELAY", "2s")
    monkeypatch.setenv("FIRST_CONTACT_SLA", "90m")
    monkeypatch.setenv("BUSINESS_HOURS", "Mon-Fri 09:00-18:00")
    monkeypatch.setenv("QUIET_HOURS", "22:00-08:00")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081/bot/")
    settings = load_settings(_env_file=None)
    assert settings.telegram_bot_token == GOOD_TOKEN
    assert settings.agent_ids == [11, 22, 33]
    assert settings.supervisor_ids == [44]
    assert settings.survey_delay == timedelta(seconds=2)
    assert settings.first_contact_sla == timedelta(minutes=90)
    assert settings.telegram_api_base_url == "http://127.0.0.1:8081/bot"
    hours = settings.hours
    assert hours is not None and hours.days == frozenset(range(5))
    quiet = settings.quiet
    assert quiet is not None and quiet.contains(time(23, 30)) and not quiet.contains(time(12))


def test_a_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEFAULT_LANGUAGE", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("DEFAULT_LANGUAGE=en\nSTAFF_CHAT_ID=-1001234567890\n")
    settings = load_settings(_env_file=env_file)
    assert settings.default_language == "en"
    assert settings.staff_chat_id == -1001234567890


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TELEGRAM_BOT_TOKEN", "changeme", "TELEGRAM_BOT_TOKEN: is a placeholder"),
        ("TELEGRAM_BOT_TOKEN", "12345", "TELEGRAM_BOT_TOKEN: does not look like a bot token"),
        ("AGENT_IDS", "alice,bob", "AGENT_IDS: 'alice,bob' must be Telegram user ids"),
        ("DEFAULT_LANGUAGE", "fr", "DEFAULT_LANGUAGE: Input should be 'zh' or 'en'"),
        ("TIMEZONE", "Mars/Olympus", "TIMEZONE: 'Mars/Olympus' is not a time zone"),
        ("SURVEY_DELAY", "tomorrow", "SURVEY_DELAY: 'tomorrow' is not a duration"),
        ("BUSINESS_HOURS", "Mon-Fri 18:00-09:00", "BUSINESS_HOURS: business hours must open"),
        ("BUSINESS_HOURS", "Moonday 09:00-18:00", "BUSINESS_HOURS: unknown day"),
        ("QUIET_HOURS", "late", "QUIET_HOURS: 'late' is not a time window"),
        (
            "WEBHOOK_URL",
            "example.org/hook",
            "WEBHOOK_URL: 'example.org/hook' is not an http(s) URL",
        ),
        ("LISTEN", "8080", "LISTEN: '8080' must be host:port"),
        ("STAFF_CHAT_ID", "staff", "STAFF_CHAT_ID: Input should be a valid integer"),
        ("REPORTS", "daily", "REPORTS: unknown report period 'daily'"),
        ("RETENTION_DAYS", "0", "RETENTION_DAYS: Input should be greater than or equal to 1"),
        ("REPORT_TIME", "8am", "REPORT_TIME: '8am' is not a time of day"),
        ("AGENT_CAPACITY", "0", "AGENT_CAPACITY: Input should be greater than or equal to 1"),
        ("CHECKIN_INTERVAL", "often", "CHECKIN_INTERVAL: 'often' is not a duration"),
    ],
)
def test_bad_values_are_refused_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(_env_file=None)
    assert message in str(raised.value)
    assert "Traceback" not in str(raised.value)


def test_every_problem_is_listed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_LANGUAGE", "fr")
    monkeypatch.setenv("SURVEY_DELAY", "soon")
    with pytest.raises(ConfigError) as raised:
        load_settings(_env_file=None)
    assert "DEFAULT_LANGUAGE:" in str(raised.value) and "SURVEY_DELAY:" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2s", 2),
        ("10m", 600),
        ("2h", 7200),
        ("3d", 259200),
        ("1w", 604800),
        ("45", 45),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, expected: int) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


def test_business_hours_wrap_the_week_and_quiet_hours_wrap_midnight() -> None:
    assert BusinessHours.parse("Sat-Mon 10:00-16:00").days == frozenset({5, 6, 0})
    assert BusinessHours.parse("Mon,Wed 09:00-17:30").closes == time(17, 30)
    window = ClockWindow.parse("22:00-08:00")
    assert window.contains(time(3)) and window.contains(time(22)) and not window.contains(time(8))
