"""`python -m benchmarks --telegram`: the bot as a whole, against the Bot API double.

Run from a checkout (the double lives in tests/botapi). Three figures, each beside a
baseline measured in the same run:

1. CPU time per update: `python -m bot run` (parse, policy, actions, SQLite, sending)
   versus a bare python-telegram-bot echo bot, same double, same updates.
2. Sustained load: updates injected at a fixed rate across many chats for a while;
   achieved updates/s and reply latency p50/p99 (update in the double -> first reply).
3. Resident memory of the bot process with 10,000 conversations in its database,
   beside the echo bot's.

The double's flood limits are lifted and `TELEGRAM_MAX_RATE=0` removes the bot's own
30/s cap, so the figures are the pipeline's, not Telegram's limits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import PROJECT_ROOT, Settings

TEXTS = [
    "my parcel never arrived, order SO20241105123",
    "yes",
    "I'd like a refund please",
    "快递一直没到，订单JD-778812340",
    "对",
    "退款吧",
    "the blender leaks from the bottom",
    "hello",
]


def echo_main() -> None:
    """The baseline: a bare PTB bot that echoes every text, nothing else."""
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message and update.effective_message.text:
            await update.effective_message.reply_text(update.effective_message.text)

    application = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
        .concurrent_updates(256)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.run_polling()


def _profiler(folder: Path) -> list[str]:
    """BENCH_PROFILE=1 runs the bot under cProfile (written to the bench folder)."""
    if os.environ.get("BENCH_PROFILE"):
        return ["-m", "cProfile", "-o", str(folder / "bot.prof")]
    return []


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as sink:
            self.popen = subprocess.Popen(
                args, cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
            )

    async def stop(self) -> None:
        self.popen.send_signal(signal.SIGINT)
        for _ in range(400):
            if self.popen.poll() is not None:
                return
            await asyncio.sleep(0.05)
        self.popen.kill()


async def _start(double: Any, args: list[str], env: dict[str, str], log: Path) -> _Process:
    polls = sum(1 for method, _ in double.requests if method == "getUpdates")
    process = _Process(args, env, log)
    await double.wait_for(
        lambda: (
            sum(1 for m, _ in double.requests if m == "getUpdates") > polls
            or process.popen.poll() is not None
        ),
        timeout=600,  # a first start embeds the NLU's training data (minutes on 2 cores)
        what="the bot to poll",
    )
    if process.popen.poll() is not None:
        raise RuntimeError(f"{args} exited: see {log}")
    return process


async def _answered(double: Any, injected: list[dict[str, Any]], timeout: float) -> list[float]:
    """Seconds from each injected message to the bot's first reply after it."""
    pending = list(injected)

    def all_answered() -> bool:
        pending[:] = [m for m in pending if _first_reply(double, m) is None]
        return not pending

    await double.wait_for(all_answered, timeout=timeout, what="replies")
    latencies = []
    for message in injected:
        reply = _first_reply(double, message)
        if reply is not None:
            latencies.append(reply["sent_at"] - message["injected_at"])
    return latencies


def _first_reply(double: Any, message: dict[str, Any]) -> dict[str, Any] | None:
    chat = message["chat"]["id"]
    for sent in double.sent_to(chat):
        if sent["sent_at"] >= message["injected_at"]:
            return dict(sent)
    return None


