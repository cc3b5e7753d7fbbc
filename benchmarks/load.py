"""`python -m benchmarks --load`: thousands of customers at a human pace, end to end.

Run from a checkout (the Bot API double lives in tests/botapi). `python -m bot run` is
started as a process against the double with a forum staff group, two agents and a
supervisor, Telegram's flood limits on in the double (30 messages/s overall, 1/s per
chat with bursts of 5, 20/min per group) and the bot's own cap at its default.

Customers arrive at random over the window (a Poisson process: `--customers` arrival
times drawn uniformly over `--minutes`). Each plays one of the scripted customers of
tests/dialogue/customers.yml in their language (zh or en): some greet first, most
complain in their own words and answer the closed questions by pressing the buttons
the bot actually shows, then confirm the read-back (the hand-off); some ask an FAQ
first or only an FAQ, some /cancel half way, a few send a photo, a few write once more
after the hand-off. Between steps they wait for the bot to finish answering, then
think for a few seconds (randomised; `--seed` makes a run repeatable).

Measured: reply latency (a customer's update pushed into the double -> the bot's first
message to that chat after it), overall and per kind of step; customers' messages not
answered within `--timeout` (the customer gives up then); what the double answered
with an error (429s apart) and the spec violations it recorded; ERROR lines and
tracebacks in the bot's log; the bot's resident memory (peak and at the end) and CPU
seconds; tickets, summary cards in the staff group and how late the cards were.

Baseline in the same run: a bare python-telegram-bot echo bot
(`python -m benchmarks.telegram echo`, PTB's defaults) with the same customers replayed:
the same arrival times and the whole conversations they meant to have (see
`echo_script`), every step typed (a press becomes its button's label, a photo the text
"[photo]"), the same think times. The echo bot has no rate limiter, so the double's
flood limits are lifted for it: its latency is this machine, PTB and the double.

`--no-staff-group` (a diagnostic) runs the bot without the staff group: tickets are
made but no card is posted, which separates the customers' side from the group's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.telegram import _cpu_seconds, _Process, _rss_mib, _start
from bot.config import PROJECT_ROOT, Settings

STAFF_CHAT = -1_009_000
AGENTS = {7101: "Ada", 7102: "Bo"}
SUPERVISORS = {7109: "Sue"}
FIRST_USER = 2_000_000
MAX_STEPS = 18
"""A conversation that has not reached the hand-off after this many steps is stuck."""
QUIET = 2.0
"""Seconds without a new bot message after which a customer takes the answer as complete
(unless a keyboard came, which ends the bot's turn at once)."""
BOT_COMMAND = ["-m", "bot", "run"]
"""How the bot is started (arguments to this Python)."""
DRAIN = 120.0
"""Seconds to wait after the last customer for summary cards still to come."""

# The mix of customers (fractions of all customers).
GREET_FIRST = 0.40
FAQ_ONLY = 0.08
FAQ_FIRST = 0.07
CANCEL = 0.07
PHOTO = 0.05
WRITE_AFTER = 0.10
# Think time before a step, seconds: uniform in these ranges.
THINK_PRESS = (1.5, 5.0)
THINK_TYPE = (3.0, 10.0)

GREETINGS = {"en": ["hi", "hello", "Hi there", "hey"], "zh": ["你好", "在吗", "您好", "你好，在吗"]}
AFTER = {
    "en": ["thanks", "ok thank you", "one more thing, I still have the box if you need it"],
    "zh": ["谢谢", "好的 谢谢", "补充一下 包装盒我还留着"],
}
FALLBACK = {"en": "that's all I can tell you", "zh": "就这些了"}
PHOTO_CAPTION = {"en": "here's a photo", "zh": "拍了张照片"}
TICKET_IN_CARD = re.compile(r"^tk:take:(\d+)$")


# --- the double, with each chat's messages at hand -------------------------------------


def _double_class() -> type:
    from tests.support.botapi.double import BotApiDouble

    class LoadDouble(BotApiDouble):
        """The Bot API double, indexing what the bot sends by chat and waking whoever
        waits on that chat (the stock double keeps one list, scanned per look-up)."""

        def __init__(self, **limits: Any) -> None:
            super().__init__(**limits)
            self.by_chat: dict[int, list[dict[str, Any]]] = {}
            self.arrived: dict[int, asyncio.Event] = {}

        def _store(
            self, chat: dict[str, Any], params: dict[str, Any], **content: Any
        ) -> dict[str, Any]:
            message: dict[str, Any] = super()._store(chat, params, **content)
            self.by_chat.setdefault(chat["id"], []).append(message)
            event = self.arrived.get(chat["id"])
            if event is not None:
                event.set()
            return message

        async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
            """A press continues the pressed message (bot/telegram/app.py `_continue`):
            the edit that appends the next reply after "✓ choice" is that reply arriving,
            so the customer reads it as one (a plain "✓ choice" edit is not)."""
            result = await super()._m_editmessagetext(params)
            message = self.messages[(_chat_of(params), int(params["message_id"]))]
            text = str(message.get("text") or "")
            choice = text.rfind("\n\n✓ ")
            if choice >= 0 and "\n\n" in text[choice + 2 :]:
                arrived = {**message, "sent_at": time.monotonic(), "continued": True}
                self.by_chat.setdefault(message["chat"]["id"], []).append(arrived)
                event = self.arrived.get(message["chat"]["id"])
                if event is not None:
                    event.set()
            return result

        def chat(self, chat_id: int) -> list[dict[str, Any]]:
            return self.by_chat.setdefault(chat_id, [])

        def event(self, chat_id: int) -> asyncio.Event:
            return self.arrived.setdefault(chat_id, asyncio.Event())

    return LoadDouble


def _chat_of(params: dict[str, Any]) -> int:
    return int(params["chat_id"])


def _new_double(limits: bool) -> Any:
    cls = _double_class()
    if limits:
        return cls()
    return cls(per_chat_rate=1e6, per_chat_burst=1e6, global_rate=1e6, group_per_minute=1e6)


# --- customers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    lang: str
    name: str
    opening: str
    more: str
    answers: dict[str, str]
    outcome: str
    open_answer: str


def _personas() -> list[Persona]:
    path = PROJECT_ROOT / "tests" / "dialogue" / "customers.yml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["customers"]
    return [
        Persona(
            lang=str(item["lang"]),
            name=str(item["name"]),
            opening=str(item["opening"]),
            more=str(item.get("more") or item["opening"]),
            answers={str(k): str(v) for k, v in (item.get("answers") or {}).items()},
            outcome=str(item.get("outcome") or "@other"),
            open_answer=str(item.get("open_answer") or "-"),
        )
        for item in raw
    ]


def _faq_questions() -> dict[str, list[str]]:
    folder = PROJECT_ROOT / "bot" / "dialogue" / "faq"
    questions: dict[str, list[str]] = {}
    for lang in ("en", "zh"):
        items = yaml.safe_load((folder / f"{lang}.yml").read_text(encoding="utf-8"))["faq"]
        questions[lang] = [str(q) for item in items for q in item["questions"][:2]]
    return questions


@dataclass
class Step:
    kind: str
    """greeting, faq, opening, photo, typed, press, summary (the hand-off), cancel, after"""
    text: str
    think: float
    """Seconds the customer thought before this step."""
    pushed: float = 0.0
    answered: float | None = None


@dataclass
class Plan:
    """Who a customer is and what they will do; drawn from the seed before the run."""

    index: int
    user_id: int
    name: str
    persona: Persona
    arrival: float
    greet: bool
    faq: str | None
    faq_only: bool
    cancel_at: int | None
    """Cancel instead of the N-th answer after the opening."""
    photo: bool
    write_after: bool
    seed: int


@dataclass
class Played:
    plan: Plan
    steps: list[Step] = field(default_factory=list)
    end: str = "open"
    """handed_off, faq, cancelled, gave_up (a step not answered in time), stuck"""


def make_plans(customers: int, seconds: float, seed: int) -> list[Plan]:
    rng = random.Random(seed)
    personas = _personas()
    faqs = _faq_questions()
    arrivals = sorted(rng.uniform(0, seconds) for _ in range(customers))
    plans = []
    for index, arrival in enumerate(arrivals):
        persona = rng.choice(personas)
        roll = rng.random()
        faq_only = roll < FAQ_ONLY
        faq_first = FAQ_ONLY <= roll < FAQ_ONLY + FAQ_FIRST
        plans.append(
            Plan(
                index=index,
                user_id=FIRST_USER + index,
                name=f"{persona.name} {index}",
                persona=persona,
                arrival=arrival,
                greet=rng.random() < GREET_FIRST,
                faq=rng.choice(faqs[persona.lang]) if faq_only or faq_first else None,
                faq_only=faq_only,
                cancel_at=rng.randint(1, 3) if rng.random() < CANCEL else None,
                photo=rng.random() < PHOTO,
                write_after=rng.random() < WRITE_AFTER,
                seed=rng.getrandbits(32),
            )
        )
    return plans


class Customer:
    """One person in Telegram: acts, waits for the bot to finish answering, thinks."""

    def __init__(self, double: Any, plan: Plan, began: float, timeout: float) -> None:
        self.double = double
        self.plan = plan
        self.began = began
        self.timeout = timeout
        self.rng = random.Random(plan.seed)
        self.played = Played(plan)
        self.lang = plan.persona.lang
        self.typed = [plan.persona.more, plan.persona.open_answer]
        self.next_think: float | None = None
        """Set by the baseline's replay: the think time recorded for the next step."""

    def think(self, typing: bool) -> float:
        if self.next_think is not None:
            return self.next_think
        low, high = THINK_TYPE if typing else THINK_PRESS
        return self.rng.uniform(low, high)

    async def _step(
        self, kind: str, text: str, *, press: tuple[int, str] | None = None, photo: bool = False
    ) -> bool:
        """Think, act, wait for the bot's whole answer; False when none came in time."""
        step = Step(kind, text, self.think(press is None))
        await asyncio.sleep(step.think)
        chat = self.double.chat(self.plan.user_id)
        before = len(chat)
        step.pushed = time.monotonic()
        if press is not None:
            self.double.user_presses(self.plan.user_id, *press)
        elif photo:
            self.double.user_sends_photo(self.plan.user_id, text)
        else:
            self.double.user_sends(self.plan.user_id, text)
        self.played.steps.append(step)
        event = self.double.event(self.plan.user_id)
        deadline = step.pushed + self.timeout
        while True:
            now = time.monotonic()
            fresh = chat[before:]
            if fresh and step.answered is None:
                step.answered = fresh[0]["sent_at"]
            if fresh and (
                _buttons(fresh[-1]) or now - fresh[-1]["sent_at"] >= QUIET or now >= deadline
            ):
                return True
            if now >= deadline:
                return False
            wait = deadline - now
            if fresh:
                wait = min(wait, QUIET - (now - fresh[-1]["sent_at"]))
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(0.01, wait))

    def _keyboard(self) -> tuple[int, list[tuple[str, str]]] | None:
        """The buttons of the bot's latest message, if it has any still on screen."""
        chat = self.double.chat(self.plan.user_id)
        if chat and _buttons(chat[-1]):
            return chat[-1]["message_id"], _buttons(chat[-1])
        return None

    def _move(self) -> tuple[str, str, tuple[int, str] | None]:
        """(kind, text, press) answering what the bot shows now."""
        persona = self.plan.persona
        shown = self._keyboard()
        if shown is None:
            text = self.typed.pop(0) if self.typed else FALLBACK[self.lang]
            return "typed", text, None
        message_id, buttons = shown
        by_data = dict((data, label) for label, data in buttons)

        def press(data: str, kind: str = "press") -> tuple[str, str, tuple[int, str]]:
            return kind, by_data[data], (message_id, data)

        if "summary:yes" in by_data:
            return press("summary:yes", "summary")
        if "confirm:yes" in by_data:
            return press("confirm:yes")
        slot = next(
            (d.split(":", 1)[1].split("=")[0] for d in by_data if d.startswith("slot:")), ""
        )
        if any(d.startswith("outcome:") for d in by_data):
            wanted = persona.outcome
            if not wanted.startswith("@"):
                return "typed", wanted, None
            data = f"outcome:{wanted[1:]}"
        elif slot:
            wanted = persona.answers.get(slot, "")
            if wanted and not wanted.startswith("@"):
                return "typed", wanted, None
            data = f"slot:{slot}={wanted[1:]}"
        else:
            data = ""
        if data not in by_data:  # a question the persona did not expect: the first button
            data = buttons[0][1]
        return press(data)

    async def play(self) -> Played:
        plan = self.plan
        persona = plan.persona
        await asyncio.sleep(max(0.0, self.began + plan.arrival - time.monotonic()))
        played = self.played
        opening: list[tuple[str, str]] = []
        if plan.greet:
            opening.append(("greeting", self.rng.choice(GREETINGS[self.lang])))
        if plan.faq:
            opening.append(("faq", plan.faq))
        if not plan.faq_only:
            opening.append(("opening", persona.opening))
            if plan.photo:
                opening.append(("photo", PHOTO_CAPTION[self.lang]))
        for kind, text in opening:
            if not await self._step(kind, text, photo=kind == "photo"):
                played.end = "gave_up"
                return played
        if plan.faq_only:
            played.end = "faq"
            return played
        for answer in range(1, MAX_STEPS + 1):
            if plan.cancel_at == answer:
                ok = await self._step("cancel", "/cancel")
                played.end = "cancelled" if ok else "gave_up"
                return played
            kind, text, press = self._move()
            if not await self._step(kind, text, press=press):
                played.end = "gave_up"
                return played
            if kind == "summary":
                played.end = "handed_off"
                if plan.write_after and not await self._step(
                    "after", self.rng.choice(AFTER[self.lang])
                ):
                    played.end = "gave_up"
                return played
        played.end = "stuck"
        return played


