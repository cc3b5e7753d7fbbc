"""Typed settings read once from the environment or a `.env` file.

Every name is the one in shared/architecture.md's configuration table. Values are
validated on load; :func:`load_settings` turns a validation failure into one clear
line per bad variable (:class:`ConfigError`) instead of a pydantic traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_TOKEN = re.compile(r"^\d{5,16}:[A-Za-z0-9_-]{30,}$")
_PLACEHOLDERS = {"changeme", "change-me", "your-token", "token", "xxx", "secret", "placeholder"}
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ConfigError(Exception):
    """Raised with a human-readable message when the configuration is invalid."""


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse `2s`, `90m`, `2h`, `3d`, `1w` (a bare number means seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a duration; use e.g. 30s, 10m, 2h, 3d")
    unit = (match.group(2) or "s").lower()
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[unit])


def _parse_clock(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    hour, minute = int(hours), int(minutes or 0)
    if hour == 24 and minute == 0:
        return time(23, 59, 59)
    return time(hour, minute)


@dataclass(frozen=True)
class BusinessHours:
    """Opening days (0 = Monday) and a daily opening window."""

    days: frozenset[int]
    opens: time
    closes: time

    @classmethod
    def parse(cls, text: str) -> BusinessHours:
        """Parse `Mon-Fri 09:00-18:00` or `Mon,Wed,Sat 10:00-16:00`."""
        match = re.fullmatch(r"\s*([A-Za-z,\-]+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*", text)
        if not match:
            raise ValueError(f"'{text}' is not business hours; use e.g. 'Mon-Fri 09:00-18:00'")
        days: set[int] = set()
        for part in match.group(1).lower().split(","):
            first, _, last = part.partition("-")
            if first[:3] not in _DAYS or (last and last[:3] not in _DAYS):
                raise ValueError(f"unknown day in '{part}'; use Mon, Tue, Wed, Thu, Fri, Sat, Sun")
            start = _DAYS.index(first[:3])
            end = _DAYS.index(last[:3]) if last else start
            day = start
            while True:
                days.add(day)
                if day == end:
                    break
                day = (day + 1) % 7
        opens, closes = _parse_clock(match.group(2)), _parse_clock(match.group(3))
        if opens >= closes:
            raise ValueError(f"business hours must open before they close: '{text}'")
        return cls(frozenset(days), opens, closes)

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` (an aware datetime in the business's time zone) is in hours."""
        return moment.weekday() in self.days and self.opens <= moment.time() < self.closes

    def next_opening(self, moment: datetime) -> datetime:
        """The next time the desk opens after `moment` (same time zone)."""
        for offset in range(8):
            day = (moment + timedelta(days=offset)).date()
            opening = datetime.combine(day, self.opens, tzinfo=moment.tzinfo)
            if day.weekday() in self.days and opening > moment:
                return opening
        raise AssertionError("business hours have at least one day")