def _seed_conversations(url: str, count: int) -> None:
    from bot.store import Conversation, Customer, Database

    db = Database(url)
    db.upgrade()
    now = datetime.now(UTC)
    with db.session() as session:
        for index in range(count):
            customer = Customer(telegram_id=10_000_000 + index, name=f"c{index}", language="en")
            session.add(customer)
            session.flush()
            assert customer.id is not None
            session.add(
                Conversation(
                    customer_id=customer.id,
                    chat_id=customer.telegram_id,
                    stage="confirming",
                    slots={"complaint_type": "delivery", "greeted": True, "restatements": 1},
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
    db.dispose()


async def run_telegram_bench(
    settings: Settings, *, updates: int, rate: float, seconds: float, chats: int
) -> str:
    try:
        from tests.support.botapi.double import TOKEN, BotApiDouble
    except ImportError as error:  # an installed package without the tests folder
        raise RuntimeError("run the Telegram bench from a checkout (needs tests/botapi)") from error

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # resets at SIGINT
    double = BotApiDouble(per_chat_rate=1e6, per_chat_burst=1e6, global_rate=1e6)
    await double.start()
    folder = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    for index in range(chats):
        double.add_user(50_000 + index, f"user{index}", "en")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    base_env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=double.base_url,
        TELEGRAM_MAX_RATE="0",
        NLU_CACHE_DIR=str(settings.nlu_cache_dir),
        LOG_LEVEL="WARNING",
    )
    lines = []
    try:
        cpu: dict[str, float] = {}
        rss: dict[str, float] = {}
        for name, args in (
            ("echo", [sys.executable, "-m", "benchmarks.telegram", "echo"]),
            ("bot", [sys.executable, *_profiler(folder), "-m", "bot", "run"]),
        ):
            url = f"sqlite:///{folder / (name + '.db')}"
            if name == "bot":
                _seed_conversations(url, 10_000)
            env = {**base_env, "DATABASE_URL": url}
            process = await _start(double, args, env, folder / f"{name}.log")
            pid = process.popen.pid
            started = _cpu_seconds(pid)
            injected = [
                double.user_sends(50_000 + i % chats, TEXTS[i % len(TEXTS)]) for i in range(updates)
            ]
            await _answered(double, injected, timeout=600)
            cpu[name] = (_cpu_seconds(pid) - started) / updates
            # the echo bot's sustained figures are the ceiling of this harness (the
            # double and the load run on the same two cores)
            lines += [f"{name}:", *await _sustained(double, rate, seconds, chats), ""]
            rss[name] = _rss_mib(pid)
            await process.stop()
    finally:
        await double.stop()
    print(f"logs and databases: {folder}", file=sys.stderr)
    head = [
        f"Telegram bench: {updates} updates for CPU, 10,000 conversations in the bot's database",
        "",
        "CPU time per update            ms",
        f"  baseline: bare PTB echo bot  {1000 * cpu['echo']:6.2f}",
        f"  python -m bot run            {1000 * cpu['bot']:6.2f}   "
        f"({cpu['bot'] / cpu['echo']:.1f}x)",
        "",
        "resident memory                MiB",
        f"  baseline: bare PTB echo bot  {rss['echo']:6.0f}",
        f"  python -m bot run            {rss['bot']:6.0f}",
        "",
    ]
    return "\n".join(head + lines)


async def _sustained(double: Any, rate: float, seconds: float, chats: int) -> list[str]:
    total = int(rate * seconds)
    injected = []
    began = time.monotonic()
    for index in range(total):
        due = began + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chat = 50_000 + (index * 7919) % chats
        injected.append(double.user_sends(chat, TEXTS[(index // chats) % len(TEXTS)]))
    latencies = await _answered(double, injected, timeout=600)
    last_reply = max(
        (m["sent_at"] for m in double.outbox if m["sent_at"] >= began), default=time.monotonic()
    )
    elapsed = last_reply - began
    ordered = sorted(latencies)
    return [
        f"sustained: {total} updates offered at {rate:.0f}/s across {chats} chats",
        f"  answered                     {len(latencies)}/{total}",
        f"  throughput                   {len(latencies) / elapsed:6.0f} updates/s",
        f"  reply latency p50            {1000 * statistics.median(ordered):6.0f} ms",
        f"  reply latency p99            {1000 * ordered[int(0.99 * (len(ordered) - 1))]:6.0f} ms",
    ]


async def run_outage_bench(
    settings: Settings, *, rate: float, seconds: float, chats: int, outage: float
) -> str:
    """The same load twice on one bot process: once with Telegram there throughout, once
    with Telegram away for `outage` seconds (two thirds refused connections, one third
    502 pages) from a third of the way in. Lost, sent twice, and the time from Telegram
    answering again until every reply written has gone."""
    try:
        from tests.support.botapi.double import TOKEN, BotApiDouble
    except ImportError as error:
        raise RuntimeError("run the Telegram bench from a checkout (needs tests/botapi)") from error

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    double = BotApiDouble(per_chat_rate=1e6, per_chat_burst=1e6, global_rate=1e6)
    await double.start()
    folder = Path(tempfile.mkdtemp(prefix="tg-outage-"))
    url = f"sqlite:///{folder / 'bot.db'}"
    _seed_conversations(url, 1_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=double.base_url,
        TELEGRAM_MAX_RATE="0",
        DATABASE_URL=url,
        NLU_CACHE_DIR=str(settings.nlu_cache_dir),
        LOG_LEVEL="WARNING",
        MERGE_WINDOW="0",
    )
    runs: dict[str, dict[str, float]] = {}
    try:
        process = await _start(
            double, [sys.executable, "-m", "bot", "run"], env, folder / "bot.log"
        )
        for run, base in (("no outage", 60_000), ("outage", 70_000)):
            users = [base + index for index in range(chats)]
            for user in users:
                double.add_user(user, f"u{user}", "en")
            runs[run] = await _load_with_outage(
                double, url, users, rate, seconds, outage if run == "outage" else 0.0
            )
        await process.stop()
    finally:
        await double.stop()
    print(f"logs and database: {folder}", file=sys.stderr)
    lines = [
        f"Outage bench: {rate:.0f} updates/s for {seconds:.0f} s across {chats} chats, "
        f"Telegram away {outage:.0f} s from {seconds / 3:.0f} s in "
        f"({2 * outage / 3:.0f} s refused, {outage / 3:.0f} s of 502)",
        "",
        f"{'':34}{'no outage':>12}{'outage':>12}",
    ]
    for key, label in (
        ("offered", "customer messages"),
        ("answered", "answered"),
        ("rows", "messages written for customers"),
        ("sent", "sent"),
        ("lost", "lost (goal 0)"),
        ("twice", "sent twice (goal 0)"),
        ("unconfirmed", "in doubt at the cut, arrived once"),
        ("drain", "backlog gone after recovery, s"),
        ("p50", "reply latency p50, s"),
        ("p99", "reply latency p99, s"),
    ):
        lines.append(
            f"  {label:32}{runs['no outage'][key]:12.1f}{runs['outage'][key]:12.1f}"
            if key in ("drain", "p50", "p99")
            else f"  {label:32}{runs['no outage'][key]:12.0f}{runs['outage'][key]:12.0f}"
        )
    return "\n".join(lines)


async def _load_with_outage(
    double: Any, url: str, users: list[int], rate: float, seconds: float, outage: float
) -> dict[str, float]:
    from sqlmodel import col, select

    from bot.store import Conversation, Database, Message

    total = int(rate * seconds)
    injected = []
    began = time.monotonic()
    cut = began + seconds / 3 if outage else None
    for index in range(total):
        if cut is not None and time.monotonic() >= cut:
            double.outage_now(2 * outage / 3, outage / 3)
            cut = None
        due = began + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        user = users[(index * 7919) % len(users)]
        injected.append(double.user_sends(user, TEXTS[(index // len(users)) % len(TEXTS)]))
    if double.outage_task is not None:
        await double.outage_task
        double.outage_task = None
    recovered = double.outage_ended_at if outage else began
    db = Database(url)

    def rows() -> list[tuple[int, Message]]:
        with db.session() as session:
            return list(
                session.exec(
                    select(Conversation.chat_id, Message)
                    .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
                    .where(col(Conversation.chat_id).in_(users), Message.direction == "out")
                )
            )

    def settled() -> bool:
        written = rows()
        answered = {chat for chat, _ in written}
        every = all(message["chat"]["id"] in answered for message in injected)
        return every and all(row.outcome is not None for _, row in written)

    await double.wait_for(settled, timeout=900, what="every reply sent")
    latencies = await _answered(double, injected, timeout=60)
    written = rows()
    last = max((m["sent_at"] for m in double.outbox if m["chat"]["id"] in set(users)), default=0)
    received: dict[tuple[int, str], int] = {}
    for message in double.outbox:
        if message["chat"]["id"] in set(users):
            key = (message["chat"]["id"], message.get("text", ""))
            received[key] = received.get(key, 0) + 1
    expected: dict[tuple[int, str], int] = {}
    for chat, row in written:
        key = (chat, row.text.strip())
        expected[key] = expected.get(key, 0) + 1
    twice = sum(max(0, count - expected.get(key, 0)) for key, count in received.items())
    unconfirmed = [(chat, row) for chat, row in written if row.outcome == "unconfirmed"]
    arrived = sum(1 for chat, row in unconfirmed if received.get((chat, row.text.strip())))
    lost = sum(1 for _, row in written if row.outcome not in ("sent", "unconfirmed"))
    lost += len(unconfirmed) - arrived
    ordered = sorted(latencies)
    db.dispose()
    return {
        "offered": float(total),
        "answered": float(len(latencies)),
        "rows": float(len(written)),
        "sent": float(sum(1 for _, row in written if row.outcome == "sent")),
        "lost": float(lost),
        "twice": float(twice),
        "unconfirmed": float(arrived),
        "drain": max(0.0, last - (recovered or began)) if outage else 0.0,
        "p50": statistics.median(ordered) if ordered else 0.0,
        "p99": ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["echo"]:
        echo_main()