def _buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row if "callback_data" in b]


class EchoCustomer(Customer):
    """The baseline's customer: the same steps, texts and think times, all typed."""

    def __init__(self, double: Any, played: Played, began: float, timeout: float) -> None:
        super().__init__(double, played.plan, began, timeout)
        self.script = played.steps

    async def play(self) -> Played:
        await asyncio.sleep(max(0.0, self.began + self.plan.arrival - time.monotonic()))
        for planned in self.script:
            self.next_think = planned.think
            text = "[photo]" if planned.kind == "photo" else planned.text
            if not await self._step(planned.kind, text):
                self.played.end = "gave_up"
                return self.played
        self.played.end = "done"
        return self.played


# --- measuring the processes -------------------------------------------------------------


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live children (PostgreSQL's
    postmaster and its backends)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            _, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        own = int(stat.parent.name) == pid
        if own or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
            if own:
                total += (int(fields[13]) + int(fields[14])) / ticks
    return total


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Usage:
    """CPU seconds over the load, of the bot, this process (double and customers), the
    database server and everything else on the machine."""

    bot: float = 0.0
    bench: float = 0.0
    database: float = 0.0
    machine: float = 0.0
    seconds: float = 0.0
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def others(self) -> float:
        return max(0.0, self.machine - self.bot - self.bench - self.database)


