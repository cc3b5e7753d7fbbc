"""PTB's HTTP layer on aiohttp: uploads, timeouts and network errors as PTB reports them."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.telegram.request import AiohttpRequest
from tests.support.botapi.double import TOKEN, BotApiDouble


async def test_a_file_upload_goes_as_multipart_and_the_double_accepts_it() -> None:
    double = BotApiDouble()
    await double.start()
    double.add_user(42, "Anna")
    bot = Bot(TOKEN, base_url=double.base_url, request=AiohttpRequest())
    try:
        async with bot:
            sent = await bot.send_document(
                42, document=b"order SO1 receipt", filename="receipt.txt", caption="<b>x</b>"
            )
            me = await bot.get_me()
    finally:
        await double.stop()
    assert sent.document is not None and sent.caption == "<b>x</b>"
    assert me.is_bot
    assert double.violations == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_nobody_listening_is_a_network_error() -> None:
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp"):
            await request.do_request(f"http://127.0.0.1:{_free_port()}/botX/getMe", "POST")
    finally:
        await request.shutdown()


async def test_a_server_too_slow_to_answer_is_timed_out() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.do_request(f"http://127.0.0.1:{port}/botX/getMe", "POST")
    finally:
        await request.shutdown()
        await runner.cleanup()
