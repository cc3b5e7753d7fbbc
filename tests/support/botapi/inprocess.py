"""The Bot API double at python-telegram-bot's seam: a `BaseRequest` that hands each call
to :meth:`BotApiDouble.answer` in the same process, with no socket.

Like PTB's own offline test request, for unit tests of the parts that talk to Telegram
(the sender, the staff desk): a real `telegram.Bot` builds each call, the double checks
it against the Bot API spec, records it and answers as Telegram would (errors, 429s,
migrated groups, blocked users). What it does not do is the network: a refused
connection or a dropped answer is :meth:`go_down` / ``swallow_next``, raised here as
PTB's ``NetworkError``, and the at-most-once mark (``ON_SEND``) hears "leaving" as the
call is handed over, as the aiohttp request does when its body is written. Tests of
outages at the socket level (the HTTP server stopping mid-answer) use the HTTP double.
"""

from __future__ import annotations

import json
from typing import Any

from telegram._utils.types import ODVInput
from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

from bot.telegram.request import ON_SEND
from tests.support.botapi.double import BAD_GATEWAY_PAGE, BotApiDouble, Swallowed
from tests.support.botapi.spec import Upload


class InProcessRequest(BaseRequest):
    def __init__(self, double: BotApiDouble) -> None:
        self.double = double
        self.down = False
        """Connections refused (the in-process go_down): nothing reaches the double."""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        """Every call the bot made, answered or not: (method, parameters)."""

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        del method, read_timeout, write_timeout, connect_timeout, pool_timeout
        token, api_method = url.rsplit("/", 2)[-2:]
        params: dict[str, Any] = dict(request_data.json_parameters) if request_data else {}
        for name, (filename, content, _mimetype) in (
            request_data.multipart_data if request_data else {}
        ).items():
            data = content if isinstance(content, bytes) else content.read()
            params[name] = Upload(filename, data)
        for name, value in list(params.items()):  # attach://name: the part is the value
            if isinstance(value, str) and value.startswith("attach://"):
                target = value.removeprefix("attach://")
                if isinstance(params.get(target), Upload):
                    params[name] = params.pop(target)
        self.calls.append((api_method, params))
        if self.down:
            raise NetworkError("in-process Bot API double: connection refused")
        if token != f"bot{self.double.token}":
            return 401, b'{"ok": false, "error_code": 401, "description": "Unauthorized"}'
        mark = ON_SEND.get()
        if mark is not None:
            mark.leaving()
        if self.double.bad_gateway:
            self.double.errors.append((api_method, 502, "Bad Gateway"))
            if mark is not None:
                mark.refused()
            return 502, BAD_GATEWAY_PAGE.encode()
        try:
            status, body = await self.double.answer(api_method, params)
        except Swallowed as error:
            raise NetworkError("in-process Bot API double: connection dropped") from error
        if mark is not None and status != 200:
            mark.refused()
        return status, json.dumps(body).encode()