class Sampler:
    def __init__(self, pid: int, database_pid: int | None) -> None:
        self.pid = pid
        self.database_pid = database_pid
        self.rss: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None
        self._start = self._read()

    def _read(self) -> tuple[float, float, float, float, float]:
        database = _tree_cpu(self.database_pid) if self.database_pid else 0.0
        busy, _ = _machine_busy()
        return time.monotonic(), _cpu_seconds(self.pid), time.process_time(), database, busy

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.rss.append((time.monotonic(), _rss_mib(self.pid)))
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self._start = self._read()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> Usage:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        end = self._read()
        return Usage(
            bot=end[1] - self._start[1],
            bench=end[2] - self._start[2],
            database=end[3] - self._start[3],
            machine=end[4] - self._start[4],
            seconds=end[0] - self._start[0],
        )


# --- one run -------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    played: list[Played]
    usage: Usage
    rss_idle: float
    rss_peak: float
    rss_end: float
    rss_peak_kernel: float
    double_errors: Counter[str]
    throttled: int
    violations: list[str]
    log_counts: Counter[str]
    log_errors: Counter[str]
    sent: int
    edits: int
    late_answers: int
    tickets: int = 0
    cards: list[float] = field(default_factory=list)
    """Seconds from each ticket's creation to its card in the staff group."""
    cards_rate: float = 0.0
    """Cards per minute over the run."""
    unanswered_queries: int = 0
    wall: float = 0.0
    folder: Path | None = None


