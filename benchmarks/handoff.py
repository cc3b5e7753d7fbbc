"""`python -m benchmarks --handoff`: from the customer's confirmation to the agents' card.

Run from a checkout (the Bot API double and the scripted Telegram customer live in
tests/). `python -m bot run` is started against the double with a forum staff group;
customers complain in English through buttons and text up to the read-back, then press
"Yes, all correct". For each press: seconds until the bot's reply reaches the customer
(the baseline, same press, same run) and until the summary card is in the staff group
(topic created, card sent).

Two runs:
1. one customer at a time with Telegram's limits lifted (the double's and the bot's
   own), so the figure is the pipeline's;
2. a burst: `--burst` customers confirm at the same moment under Telegram's limits
   (20 messages a minute per group), which is what a busy Monday morning looks like.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from benchmarks.telegram import _start
from bot.config import Settings

STAFF_CHAT = -100555
AGENT = 7001
COMPLAINT = "I was charged twice for order SO20241105123, $45.90 each time, refund please"


class _Bot:
    """What the scripted Telegram customer needs of the bot: its environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env


async def _to_read_back(customer: Any) -> None:
    await customer.say(COMPLAINT)
    await customer.tap("Yes")
    for _ in range(12):
        if customer.keyboard and customer.keyboard[0] == "Yes, all correct":
            return
        last = customer.double.sent_to(customer.user_id)[-1]
        if last.get("reply_markup"):
            await customer.tap(customer.keyboard[0])
        else:
            await customer.say("bought it online last month")
    raise RuntimeError("no read-back after 12 answers")


def _confirm(double: Any, customer: Any) -> tuple[float, int]:
    """Press "Yes, all correct" now; (when, how many staff-group messages before)."""
    for message in reversed(double.sent_to(customer.user_id)):
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if button["text"] == "Yes, all correct":
                    at = time.monotonic()
                    double.user_presses(
                        customer.user_id, message["message_id"], button["callback_data"]
                    )
                    return at, len(double.sent_to(STAFF_CHAT))
    raise RuntimeError("no confirmation button")


async def _times(double: Any, customer: Any, name: str, at: float) -> tuple[float, float]:
    """(seconds to the customer's reply, seconds to the card) after a press at `at`."""

    def card() -> dict[str, Any] | None:
        for message in double.sent_to(STAFF_CHAT):
            if f"Customer: {name} " in message.get("text", "") and message.get("reply_markup"):
                return dict(message)
        return None

    def reply() -> float | None:
        """When the bot's answer reached the customer: a new message, or (a press on the
        latest message continues it: bot/telegram/app.py) the edit that carries it."""
        times = [
            moment
            for m in double.sent_to(customer.user_id)
            for moment in (m["sent_at"], m.get("edited_at"))
            if moment is not None and moment >= at
        ]
        return min(times) if times else None

    await double.wait_for(lambda: card() is not None and reply() is not None, 300, "the card")
    found_card, found_reply = card(), reply()
    assert found_card is not None and found_reply is not None
    return found_reply - at, found_card["sent_at"] - at


def _summary(label: str, pairs: list[tuple[float, float]]) -> list[str]:
    replies = sorted(p[0] for p in pairs)
    cards = sorted(p[1] for p in pairs)

    def p99(values: list[float]) -> float:
        return values[math.ceil(0.99 * (len(values) - 1))]  # the high end, even of a few

    return [
        f"{label}: {len(pairs)} confirmations",
        "                                     median ms    p99 ms",
        f"  baseline: reply to the customer   {1000 * statistics.median(replies):9.0f} "
        f"{1000 * p99(replies):9.0f}",
        f"  card in the staff group           {1000 * statistics.median(cards):9.0f} "
        f"{1000 * p99(cards):9.0f}",
    ]


async def _run(
    settings: Settings, folder: Path, *, customers: int, burst: bool, limits: bool
) -> list[str]:
    from tests.support.botapi.double import TOKEN, BotApiDouble
    from tests.telegram.conftest import TgCustomer

    if limits:
        double = BotApiDouble()
    else:
        double = BotApiDouble(
            per_chat_rate=1e6, per_chat_burst=1e6, global_rate=1e6, group_per_minute=1e6
        )
    await double.start()
    double.add_group(STAFF_CHAT, "Support desk", forum=True)
    double.add_user(AGENT, "Ada", "en")
    name = "burst" if burst else "sequential"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=double.base_url,
        DATABASE_URL=f"sqlite:///{folder / (name + '.db')}",
        NLU_CACHE_DIR=str(settings.nlu_cache_dir),
        STAFF_CHAT_ID=str(STAFF_CHAT),
        AGENT_IDS=str(AGENT),
        DEFAULT_LANGUAGE="en",
        LOG_LEVEL="WARNING",
    )
    if not limits:
        env["TELEGRAM_MAX_RATE"] = "0"
    process = await _start(double, [sys.executable, "-m", "bot", "run"], env, folder / "bot.log")
    people: list[Any] = []
    pairs: list[tuple[float, float]] = []
    try:
        for index in range(customers):
            person = TgCustomer(double, cast(Any, _Bot(env)), 80_000 + index, f"C{index}", "en")
            people.append(person)
            await _to_read_back(person)
            if not burst:
                at, _ = _confirm(double, person)
                pairs.append(await _times(double, person, f"C{index}", at))
        if burst:
            pressed = [_confirm(double, person)[0] for person in people]
            pairs = [
                await _times(double, person, f"C{index}", at)
                for index, (person, at) in enumerate(zip(people, pressed, strict=True))
            ]
    finally:
        for person in people:
            person.close()
        await process.stop()
        await double.stop()
    if burst:
        label = f"burst: {customers} customers confirm at once, Telegram's limits on"
    else:
        label = "one at a time, limits lifted"
    return _summary(label, pairs)


async def run_handoff_bench(settings: Settings, *, customers: int, burst: int) -> str:
    try:
        import tests.support.botapi.double  # noqa: F401
    except ImportError as error:  # an installed package without the tests folder
        raise RuntimeError("run the hand-off bench from a checkout (needs tests/)") from error
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    folder = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    lines = await _run(settings, folder, customers=customers, burst=False, limits=False)
    if burst:
        lines += [""] + await _run(settings, folder, customers=burst, burst=True, limits=True)
    print(f"logs and databases: {folder}", file=sys.stderr)
    return "\n".join(["Hand-off bench: confirmation -> summary card", "", *lines])
