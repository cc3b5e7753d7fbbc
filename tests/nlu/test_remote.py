"""RASA_NLU_URL: a Rasa NLU server's /model/parse answer mapped onto our contract.

The server here is a local aiohttp app on 127.0.0.1 answering in Rasa's shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.nlu import NluService
from bot.nlu.model import TriageModel
from bot.nlu.remote import RasaNluError

RASA_ANSWER = {
    "text": "...",
    "intent": {"name": "delivery", "confidence": 0.62},
    "intent_ranking": [
        {"name": "delivery", "confidence": 0.62},
        {"name": "compensation", "confidence": 0.2},
        {"name": "repeat_contact", "confidence": 0.1},
        {"name": "greet", "confidence": 0.05},
        {"name": "nlu_fallback", "confidence": 0.03},
    ],
    "entities": [
        {
            "entity": "order_id",
            "value": "SO2024110588123",
            "start": 3,
            "end": 18,
            "extractor": "RegexEntityExtractor",
        }
    ],
}


@pytest.fixture
async def rasa_server() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def parse(request: web.Request) -> web.Response:
        body = await request.json()
        received.append(body)
        if body["text"] == "boom":
            return web.Response(status=500, text="model not loaded")
        return web.json_response({**RASA_ANSWER, "text": body["text"]})

    app = web.Application()
    app.router.add_post("/model/parse", parse)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, received
    await server.close()


async def test_rasa_answer_is_split_into_our_axes(
    rasa_server: tuple[TestServer, list[dict[str, Any]]], settings: Settings, model: TriageModel
) -> None:
    server, received = rasa_server
    remote = settings.model_copy(update={"rasa_nlu_url": str(server.make_url("/"))})
    service = NluService(remote, model=model)
    try:
        result = await service.parse("单号 SO2024110588123 的快递3天前就该到了")
    finally:
        await service.close()
    assert received == [{"text": "单号 SO2024110588123 的快递3天前就该到了"}]
    assert result["intent"] == {"name": "complain", "confidence": 0.92}
    assert result["complaint_type"] == {"name": "delivery", "confidence": 0.62}
    assert result["motive"] == {"name": "compensation", "confidence": 0.2}
    assert result["signals"] == []  # 0.1 is under the threshold
    assert result["language"] == "zh"
    assert [e["entity"] for e in result["entities"]] == ["order_id", "date"]  # date added by us


async def test_rasa_errors_are_reported(
    rasa_server: tuple[TestServer, list[dict[str, Any]]], settings: Settings, model: TriageModel
) -> None:
    server, _ = rasa_server
    service = NluService(
        settings.model_copy(update={"rasa_nlu_url": str(server.make_url("/"))}), model=model
    )
    try:
        with pytest.raises(RasaNluError, match="answered 500: model not loaded"):
            await service.parse("boom")
    finally:
        await service.close()


async def test_an_unreachable_rasa_server_is_reported(
    settings: Settings, model: TriageModel
) -> None:
    service = NluService(
        settings.model_copy(update={"rasa_nlu_url": "http://127.0.0.1:9"}), model=model
    )
    try:
        with pytest.raises(RasaNluError, match="not reachable"):
            await service.parse("hi")
    finally:
        await service.close()