def _env(settings: Settings, double: Any, url: str, *, staff: bool) -> dict[str, str]:
    from tests.support.botapi.double import TOKEN

    ours = ("TELEGRAM_", "DATABASE_", "STAFF_", "AGENT_", "SUPERVISOR_", "LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=double.base_url,
        DATABASE_URL=url,
        NLU_CACHE_DIR=str(settings.nlu_cache_dir),
        PYTHONIOENCODING="utf-8",
    )
    if staff:
        env.update(
            STAFF_CHAT_ID=str(STAFF_CHAT),
            AGENT_IDS=",".join(map(str, AGENTS)),
            SUPERVISOR_IDS=",".join(map(str, SUPERVISORS)),
        )
    return env


def _tickets(url: str) -> dict[int, float]:
    """Ticket id -> when it was created (Unix time)."""
    from sqlmodel import select

    from bot.store import Database, Ticket

    db = Database(url)
    try:
        with db.session() as session:
            rows = session.exec(select(Ticket.id, Ticket.created_at)).all()
    finally:
        db.dispose()
    out: dict[int, float] = {}
    for ticket_id, created in rows:
        if ticket_id is not None:
            if created.tzinfo is None:  # SQLite hands back naive UTC
                from datetime import UTC

                created = created.replace(tzinfo=UTC)
            out[int(ticket_id)] = created.timestamp()
    return out


