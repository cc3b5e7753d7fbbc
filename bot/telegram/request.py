"""python-telegram-bot's HTTP layer on aiohttp instead of httpx.

PTB talks to the Bot API through a :class:`telegram.request.BaseRequest`; its default
is httpx. Profiling the bot under load (docs/benchmarks.md) showed httpx and httpcore
spending more CPU per Bot API call than the rest of sending; aiohttp, already a
dependency (the webhook server, the remote NLU and action clients), does the same work
for less. Behaviour is PTB's: the same timeouts, ``TimedOut`` and ``NetworkError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData


class SendMark(Protocol):
    """How a reply is marked as on its way: after a crash, a reply on its way is not
    sent again (Telegram may have it), one that never left is."""

    def leaving(self) -> None:
        """The request's body is being written to the socket now."""

    def refused(self) -> None:
        """Telegram answered with an error: it does not have the message."""


ON_SEND: ContextVar[SendMark | None] = ContextVar("on_send", default=None)
"""The mark for the requests this task sends now (set around sending one reply)."""


class ReplyMark:
    """A stored message's Message.send_started_at, set as its request leaves, cleared if
    Telegram refuses it (a 429 to be retried, say). `sending` is Outbox.marking."""

    def __init__(self, sending: Callable[..., None], row_id: int) -> None:
        self.sending = sending
        self.row_id = row_id
        self.marked = False

    def leaving(self) -> None:
        if not self.marked:
            self.sending(self.row_id, on_its_way=True)
            self.marked = True

    def refused(self) -> None:
        if self.marked:
            self.sending(self.row_id, on_its_way=False)
            self.marked = False


class LeftProbe:
    """Whether a request left for Telegram without an answer: set around one call, so
    that after a network error the caller knows if trying again could send it twice.
    `then`: a mark set around the whole job (a row being posted) that hears the same."""

    def __init__(self, then: SendMark | None = None) -> None:
        self.left = False
        self.then = then

    def leaving(self) -> None:
        self.left = True
        if self.then is not None:
            self.then.leaving()

    def refused(self) -> None:
        self.left = False
        if self.then is not None:
            self.then.refused()


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        *,
        connection_pool_size: int = 32,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        on_flood: Callable[[], object] | None = None,
    ) -> None:
        self._on_flood = on_flood
        """Called on each 429 answer (counted in /metrics)."""
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """As PTB's, without its stack trace in the log for an answer that is not JSON:
        Telegram's front answers a 502 with an HTML page, as often as the bot asks while
        Telegram is away. The request fails as a NetworkError all the same."""
        try:
            parsed = json.loads(payload.decode("utf-8", "replace"))
        except ValueError as error:
            raise TelegramError("Invalid server response") from error
        if not isinstance(parsed, dict):
            raise TelegramError("Invalid server response")
        return parsed

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            tracing = aiohttp.TraceConfig()
            tracing.on_request_chunk_sent.append(_body_leaving)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                trace_configs=[tracing],
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

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
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        body: Any = fields
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        read = _value(read_timeout, self._read_timeout)
        pool = _value(pool_timeout, self._pool_timeout)
        connect = _value(connect_timeout, self._connect_timeout)
        write = _value(write_timeout, self._media_write_timeout if files else self._write_timeout)
        # aiohttp has no write timeout of its own: an upload gets write + read in total
        timeout = aiohttp.ClientTimeout(
            total=(write or 0) + (read or 0) if files and write and read else None,
            # aiohttp's connect is waiting for a free connection plus opening one
            connect=(pool or 0) + (connect or 0) or None,
            sock_connect=connect,
            sock_read=read,
        )
        mark = ON_SEND.get()
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                timeout=timeout,
                trace_request_ctx={"mark": mark} if mark is not None else None,
            ) as response:
                if mark is not None and response.status != 200:
                    mark.refused()
                if response.status == 429 and self._on_flood is not None:
                    self._on_flood()
                return response.status, await response.read()
        except TimeoutError as error:  # asyncio.TimeoutError is the same class on 3.11
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{error.__class__.__name__}: {error}") from error


async def _body_leaving(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    """aiohttp calls this just before it writes the body to the socket, with no await
    in between: the mark is set when the request is truly leaving (a request still
    waiting for a free connection has not left)."""
    hooks = context.trace_request_ctx
    if isinstance(hooks, dict) and hooks.get("mark") is not None:
        try:
            hooks["mark"].leaving()
        except Exception:  # the send goes on; only its crash-safety mark is missing
            logging.getLogger(__name__).exception("could not mark a reply as on its way")


def _value(given: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(given, DefaultValue) else given


def retry_seconds(value: Any) -> float:
    """A 429's retry_after as seconds (PTB gives an int or a timedelta)."""
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)
