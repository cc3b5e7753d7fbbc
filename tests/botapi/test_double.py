"""The double answers like Telegram: spec violations, formatting, edits, flood limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.botapi.double import TOKEN, BotApiDouble, Bucket


@pytest.fixture
async def api() -> AsyncIterator[tuple[BotApiDouble, Any]]:
    double = BotApiDouble(per_chat_rate=1.0, per_chat_burst=2.0)
    double.add_user(8, "Ben")  # chat 8: the flood test; chat 7: generous limits
    double.buckets[7] = Bucket(100.0, 100.0)
    await double.start()
    double.add_user(7, "Ann")
    async with aiohttp.ClientSession() as session:

        async def call(method: str, **params: Any) -> tuple[int, dict[str, Any]]:
            url = f"{double.base_url}{TOKEN}/{method}"
            async with session.post(url, json=params) as response:
                return response.status, await response.json()

        yield double, call
    await double.stop()


async def test_a_good_call_is_answered_and_recorded(api: Any) -> None:
    double, call = api
    status, body = await call(
        "sendMessage", chat_id=7, text="<b>hi</b> &amp; bye", parse_mode="HTML"
    )
    assert status == 200 and body["ok"]
    assert body["result"]["text"] == "hi & bye"
    assert double.violations == []


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"chat_id": 7}, "Bad Request: sendMessage: missing required parameter 'text'"),
        (
            {"chat_id": 7, "text": "x", "colour": "red"},
            "Bad Request: sendMessage: unknown parameter 'colour'",
        ),
        ({"chat_id": "seven", "text": "x"}, None),
        ({"chat_id": 7, "text": "x" * 4097}, "Bad Request: message is too long"),
        ({"chat_id": 7, "text": "   "}, "Bad Request: message text is empty"),
        ({"chat_id": 7, "text": "<x>hi</x>", "parse_mode": "HTML"}, None),
        ({"chat_id": 7, "text": "a & b", "parse_mode": "HTML"}, None),
        ({"chat_id": 99, "text": "x"}, "Bad Request: chat not found"),
        (
            {
                "chat_id": 7,
                "text": "x",
                "reply_markup": {"inline_keyboard": [[{"text": "b", "callback_data": "d" * 65}]]},
            },
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    ],
)
async def test_bad_calls_get_telegrams_answer(
    api: Any, params: dict[str, Any], description: str | None
) -> None:
    _, call = api
    status, body = await call("sendMessage", **params)
    assert status == 400 and body["ok"] is False and body["error_code"] == 400
    if description:
        assert body["description"] == description
    else:
        assert body["description"].startswith("Bad Request: ")


async def test_spec_violations_are_kept_for_the_test_to_fail_on(api: Any) -> None:
    double, call = api
    await call("sendMessage", chat_id=7, text="x", colour="red")
    await call(
        "sendMessage", chat_id=7, text="x", reply_markup={"inline_keyboard": [[{"txt": "b"}]]}
    )
    assert len(double.violations) == 2
    assert "InlineKeyboardButton has no field 'txt'" in double.violations[1]
    status, _ = await call("sendMesage", chat_id=7, text="x")
    assert status == 404


async def test_editing_follows_telegrams_rules(api: Any) -> None:
    _, call = api
    _, sent = await call("sendMessage", chat_id=7, text="hello")
    message_id = sent["result"]["message_id"]
    status, body = await call("editMessageText", chat_id=7, message_id=message_id, text="hello")
    assert body["description"].startswith("Bad Request: message is not modified")
    status, body = await call("editMessageText", chat_id=7, message_id=999, text="x")
    assert body["description"] == "Bad Request: message to edit not found"
    status, body = await call("editMessageText", chat_id=7, message_id=message_id, text="bye")
    assert status == 200 and body["result"]["text"] == "bye"


async def test_flooding_a_chat_gets_429_with_retry_after(api: Any) -> None:
    _, call = api
    answers = [await call("sendMessage", chat_id=8, text=f"m{i}") for i in range(4)]
    assert [status for status, _ in answers[:2]] == [200, 200]
    status, body = answers[2]
    assert status == 429 and body["parameters"]["retry_after"] >= 1
    assert body["description"].startswith("Too Many Requests: retry after")


async def test_callback_queries_are_answered_once(api: Any) -> None:
    double, call = api
    _, sent = await call(
        "sendMessage",
        chat_id=7,
        text="pick",
        reply_markup=json.dumps({"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]}),
    )
    query = double.user_presses(7, sent["result"]["message_id"], "a")
    assert (await call("answerCallbackQuery", callback_query_id=query))[0] == 200
    status, body = await call("answerCallbackQuery", callback_query_id=query)
    assert status == 400 and "query is too old" in body["description"]


async def test_long_polling_returns_injected_updates_and_confirms_offsets(api: Any) -> None:
    double, call = api
    sent = double.user_sends(7, "hello")
    _, body = await call("getUpdates", timeout=1)
    assert [u["message"]["text"] for u in body["result"]] == ["hello"]
    _, body = await call("getUpdates", offset=sent["update_id"] + 1, timeout=0)
    assert body["result"] == []