def _cards(double: Any) -> dict[int, float]:
    """Ticket id -> when its summary card reached the staff group (monotonic)."""
    out: dict[int, float] = {}
    for message in double.chat(STAFF_CHAT):
        for _, data in _buttons(message):
            found = TICKET_IN_CARD.match(data)
            if found:
                out.setdefault(int(found.group(1)), message["sent_at"])
    return out


_NUMBERS = re.compile(r"\d+")


def _read_log(path: Path) -> tuple[Counter[str], Counter[str]]:
    """(lines per level and tracebacks, ERROR messages with numbers masked)."""
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    if not path.exists():
        return counts, errors
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            counts["Traceback"] += 1
        parts = line.split(" ", 4)
        if len(parts) >= 4 and parts[2] in ("ERROR", "WARNING", "CRITICAL"):
            counts[parts[2]] += 1
            if parts[2] != "WARNING":
                errors[_NUMBERS.sub("N", " ".join(parts[3:]))[:160]] += 1
    return counts, errors


async def _play_all(customers: list[Customer]) -> list[Played]:
    return list(await asyncio.gather(*(customer.play() for customer in customers)))


def _code_state(path: Path) -> None:
    """Which bot was measured: the checkout's commit and what differs from it (others
    edit the working tree while benches run)."""
    import hashlib
    import subprocess

    lines = []
    for args in (["git", "rev-parse", "HEAD"], ["git", "status", "--short"]):
        with contextlib.suppress(OSError):
            done = subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True)
            lines.append(done.stdout)
    for source in sorted((PROJECT_ROOT / "bot").rglob("*.py")) + sorted(
        (PROJECT_ROOT / "handoff").rglob("*.py")
    ):
        digest = hashlib.sha1(source.read_bytes()).hexdigest()[:12]
        lines.append(f"{digest} {source.relative_to(PROJECT_ROOT)}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


async def _run_bot(
    settings: Settings,
    folder: Path,
    plans: list[Plan],
    *,
    database: str,
    timeout: float,
    drain: float,
    staff: bool = True,
) -> Result:
    double = _new_double(limits=True)
    await double.start()
    double.add_group(STAFF_CHAT, "Support desk", forum=True)
    for user_id, name in (*AGENTS.items(), *SUPERVISORS.items()):
        double.add_user(user_id, name, "en")
    for plan in plans:
        double.add_user(plan.user_id, plan.name, plan.persona.lang)
    pg: Any = None
    try:
        if database == "postgresql":
            from tests.support.testpg import TempPostgres

            pg = TempPostgres()
            pg.start()
            url = pg.create_database("loadbench")
            database_pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        else:
            url = f"sqlite:///{folder / 'bot.db'}"
            database_pid = None
        env = _env(settings, double, url, staff=staff)
        log = folder / f"bot-{database}{'' if staff else '-nostaff'}.log"
        process = await _start(double, [sys.executable, *BOT_COMMAND], env, log)
        name = f"bot, {'PostgreSQL' if pg else 'SQLite'}" + ("" if staff else ", no staff group")
        try:
            return await _load(
                name,
                double,
                process,
                plans,
                timeout=timeout,
                drain=drain,
                url=url,
                database_pid=database_pid,
                log=log,
            )
        finally:
            await process.stop()
            _say("bot stopped")
    finally:
        await double.stop()
        if pg is not None:
            pg.stop()
        _say("double and database stopped")


async def _load(
    name: str,
    double: Any,
    process: _Process,
    plans: list[Plan],
    *,
    timeout: float,
    drain: float,
    url: str | None,
    database_pid: int | None,
    log: Path,
    script: list[Played] | None = None,
) -> Result:
    pid = process.popen.pid
    await asyncio.sleep(2)  # start-up work (commands, scheduler) out of the way
    rss_idle = _rss_mib(pid)
    sampler = Sampler(pid, database_pid)
    began = time.monotonic() + 1.0
    if script is None:
        customers = [Customer(double, plan, began, timeout) for plan in plans]
    else:
        customers = [EchoCustomer(double, played, began, timeout) for played in script]
    sampler.start()
    _say(f"{name}: {len(customers)} customers ...")
    played = await _play_all(customers)
    _say("customers done")
    last = max((s.answered or s.pushed for p in played for s in p.steps), default=began)
    usage = await sampler.stop()  # CPU over the load; the drain below only waits for cards
    rss_peak = max((r for _, r in sampler.rss), default=rss_idle)
    tickets: dict[int, float] = {}
    if url is not None:
        deadline = time.monotonic() + drain
        tickets = _tickets(url)
        while time.monotonic() < deadline and not set(tickets) <= set(_cards(double)):
            await asyncio.sleep(5)
            tickets = _tickets(url)
    _say(f"drain done: {len(tickets)} tickets")
    rss_end = _rss_mib(pid)
    peak_kernel = _peak_rss_mib(pid)
    offset = time.time() - time.monotonic()
    cards = _cards(double)
    lateness = [cards[t] + offset - created for t, created in tickets.items() if t in cards]
    posted = sorted(cards.values())
    cards_rate = 60 * (len(posted) - 1) / (posted[-1] - posted[0]) if len(posted) > 1 else 0.0
    late = 0
    for p in played:
        for step in p.steps:
            if step.answered is None and any(
                m["sent_at"] >= step.pushed for m in double.chat(p.plan.user_id)
            ):
                late += 1
    errors: Counter[str] = Counter(
        f"{code} {method}: {_NUMBERS.sub('N', text)[:90]}"
        for method, code, text in double.errors
        if code != 429
    )
    counts, log_errors = _read_log(log)
    _dump(log.with_suffix(".steps.jsonl"), played, began)
    with log.with_suffix(".staff.txt").open("w", encoding="utf-8") as out:
        for message in double.chat(STAFF_CHAT):
            text = str(message.get("text", "")).replace("\n", " ")[:100]
            out.write(
                f"{message['sent_at'] - began:9.1f} {message.get('message_thread_id')} {text}\n"
            )
    customers_sent = [m for m in double.outbox if m["chat"]["id"] > 0]
    return Result(
        name=name,
        played=played,
        usage=usage,
        rss_idle=rss_idle,
        rss_peak=max(rss_peak, rss_end),
        rss_end=rss_end,
        rss_peak_kernel=peak_kernel,
        double_errors=errors,
        throttled=sum(1 for _, code, _ in double.errors if code == 429),
        violations=list(double.violations),
        log_counts=counts,
        log_errors=log_errors,
        sent=len(customers_sent),
        edits=sum(1 for m, _ in double.requests if m.lower().startswith("editmessage")),
        late_answers=late,
        tickets=len(tickets),
        cards=lateness,
        cards_rate=cards_rate,
        unanswered_queries=sum(1 for q in double.callbacks.values() if not q["answered"]),
        wall=last - began,
        folder=log.parent,
    )


def _dump(path: Path, played: list[Played], began: float) -> None:
    """Every customer's steps (seconds from the start of the load), for a post-mortem."""
    with path.open("w", encoding="utf-8") as out:
        for p in played:
            steps = [
                {
                    "kind": s.kind,
                    "text": s.text[:60],
                    "think": round(s.think, 2),
                    "at": round(s.pushed - began, 3),
                    "reply": None if s.answered is None else round(s.answered - s.pushed, 3),
                }
                for s in p.steps
            ]
            record = {"user": p.plan.user_id, "name": p.plan.name, "end": p.end, "steps": steps}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


ANSWER_KINDS = ("typed", "press", "summary")
DEFAULT_ANSWERS = [Step("press", "Yes", 0.0)] * 4 + [Step("summary", "Yes, all correct", 0.0)]
"""The answers of a conversation when the bot's run has none to copy (it answered nobody)."""


def echo_script(played: list[Played]) -> list[Played]:
    """The baseline's customers: the whole conversation each would have had.

    A customer who finished in the bot's run (handed off, FAQ, cancelled) is replayed
    as they went. One who gave up there (the bot did not answer in time) gets their own
    start from their plan (greeting, FAQ, complaint, photo) and the answers (typed and
    pressed, up to the summary) of a customer with the same persona who was handed off,
    cut at their /cancel and followed by their message after the hand-off, with think
    times drawn as the customer would. So the baseline carries the load that was meant,
    not what the bot's run made of it."""
    answers: dict[str, list[Step]] = {}
    for p in played:
        if p.end == "handed_off":
            answers.setdefault(
                p.plan.persona.opening, [s for s in p.steps if s.kind in ANSWER_KINDS]
            )
    fallback = next(iter(answers.values()), DEFAULT_ANSWERS)
    script = []
    for p in played:
        if p.end != "gave_up":
            script.append(p)
            continue
        plan = p.plan
        lang = plan.persona.lang
        rng = random.Random(plan.seed)
        steps = []
        start: list[tuple[str, str]] = []
        if plan.greet:
            start.append(("greeting", rng.choice(GREETINGS[lang])))
        if plan.faq:
            start.append(("faq", plan.faq))
        if not plan.faq_only:
            start.append(("opening", plan.persona.opening))
            if plan.photo:
                start.append(("photo", PHOTO_CAPTION[lang]))
            for number, step in enumerate(answers.get(plan.persona.opening, fallback), 1):
                if plan.cancel_at == number:
                    start.append(("cancel", "/cancel"))
                    break
                start.append((step.kind, step.text))
            else:
                if plan.write_after:
                    start.append(("after", rng.choice(AFTER[lang])))
        for kind, text in start:
            low, high = THINK_PRESS if kind in ("press", "summary") else THINK_TYPE
            steps.append(Step(kind, text, rng.uniform(low, high)))
        script.append(Played(plan, steps, p.end))
    return script


async def _run_echo(
    settings: Settings, folder: Path, script: list[Played], *, timeout: float, limits: bool
) -> Result:
    double = _new_double(limits=limits)
    await double.start()
    for played in script:
        double.add_user(played.plan.user_id, played.plan.name, played.plan.persona.lang)
    try:
        env = _env(settings, double, f"sqlite:///{folder / 'echo.db'}", staff=False)
        log = folder / "echo.log"
        args = [sys.executable, "-m", "benchmarks.telegram", "echo"]
        process = await _start(double, args, env, log)
        try:
            return await _load(
                "baseline: PTB echo bot",
                double,
                process,
                [p.plan for p in script],
                timeout=timeout,
                drain=0,
                url=None,
                database_pid=None,
                log=log,
                script=script,
            )
        finally:
            await process.stop()
    finally:
        await double.stop()


# --- the report ------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; unanswered steps count as infinitely late."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def _latencies(result: Result, kinds: tuple[str, ...] | None = None) -> list[float]:
    return [
        (step.answered - step.pushed) if step.answered is not None else float("inf")
        for played in result.played
        for step in played.steps
        if kinds is None or step.kind in kinds
    ]


def _ms(value: float, timeout: float) -> str:
    if value == float("inf"):
        return f"> {timeout:.0f} s"
    if value >= 10:
        return f"{value:,.1f} s"
    return f"{1000 * value:,.0f} ms"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(header)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(widths[i + 1]) for i, c in enumerate(row[1:])]
        lines.append("  ".join(cells).rstrip())
    return lines


