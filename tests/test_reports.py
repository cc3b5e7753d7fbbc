"""Reports: the figures of a seeded week, as Markdown, CSV, phone-size charts and in Telegram."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from PIL import Image
from sqlmodel import col, select
from telegram import Bot

from bot.config import PROJECT_ROOT, Settings
from bot.reports import (
    Report,
    build_report,
    period_at,
    period_ending,
    render_charts,
    render_csv,
    render_markdown,
    report_rows,
)
from bot.reports import charts as charts_module
from bot.reports.text import LABELS_FILE, report_labels
from bot.store import Complaint, Conversation, Customer, Database, FollowUp, StaffMessage, Ticket
from bot.telegram.outbox import Outbox, StaffRows
from tests.conftest import run_cli
from tests.support.botapi.double import TOKEN, BotApiDouble
from tests.support.botapi.spec import Upload

ZONE = ZoneInfo("Asia/Shanghai")
UNTIL = "2026-11-23"  # the week 2026-11-16 .. 2026-11-22, Shanghai time
SPAN = "2026-11-16 – 2026-11-22"
PHONE = (1080, 1350)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026, Shanghai time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


@dataclass
class Seed:
    db: Database
    people: int = 0

    def conversation(self) -> tuple[int, int]:
        self.people += 1
        with self.db.session() as session:
            customer = Customer(telegram_id=9000 + self.people, name=f"c{self.people}")
            session.add(customer)
            session.flush()
            assert customer.id is not None
            conversation = Conversation(customer_id=customer.id, chat_id=customer.telegram_id)
            session.add(conversation)
            session.commit()
            assert conversation.id is not None
            return customer.id, conversation.id

    def complaint(
        self, created: datetime, kind: str, motive: str | None, facts: dict[str, Any], **extra: Any
    ) -> tuple[int, int, int]:
        customer, conversation = self.conversation()
        with self.db.session() as session:
            row = Complaint(
                conversation_id=conversation,
                customer_id=customer,
                complaint_type=kind,
                motive=motive,
                facts=facts,
                created_at=created,
                **extra,
            )
            session.add(row)
            session.commit()
            assert row.id is not None
            return customer, conversation, row.id

    def ticket(
        self,
        owner: tuple[int, int, int],
        created: datetime,
        agent: str | None = None,
        contact: int | None = None,
        resolved: int | None = None,
        status: str | None = None,
        kind: str = "complaint",
    ) -> int:
        """contact / resolved: minutes after ``created``."""
        customer, conversation, complaint = owner
        with self.db.session() as session:
            row = Ticket(
                conversation_id=conversation,
                customer_id=customer,
                complaint_id=complaint or None,
                kind=kind,
                agent_name=agent,
                agent_id=abs(hash(agent)) % 10**6 if agent else None,
                status=status or ("resolved" if resolved is not None else "assigned"),
                created_at=created,
                first_contact_at=created + timedelta(minutes=contact) if contact else None,
                resolved_at=created + timedelta(minutes=resolved) if resolved else None,
            )
            session.add(row)
            session.commit()
            assert row.id is not None
            return row.id

    def follow_up(self, kind: str, due: datetime, **fields: Any) -> None:
        _, conversation = self.conversation()
        with self.db.session() as session:
            session.add(FollowUp(conversation_id=conversation, kind=kind, due_at=due, **fields))
            session.commit()


def seed(db: Database) -> None:
    """Eight complaints in the week, and rows just outside it on both sides."""
    s = Seed(db)
    c1 = s.complaint(
        at(16, 10),
        "delivery",
        "compensation",
        {
            "order_id": "SO20241116001",
            "delivery_issue": "missing",
            "incident_date": "this_week",
            "notes": {"delivery_issue": "left at the neighbour's"},
        },
    )
    s.ticket(c1, at(16, 10), "Ada", contact=30, resolved=240)
    c2 = s.complaint(
        at(17, 9),
        "delivery",
        "compensation",
        {"delivery_issue": "missing", "order_id": "no_order_id"},
    )
    s.ticket(c2, at(17, 9), "Ada", contact=60, resolved=600)
    # 23:30 in Shanghai is 15:30 UTC: the 17th, whatever UTC says
    c3 = s.complaint(
        at(17, 23, 30), "delivery", None, {"delivery_issue": "late", "promised_callback": "no"}
    )
    s.ticket(c3, at(17, 23, 30), status="waiting")
    c4 = s.complaint(
        at(18, 14),
        "product_quality",
        "fix",
        {"product": "electronics", "defect": "broken", "purchase_date": "within_month"},
        major=True,
        major_reasons=["major_media"],
    )
    s.ticket(c4, at(18, 14), "Bo", contact=90, resolved=2880)
    c5 = s.complaint(
        at(19, 8), "product_quality", "compensation", {"product": "Air Fryer", "defect": "broken"}
    )
    # resolved once, then reopened: not a resolution of this period
    s.ticket(c5, at(19, 8), "Bo", contact=20, resolved=100, status="assigned")
    c6 = s.complaint(
        at(20, 12),
        "safety",
        "prevention",
        {"product": "air fryer", "safety_issue": "overheating_fire", "injury": "yes"},
        major=True,
        major_reasons=["major_media", "repeat_contact"],
    )
    s.ticket(c6, at(20, 12), "Ada", contact=10, resolved=360)
    c7 = s.complaint(
        at(21, 9),
        "billing",
        "explanation",
        {"order_id": "SO7", "billing_issue": "charged_twice", "amount": "199"},
    )
    s.ticket(c7, at(21, 9), "Cy", contact=40, resolved=180)
    s.ticket(c7, at(22, 10), "Bo", status="assigned")  # came back: Bo has it now
    # one minute before the end; the defect typed in free text is no closed answer
    s.complaint(
        at(22, 23, 59),
        "product_quality",
        "fix",
        {"product": "ELECTRONICS", "defect": "screen flickers"},
    )
    # a hand-off that is not a complaint still counts for response times
    customer, conversation = s.conversation()
    s.ticket((customer, conversation, 0), at(19, 15), "Ada", contact=5, kind="request_human")

    # outside the week: a minute before it starts, and the moment it ends
    c9 = s.complaint(at(15, 23, 59), "delivery", "compensation", {"product": "electronics"})
    s.ticket(c9, at(15, 23, 59), "Ada", contact=1000, resolved=5000)
    c10 = s.complaint(at(23, 0), "billing", "apology", {"billing_issue": "wrong_amount"})
    s.ticket(c10, at(23, 0), "Cy", contact=999)

    breached = {"outcome": "breached", "status": "done"}
    s.follow_up("first_contact", at(17, 11), **breached)
    s.follow_up("first_contact", at(20, 14), **breached)
    s.follow_up("progress_report", at(21, 9), **breached)
    s.follow_up("first_contact", at(18, 16), outcome="met", status="done")
    s.follow_up("promise", at(19, 12), outcome="missed", status="done")
    s.follow_up("progress_report", at(23, 0), **breached)
    s.follow_up("first_contact", at(15, 20), **breached)

    answered = [(5, True), (4, True), (2, False), (5, True), (1, False), (None, True)]
    for day, (rating, solved) in enumerate(answered, 16):
        data: dict[str, Any] = {"solved": solved}
        if rating is not None:
            data["rating"] = rating
        s.follow_up(
            "survey", at(day, 9), status="done", outcome="answered",
            answered_at=at(day, 20), data=data,
        )  # fmt: skip
    s.follow_up(
        "survey",
        at(14, 9),
        status="done",
        answered_at=at(15, 12),
        data={"rating": 1, "solved": False},
    )
    s.follow_up("survey", at(22, 9), status="pending", data={})


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    db = Database(settings.database_url)
    db.upgrade()
    seed(db)
    db.dispose()
    return settings.model_copy(update={"default_language": "en", "timezone": "Asia/Shanghai"})


def week(settings: Settings) -> Report:
    db = Database(settings.database_url)
    try:
        return build_report(db, period_ending("week", date.fromisoformat(UNTIL), settings.timezone))
    finally:
        db.dispose()


# --- the period ---------------------------------------------------------------------------


def test_the_period_is_whole_local_days_before_until() -> None:
    tz = "Asia/Shanghai"
    day = period_ending("day", date(2026, 11, 23), tz)
    assert (day.first, day.last) == (date(2026, 11, 22), date(2026, 11, 22))
    assert day.start == datetime(2026, 11, 21, 16, 0, tzinfo=UTC)
    assert day.end == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    weekly = period_ending("week", date(2026, 11, 23), tz)
    assert (weekly.first, weekly.last) == (date(2026, 11, 16), date(2026, 11, 22))
    # run on the 1st, a month is the last calendar month; the 31st clamps into February
    assert period_ending("month", date(2026, 12, 1), tz).first == date(2026, 11, 1)
    assert period_ending("month", date(2026, 12, 1), tz).last == date(2026, 11, 30)
    assert period_ending("month", date(2027, 3, 31), tz).first == date(2027, 2, 28)
    assert period_ending("month", date(2026, 1, 15), tz).first == date(2025, 12, 15)
    # 01:00 UTC on the 23rd is already 09:00 on the 23rd in Shanghai
    assert period_at("week", datetime(2026, 11, 22, 17, 0, tzinfo=UTC), tz) == weekly
    # a daylight-saving day has 23 hours
    spring = period_ending("day", date(2026, 3, 9), "America/New_York")
    assert spring.end - spring.start == timedelta(hours=23)


# --- the figures --------------------------------------------------------------------------


def test_the_figures_of_the_week(seeded: Settings) -> None:
    report = week(seeded)
    assert report.complaints == 8
    assert report.tickets == 9
    assert report.by_type == [
        ("delivery", 3),
        ("product_quality", 3),
        ("billing", 1),
        ("safety", 1),
    ]
    assert report.by_motive == [
        ("compensation", 3),
        ("fix", 2),
        ("explanation", 1),
        ("prevention", 1),
        ("unknown", 1),
    ]
    assert report.by_agent == [("Ada", 3), ("Bo", 3), ("unassigned", 2)]
    assert report.major == 2
    assert report.major_reasons == [("major_media", 2), ("repeat_contact", 1)]
    assert report.sla_breaches == [("first_contact", 2), ("progress_report", 1)]
    # first contacts 5, 10, 20, 30, 40, 60, 90 min; resolutions 180, 240, 360, 600, 2880 min
    assert (report.first_contact_minutes, report.first_contact_tickets) == (30.0, 7)
    assert (report.resolution_minutes, report.resolution_tickets) == (360.0, 5)
    assert report.surveys == 6
    assert report.ratings == {1: 1, 2: 1, 3: 0, 4: 1, 5: 2}
    assert report.rating_average == 3.4
    assert (report.solved_yes, report.solved_no) == (4, 2)
    assert [(cause.key, count) for cause, count in report.causes] == [
        ("delivery/delivery_issue/missing", 2),
        ("product_quality/defect/broken", 2),
        ("billing/billing_issue/charged_twice", 1),
        ("delivery/delivery_issue/late", 1),
        ("safety/injury/yes", 1),
        ("safety/safety_issue/overheating_fire", 1),
    ]
    assert report.products == [("air fryer", "Air Fryer", 2), ("electronics", "electronics", 2)]
    assert report.timeline == [
        ("2026-11-16", 1),
        ("2026-11-17", 2),
        ("2026-11-18", 1),
        ("2026-11-19", 1),
        ("2026-11-20", 1),
        ("2026-11-21", 1),
        ("2026-11-22", 1),
    ]


def test_a_day_counts_per_hour_and_a_month_takes_in_the_edges(seeded: Settings) -> None:
    db = Database(seeded.database_url)
    try:
        day = build_report(db, period_ending("day", date(2026, 11, 18), seeded.timezone))
        month = build_report(db, period_ending("month", date(2026, 12, 1), seeded.timezone))
    finally:
        db.dispose()
    assert day.complaints == 2
    assert [(hour, n) for hour, n in day.timeline if n] == [("09", 1), ("23", 1)]
    assert len(day.timeline) == 24
    assert month.complaints == 10
    assert month.by_agent == [("Ada", 4), ("Bo", 3), ("unassigned", 2), ("Cy", 1)]
    assert month.products[0] == ("electronics", "electronics", 3)


# --- Markdown and CSV ---------------------------------------------------------------------


def test_the_markdown_says_the_figures(seeded: Settings) -> None:
    text = render_markdown(week(seeded), "en")
    lines = text.splitlines()
    assert lines[0] == f"# Weekly complaint report: {SPAN}"
    assert lines[1] == "Time zone Asia/Shanghai. Complaints: 8 · hand-offs to an agent: 9."
    for line in [
        "## Complaints by type",
        "- Delivery: 3 (38%)",
        "- Product quality: 3 (38%)",
        "- Billing / refund: 1 (13%)",
        "- Safety: 1 (13%)",
        "- Compensation: 3 (38%)",
        "- Get it fixed: 2 (25%)",
        "- not clear yet: 1 (13%)",
        "- Ada: 3 (38%)",
        "- Bo: 3 (38%)",
        "- unassigned: 2 (25%)",
        "## Major complaints: 2",
        "- threatens media / regulator / lawsuit: 2",
        "- has complained before about this: 1",
        "## SLA breaches: 3",
        "- First contact later than promised: 2",
        "- Progress report later than promised: 1",
        "- Median time to first contact: 30 min (7 tickets)",
        "- Median time to resolution: 6 h (5 tickets resolved)",
        "## Satisfaction: 6 surveys answered",
        "- Average rating: 3.4 / 5 (5 ratings)",
        "- Ratings: 5★ 2 · 4★ 1 · 3★ 0 · 2★ 1 · 1★ 1",
        "- Problem solved: 67% (4 of 6)",
        "1. Delivery · Delivery problem: Never arrived — 2",
        "2. Product quality · What's wrong: Broken or damaged — 2",
        "5. Safety · Anyone hurt: Yes — 1",
        "6. Safety · Safety problem: Overheating / fire — 1",
        "1. Air Fryer — 2",
        "2. Electronics — 2",
    ]:
        assert line in lines, line
    # the most frequent first
    assert lines.index("- Delivery: 3 (38%)") < lines.index("- Billing / refund: 1 (13%)")
    assert "SO7" not in text and "199" not in text and "screen flickers" not in text


def test_a_chinese_desk_gets_a_chinese_report(seeded: Settings) -> None:
    text = render_markdown(week(seeded), "zh")
    lines = text.splitlines()
    assert lines[0] == f"# 投诉周报：{SPAN}"
    assert "- 物流配送：3 (38%)" in lines
    assert "- 未分配：2 (25%)" in lines
    assert "- 首次联系时间中位数：30 分钟（7 张工单）" in lines
    assert "- 问题已解决：67%（6 人中 4 人）" in lines


def test_an_empty_period_says_so(seeded: Settings) -> None:
    db = Database(seeded.database_url)
    try:
        empty = build_report(db, period_ending("week", date(2027, 1, 10), seeded.timezone))
    finally:
        db.dispose()
    assert empty.empty
    assert render_markdown(empty, "en").splitlines() == [
        "# Weekly complaint report: 2027-01-03 – 2027-01-09",
        "Time zone Asia/Shanghai. Complaints: 0 · hand-offs to an agent: 0.",
        "",
        "No complaints in this period.",
    ]
    assert render_charts(empty, "en") == []


def test_the_csv_is_one_tidy_table(seeded: Settings) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(week(seeded)))))
    assert rows[0] == ["section", "key", "value"]
    assert all(len(row) == 3 for row in rows)
    table = {(section, key): value for section, key, value in rows[1:]}
    assert table[("period", "first_day")] == "2026-11-16"
    assert table[("period", "last_day")] == "2026-11-22"
    assert table[("totals", "complaints")] == "8"
    assert table[("by_type", "delivery")] == "3"
    assert table[("by_motive", "unknown")] == "1"
    assert table[("by_agent", "unassigned")] == "2"
    assert table[("major_reasons", "major_media")] == "2"
    assert table[("sla_breaches", "first_contact")] == "2"
    assert table[("times", "first_contact_median_minutes")] == "30.0"
    assert table[("times", "resolution_median_minutes")] == "360.0"
    assert table[("satisfaction", "rating_average")] == "3.4"
    assert table[("satisfaction", "solved_rate")] == "0.6667"
    assert [table[("rating", str(star))] for star in range(1, 6)] == ["1", "1", "0", "1", "2"]
    assert table[("causes", "delivery/delivery_issue/missing")] == "2"
    assert table[("products", "Air Fryer")] == "2"
    assert table[("per_day", "2026-11-17")] == "2"


# --- wording ------------------------------------------------------------------------------


def test_report_labels_are_in_both_languages_and_avoid_the_forbidden_phrases(
    seeded: Settings,
) -> None:
    labels = report_labels(LABELS_FILE)
    assert set(labels["en"]) == set(labels["zh"]) and labels["en"]
    for key, text in labels["en"].items():
        assert sorted(_fields(text)) == sorted(_fields(labels["zh"][key])), key
    forbidden = yaml.safe_load((PROJECT_ROOT / "bot/dialogue/forbidden.yml").read_text("utf-8"))
    report = week(seeded)
    for language in ("en", "zh"):
        shown = [*labels[language].values(), render_markdown(report, language)]
        for phrase in forbidden["en"] + forbidden["zh"]:
            for text in shown:
                assert phrase.lower() not in text.lower(), (language, phrase, text)


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


# --- charts -------------------------------------------------------------------------------


def test_charts_are_phone_size_with_large_text(seeded: Settings) -> None:
    charts = render_charts(week(seeded), "en")
    assert [chart.title for chart in charts] == [
        f"Complaints by type · {SPAN}",
        f"Satisfaction (1–5) · {SPAN}",
        f"Complaints per day · {SPAN}",
    ]
    for chart in charts:
        with Image.open(io.BytesIO(chart.png)) as image:
            assert image.format == "PNG"
            assert image.size == PHONE
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
            assert len(colours) > 10  # something is drawn, not a blank page
        assert chart.smallest_text_px >= 28, chart.name


def test_without_a_cjk_font_the_charts_fall_back_to_english(
    seeded: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(charts_module, "find_font", lambda texts, language="zh": None)
    with caplog.at_level(logging.WARNING, logger="bot.reports.charts"):
        charts = render_charts(week(seeded), "zh")
    assert [chart.language for chart in charts] == ["en", "en", "en"]
    assert charts[0].title == f"Complaints by type · {SPAN}"
    assert "no zh font for the charts; drawing them in English" in caplog.text


def test_with_a_cjk_font_the_charts_are_in_chinese(seeded: Settings) -> None:
    if charts_module.find_font(["投诉满意度"]) is None:
        if os.environ.get("REQUIRE_CJK_FONT"):  # CI installs one: missing it is a failure
            pytest.fail("no CJK font although .ci/run installs fonts-wqy-microhei")
        pytest.skip("no CJK font installed (e.g. apt-get install fonts-wqy-microhei)")
    charts = render_charts(week(seeded), "zh")
    assert [chart.language for chart in charts] == ["zh", "zh", "zh"]
    assert [chart.title for chart in charts] == [
        f"按类型统计投诉 · {SPAN}",
        f"满意度评分（1–5） · {SPAN}",
        f"每日投诉量 · {SPAN}",
    ]
    assert all(chart.smallest_text_px >= 28 for chart in charts)


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def report_env(seeded: Settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELEGRAM_")}
    env.update(
        {
            "DATABASE_URL": seeded.database_url,
            "DEFAULT_LANGUAGE": "en",
            "TIMEZONE": "Asia/Shanghai",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    return env


def test_the_cli_prints_the_report(report_env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli(
        "report",
        "--period",
        "week",
        "--format",
        "md",
        "--until",
        UNTIL,
        env=report_env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# Weekly complaint report: {SPAN}\n")
    assert "- Delivery: 3 (38%)" in done.stdout
    assert done.stderr == ""

    default = run_cli("report", "--period", "week", env=report_env, cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    today = datetime.now(ZONE).date()
    first = (today - timedelta(days=7)).isoformat()
    assert default.stdout.startswith(f"# Weekly complaint report: {first} – ")


def test_the_cli_writes_csv_and_charts(report_env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli(
        "report", "--period", "week", "--format", "csv", "--until", UNTIL, env=report_env
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert ["totals", "complaints", "8"] in rows

    out = tmp_path / "charts"
    out.mkdir()
    done = run_cli(
        "report", "--period", "week", "--format", "png", "--out", str(out), "--until", UNTIL,
        env=report_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert [path.name for path in paths] == [
        "complaints-by-type-week-2026-11-16.png",
        "complaints-satisfaction-week-2026-11-16.png",
        "complaints-per-day-week-2026-11-16.png",
    ]
    for path in paths:
        assert path.parent == out
        with Image.open(path) as image:
            assert image.size == PHONE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "year"], "error: --period must be day, week or month, not 'year'"),
        ([], "error: --period must be day, week or month"),
        (
            ["--period", "day", "--format", "pdf"],
            "error: --format must be md, csv or png, not 'pdf'",
        ),
        (
            ["--period", "day", "--until", "23/11/2026"],
            "error: --until must be a date like 2026-11-23, not '23/11/2026'",
        ),
        (
            ["--period", "day", "--format", "png", "--out", "/no/such/folder"],
            "error: --out /no/such/folder is not a writable folder",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    report_env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    done = run_cli("report", *args, env=report_env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == message + "\n"


def test_a_missing_database_is_one_line(report_env: dict[str, str], tmp_path: Path) -> None:
    # SQLite only, on every backend: a missing database *file* is what the check is for
    # (SQLite would create an empty one); a server database that is not there is a
    # connection error, as for any other query.
    env = {**report_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    done = run_cli("report", "--period", "day", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"error: no database at {tmp_path / 'none.db'} (DATABASE_URL)\n"
    assert not (tmp_path / "none.db").exists()


# --- in Telegram --------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 on the 23rd in Shanghai


async def _deliver(
    double: BotApiDouble,
    settings: Settings,
    period: str,
    now: datetime,
    *,
    outage: float = 0.0,
) -> None:
    """What the bot does when a report falls due: the report's rows written in one
    transaction, then sent by the staff outbox (as in `python -m bot run`). With
    `outage`, Telegram is away for that many seconds from the moment the rows are
    written (nothing arrives meanwhile)."""
    rows = report_rows(settings, period, now)
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            session.add_all(rows)
            session.commit()
        async with Bot(TOKEN, base_url=double.base_url) as bot:
            outbox = Outbox(db, None, rows=StaffRows())
            if outage:
                await double.go_down()
            outbox.start(bot)
            if outage:
                await asyncio.sleep(outage)
                assert double.sent_to(settings.supervisor_ids[0]) == []
                await double.come_back()
            await double.wait_for(lambda: None not in _outcomes(db), 60, "every row's outcome")
            await outbox.stop(1)
    finally:
        db.dispose()


def _outcomes(db: Database) -> list[str | None]:
    with db.session() as session:
        return list(session.exec(select(StaffMessage.outcome).order_by(col(StaffMessage.id))))


async def test_supervisors_get_the_text_and_the_charts(seeded: Settings) -> None:
    double = BotApiDouble()
    await double.start()
    double.add_user(501, "Sue")
    double.add_user(502, "Sam")
    double.block(502)  # blocked the bot
    # 503 never started the bot: Telegram answers "chat not found"
    settings = seeded.model_copy(update={"supervisor_ids": [502, 503, 501]})
    try:
        await _deliver(double, settings, "week", NOW)
    finally:
        await double.stop()
    assert double.violations == []
    sent = double.sent_to(501)
    assert [bool(message.get("photo")) for message in sent] == [False, True, True, True]
    text = sent[0]["text"]
    assert text == render_markdown(week(seeded), "en").strip()
    assert text.startswith(f"# Weekly complaint report: {SPAN}")
    assert "- Median time to first contact: 30 min (7 tickets)" in text
    assert [message["caption"] for message in sent[1:]] == [
        f"Complaints by type · {SPAN}",
        f"Satisfaction (1–5) · {SPAN}",
        f"Complaints per day · {SPAN}",
    ]
    photos = [
        params["photo"]
        for method, params in double.requests
        if method == "sendPhoto" and str(params["chat_id"]) == "501"
    ]
    assert len(photos) == 3
    for photo in photos:
        assert isinstance(photo, Upload)
        with Image.open(io.BytesIO(photo.data)) as image:
            assert image.size == PHONE
    assert double.sent_to(502) == [] and double.sent_to(503) == []
    # Each row has its outcome; the charts' pictures are not kept once they have one
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            rows = session.exec(select(StaffMessage).order_by(col(StaffMessage.id))).all()
    finally:
        db.dispose()
    outcomes = {chat: [r.outcome for r in rows if r.chat_id == chat] for chat in (501, 502, 503)}
    assert outcomes == {
        501: ["sent"] * 4,
        502: ["blocked"] * 4,
        503: ["chat_not_found"] * 4,
    }
    assert all(row.photo is None for row in rows)


async def test_a_report_due_while_telegram_is_away_arrives_when_it_is_back(
    seeded: Settings,
) -> None:
    double = BotApiDouble()
    await double.start()
    double.add_user(501, "Sue")
    settings = seeded.model_copy(update={"supervisor_ids": [501]})

    try:
        await _deliver(double, settings, "week", NOW, outage=3.0)
    finally:
        await double.stop()
    sent = double.sent_to(501)
    assert [bool(message.get("photo")) for message in sent] == [False, True, True, True]
    assert sent[0]["text"].startswith(f"# Weekly complaint report: {SPAN}")


async def test_an_empty_period_still_sends_a_short_report(seeded: Settings) -> None:
    double = BotApiDouble()
    await double.start()
    double.add_user(501, "Sue")
    settings = seeded.model_copy(update={"supervisor_ids": [501]})
    try:
        await _deliver(double, settings, "day", datetime(2027, 1, 10, 3, 0, tzinfo=UTC))
    finally:
        await double.stop()
    assert double.violations == []
    assert [message.get("text") for message in double.sent_to(501)] == [
        "# Daily complaint report: 2027-01-09\n"
        "Time zone Asia/Shanghai. Complaints: 0 · hand-offs to an agent: 0.\n\n"
        "No complaints in this period."
    ]


async def test_a_long_report_is_split_and_markup_in_names_is_text(seeded: Settings) -> None:
    db = Database(seeded.database_url)
    s = Seed(db)
    s.people = 500
    for n in range(160):  # 160 agents: a text over Telegram's 4,096 characters
        owner = s.complaint(at(18, 10), "other", "apology", {})
        s.ticket(owner, at(18, 10), f"<b>Agent</b> & {n:03d} with a rather long name")
    db.dispose()
    double = BotApiDouble(per_chat_burst=10)
    await double.start()
    double.add_user(501, "Sue")
    settings = seeded.model_copy(update={"supervisor_ids": [501]})
    try:
        await _deliver(double, settings, "week", NOW)
    finally:
        await double.stop()
    assert double.violations == []
    texts = [m["text"] for m in double.sent_to(501) if "text" in m]
    assert len(texts) >= 2
    assert all(len(text) <= 4096 for text in texts)
    joined = "\n".join(texts)
    assert "- <b>Agent</b> & 000 with a rather long name: 1 (1%)" in joined
    assert "- <b>Agent</b> & 159 with a rather long name: 1 (1%)" in joined