@dataclass(frozen=True)
class ClockWindow:
    """A daily window that may wrap past midnight, e.g. quiet hours 22:00-08:00."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> ClockWindow:
        match = re.fullmatch(r"\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*", text)
        if not match:
            raise ValueError(f"'{text}' is not a time window; use e.g. '22:00-08:00'")
        return cls(_parse_clock(match.group(1)), _parse_clock(match.group(2)))

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def _id_list(value: Any) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list | tuple | set):
        return [int(v) for v in value]
    items = [item.strip() for item in str(value).replace(";", ",").split(",") if item.strip()]
    try:
        return [int(item) for item in items]
    except ValueError:
        raise ValueError(f"'{value}' must be Telegram user ids separated by commas") from None


class Settings(BaseSettings):
    """All runtime configuration. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_max_rate: float = Field(default=30.0, ge=0)
    """Messages per second the bot sends overall (Telegram's limit: 30; 0: no cap)."""
    database_url: str = "sqlite:///./complaint_desk.db"
    staff_chat_id: int | None = None
    agent_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    supervisor_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    action_server_url: str | None = None
    rasa_nlu_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    listen: str | None = None
    """host:port of the HTTP server: the webhook, /healthz and /metrics. Webhook mode
    listens on 127.0.0.1:8080 when it is not set; polling mode serves nothing then."""
    default_language: Literal["zh", "en"] = "zh"
    timezone: str = "Asia/Shanghai"
    business_hours: str | None = None
    quiet_hours: str | None = None
    first_contact_sla: timedelta = timedelta(hours=2)
    progress_sla: timedelta = timedelta(days=3)
    survey_delay: timedelta = timedelta(days=1)
    after_service_delay: timedelta = timedelta(days=7)
    reopen_window: timedelta = timedelta(days=7)
    """A customer writing about a resolved ticket within this time reopens it."""
    checkin_interval: timedelta = timedelta(minutes=10)
    """A customer waiting for an agent hears where they stand this often."""
    untaken_alert: timedelta = timedelta(minutes=15)
    """A ticket nobody has taken after this long alerts the supervisors."""
    merge_window: timedelta = timedelta(seconds=2)
    """Lines a customer types within this time of each other while telling their story
    are one turn (one answer to a rant in four messages); 0 turns it off."""
    callback_offer: timedelta = timedelta(minutes=30)
    """An estimated wait for an agent longer than this offers a call-back at a set time
    instead (shared/domain.md §5: past a few minutes, "wait, or shall we call back?")."""
    starvation_limit: timedelta = timedelta(minutes=30)
    """A ticket waiting longer than this rises one priority level in the queue."""
    agent_capacity: int = Field(default=5, ge=1)
    """Tickets an agent may hold at once (supervisors are not limited)."""
    promise_reminder: timedelta = timedelta(hours=1)
    """How long before a promise falls due its agent is reminded."""
    reports: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["day", "week"])
    """Reports sent to the supervisors: day (daily), week (Mondays), month (the 1st)."""
    report_time: str = "08:00"
    """When the reports are sent, in TIMEZONE."""
    retention_days: int | None = Field(default=None, ge=1)
    """Transcripts of conversations closed this many days ago are deleted (nightly)."""
    no_answer_after: timedelta = timedelta(hours=24)
    """A follow-up question unanswered this long gets one reminder, then ends."""
    run_scheduler: bool = True
    """This process runs the follow-up scheduler (exactly one process should)."""
    handoff_tick: timedelta = timedelta(seconds=30)
    """How often waiting tickets, check-ins and promise reminders are looked at."""
    nlu_data_dir: Path = PROJECT_ROOT / "nlu_data"
    nlu_cache_dir: Path = PROJECT_ROOT / ".cache" / "nlu"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("agent_ids", "supervisor_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> list[int]:
        return _id_list(value)

    @field_validator(
        "first_contact_sla",
        "progress_sla",
        "survey_delay",
        "after_service_delay",
        "reopen_window",
        "checkin_interval",
        "untaken_alert",
        "starvation_limit",
        "callback_offer",
        "merge_window",
        "promise_reminder",
        "handoff_tick",
        "no_answer_after",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("reports", mode="before")
    @classmethod
    def _reports(cls, value: Any) -> list[str]:
        if value is None or value == "" or str(value).lower() == "none":
            return []
        items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
        periods = [str(item).strip().lower() for item in items if str(item).strip()]
        wrong = [p for p in periods if p not in ("day", "week", "month")]
        if wrong:
            raise ValueError(f"unknown report period {wrong[0]!r}; use day, week, month or none")
        return periods

    @field_validator("report_time")
    @classmethod
    def _report_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError(f"'{value}' is not a time of day; use e.g. 08:00")
        return value.strip()

    @field_validator("telegram_bot_token", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if value.lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder; set the token @BotFather gave you")
        if not _TOKEN.match(value):
            raise ValueError("does not look like a bot token (expected '<digits>:<35 characters>')")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder; choose a random secret")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("may use only A-Z, a-z, 0-9, _ and - (1 to 256 characters)")
        return value

    @field_validator("telegram_api_base_url", "action_server_url", "rasa_nlu_url", "webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not a time zone; use e.g. Asia/Shanghai") from None
        return value

    @field_validator("business_hours")
    @classmethod
    def _business_hours(cls, value: str | None) -> str | None:
        if value:
            BusinessHours.parse(value)
        return value or None

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value:
            ClockWindow.parse(value)
        return value or None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"'{value}' must be host:port, e.g. 0.0.0.0:8080")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(
                "WEBHOOK_URL needs WEBHOOK_SECRET: a random string Telegram sends with each "
                "update, so nobody else can post updates to the bot"
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def hours(self) -> BusinessHours | None:
        return BusinessHours.parse(self.business_hours) if self.business_hours else None

    @property
    def quiet(self) -> ClockWindow | None:
        return ClockWindow.parse(self.quiet_hours) if self.quiet_hours else None


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, raising :class:`ConfigError` with one line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
            message = str(problem["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