STEP_KINDS = (
    ("greeting", ("greeting",)),
    ("FAQ question", ("faq",)),
    ("complaint (opening)", ("opening",)),
    ("photo", ("photo",)),
    ("typed answer", ("typed",)),
    ("button press", ("press",)),
    ("summary confirmed (hand-off)", ("summary",)),
    ("/cancel", ("cancel",)),
    ("message after the hand-off", ("after",)),
)


def report(
    results: list[Result], *, customers: int, minutes: float, seed: int, timeout: float
) -> str:
    header = ["", *[r.name for r in results]]
    rows: list[list[str]] = []

    def row(label: str, cell: Any) -> None:
        rows.append([label, *[cell(r) for r in results]])

    def ends(r: Result, *names: str) -> str:
        return f"{sum(1 for p in r.played if p.end in names):,}"

    row("customers", lambda r: f"{len(r.played):,}")
    row("  handed off (confirmed the summary)", lambda r: ends(r, "handed_off"))
    row("  FAQ only / cancelled", lambda r: f"{ends(r, 'faq')} / {ends(r, 'cancelled')}")
    row("  gave up (a step unanswered)", lambda r: ends(r, "gave_up"))
    row("  stuck (no read-back in 18 steps)", lambda r: ends(r, "stuck"))
    row("customer updates pushed", lambda r: f"{sum(len(p.steps) for p in r.played):,}")
    row(
        "  per second, over the load",
        lambda r: f"{sum(len(p.steps) for p in r.played) / r.wall:.1f}",
    )
    row("bot messages to customers (+ edits)", lambda r: f"{r.sent:,} (+{r.edits:,})")
    for label, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        row(
            f"reply latency {label}",
            lambda r, f=fraction: _ms(_percentile(_latencies(r), f), timeout),
        )
    row("reply latency max", lambda r: _ms(max(_latencies(r)), timeout))
    for label, kinds in STEP_KINDS:
        if not any(_latencies(r, kinds) for r in results[-1:]):
            continue
        row(
            f"  {label}: n, p50 / p99",
            lambda r, k=kinds: (
                f"{len(_latencies(r, k)):,}, {_ms(_percentile(_latencies(r, k), 0.5), timeout)}"
                f" / {_ms(_percentile(_latencies(r, k), 0.99), timeout)}"
                if _latencies(r, k)
                else "-"
            ),
        )
    row(
        f"unanswered within {timeout:.0f} s (of which late)",
        lambda r: f"{sum(1 for x in _latencies(r) if x == float('inf')):,} ({r.late_answers:,})",
    )
    row("button presses never acknowledged", lambda r: f"{r.unanswered_queries:,}")
    row("429s from the double (retried)", lambda r: f"{r.throttled:,}")
    row("other 4xx/5xx from the double", lambda r: f"{sum(r.double_errors.values()):,}")
    row("spec violations", lambda r: f"{len(r.violations):,}")
    row(
        "bot log: ERROR / tracebacks / WARNING",
        lambda r: (
            f"{r.log_counts['ERROR'] + r.log_counts['CRITICAL']:,} / "
            f"{r.log_counts['Traceback']:,} / {r.log_counts['WARNING']:,}"
        ),
    )
    row(
        "RSS MiB: idle / peak / end",
        lambda r: f"{r.rss_idle:.0f} / {r.rss_peak:.0f} / {r.rss_end:.0f}",
    )
    row(
        "CPU s of the bot (cores used)",
        lambda r: f"{r.usage.bot:.0f} ({r.usage.bot / r.usage.seconds:.2f})",
    )
    row("CPU s of double + customers", lambda r: f"{r.usage.bench:.0f}")
    row("CPU s of PostgreSQL", lambda r: f"{r.usage.database:.0f}" if r.usage.database else "-")
    row(
        "machine busy (of cores), others",
        lambda r: (
            f"{r.usage.machine / r.usage.seconds:.2f} of {r.usage.cores}, "
            f"{r.usage.others / r.usage.seconds:.2f}"
        ),
    )
    row("wall s (first arrival to last answer)", lambda r: f"{r.wall:.0f}")
    row("tickets in the database", lambda r: f"{r.tickets:,}" if r.name.startswith("bot") else "-")
    row(
        "summary cards in the staff group",
        lambda r: f"{len(r.cards):,}" if r.name.startswith("bot") else "-",
    )
    row(
        "  card late: p50 / last",
        lambda r: (
            f"{_ms(statistics.median(r.cards), timeout)} / {_ms(max(r.cards), timeout)}"
            if r.cards
            else "-"
        ),
    )
    row("  cards per minute", lambda r: f"{r.cards_rate:.1f}" if r.cards else "-")
    lines = [
        f"Load bench: {customers:,} customers arriving at random over {minutes:g} min "
        f"(seed {seed}), Telegram's limits on",
        "",
        *_table(header, rows),
    ]
    for result in results:
        notes = []
        if result.tickets > len(result.cards) and result.cards_rate:
            waiting = result.tickets - len(result.cards)
            notes.append(
                f"{waiting:,} tickets without a card when the bench stopped; at "
                f"{result.cards_rate:.1f} cards/min the last would come "
                f"{waiting / result.cards_rate:.0f} min later"
            )
        notes += [f"double: {n} x {text}" for text, n in result.double_errors.most_common(5)]
        notes += [f"spec: {text}" for text in result.violations[:5]]
        notes += [f"log: {n} x {text}" for text, n in result.log_errors.most_common(8)]
        if notes:
            lines += ["", f"{result.name}:", *[f"  {note}" for note in notes]]
    return "\n".join(lines)


async def run_load_bench(
    settings: Settings,
    *,
    customers: int,
    minutes: float,
    databases: list[str],
    seed: int,
    timeout: float,
    baseline: bool = True,
    staff: bool = True,
) -> str:
    try:
        import tests.support.botapi.double  # noqa: F401
    except ImportError as error:  # an installed package without the tests folder
        raise RuntimeError("run the load bench from a checkout (needs tests/)") from error
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL)
    folder = Path(tempfile.mkdtemp(prefix="load-bench-"))
    print(f"logs and databases: {folder}", file=sys.stderr)
    _code_state(folder / "code.txt")
    plans = make_plans(customers, 60 * minutes, seed)
    results = []
    for database in databases:
        results.append(
            await _run_bot(
                settings,
                folder,
                plans,
                database=database,
                timeout=timeout,
                drain=DRAIN if staff else 0,
                staff=staff,
            )
        )
    if baseline and results:
        script = echo_script(results[0].played)
        echo = await _run_echo(settings, folder, script, timeout=timeout, limits=False)
        results.insert(0, echo)
    return report(results, customers=customers, minutes=minutes, seed=seed, timeout=timeout)
