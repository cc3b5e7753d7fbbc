"""When customers wait, the replies go first (BEHIND in bot/telegram/app.py): while a
customer's replies leave more than a second after their update arrived (on average), an
old keyboard that was pressed is left in place instead of being edited away, and it is
edited again once replies are prompt. (A press on the latest keyboard continues that
message in one edit, which costs no more than a new message: test_merge.py.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.store.models import InboundUpdate, utcnow
from bot.telegram.intake import Inbox
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import BotProcess, transcript

HEADPHONES = "my headphones from order SO20241105123 stopped working, no sound at all"


def _edits(double: BotApiDouble) -> int:
    return sum(1 for method, _ in double.requests if method.startswith("editMessage"))


async def test_a_bot_behind_telegram_skips_the_keyboard_edit(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    anna = customers(501, "Anna", "en")
    double.slow(501, 3.0)  # each reply takes 3 s to leave: the bot is behind
    slow = await anna.say("hello") + await anna.say(HEADPHONES)
    assert len(slow) >= 2, "two slow turns put the average over a second"
    assert anna.keyboard == ["Yes, that's right", "Not quite"]
    old = next(m for m in reversed(double.sent_to(501)) if m.get("reply_markup"))
    yes = old["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await anna.say("hmm")  # the question is asked again: the first keyboard is now old
    double.slow(501, 0.0)
    # a press on the old keyboard is answered as expired, and while behind the old
    # keyboard is not edited away (an extra request the replies would wait for)
    before = len(double.sent_to(501))
    double.user_presses(501, old["message_id"], yes)
    await double.wait_for(lambda: len(double.sent_to(501)) > before, 30, "the expired press")
    await asyncio.sleep(0.5)
    assert _edits(double) == 0
    assert double.messages[(501, old["message_id"])].get("reply_markup")
    # replies leave promptly again: an old keyboard pressed now is edited away
    for _ in range(6):
        if _edits(double):
            break
        before = len(double.sent_to(501))
        double.user_presses(501, old["message_id"], yes)
        await double.wait_for(lambda n=before: len(double.sent_to(501)) > n, 30, "expired")
        await asyncio.sleep(0.5)
    assert _edits(double) == 1
    assert not double.messages[(501, old["message_id"])].get("reply_markup")


async def test_a_press_that_waited_too_long_is_handled_without_an_answer(
    double: BotApiDouble, customers: Any, bot: BotProcess
) -> None:
    """Telegram refuses answerCallbackQuery about 15 s after the press ("query is too
    old"). A press that waited longer in the inbox (here: stored 30 s before the bot got
    to it) is handled as usual, without the answer Telegram would only refuse."""
    anna = customers(502, "Anna", "en")
    await anna.say(HEADPHONES)
    assert anna.keyboard == ["Yes, that's right", "Not quite"]
    await bot.stop()
    question = next(m for m in reversed(double.sent_to(502)) if m.get("reply_markup"))
    yes = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    query = double.user_presses(502, question["message_id"], yes)
    press = double.queued[-1]
    Inbox(anna.db).store([press])
    with anna.db.session() as session:
        row = session.get(InboundUpdate, press["update_id"])
        assert row is not None
        row.received_at = utcnow() - timedelta(seconds=30)
        session.add(row)
        session.commit()
    before = len(double.requests)
    await bot.start(double)
    await double.wait_for(
        lambda: any(
            method in ("sendMessage", "editMessageText") and str(sent.get("chat_id")) == "502"
            for method, sent in double.requests[before:]
        ),
        30,
        "the press handled",
    )
    await asyncio.sleep(1)
    pressed = [m.text for m in transcript(anna.db)[502] if m.direction == "in"]
    assert pressed[-1] == "Yes, that's right"  # handled as a press of that button
    assert double.callbacks[query]["answered"] is False
    assert [m for m, _, _ in double.errors if m == "answerCallbackQuery"] == []
