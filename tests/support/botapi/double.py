"""A Bot API double: an aiohttp server on 127.0.0.1 that answers like Telegram.

The real bot (python-telegram-bot) talks to it over HTTP through
``TELEGRAM_API_BASE_URL``. Every request is checked against the official spec
(:mod:`tests.support.botapi.spec`); a violation is answered as Telegram answers it and kept in
:attr:`BotApiDouble.violations` so the test fails. Flood limits are enforced with 429
and ``retry_after``. Tests play the customers: :meth:`user_sends`, :meth:`user_presses`,
:meth:`user_edits`, and read what the bot sent from :attr:`outbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.botapi.html import EntityError, visible_text
from tests.support.botapi.spec import Upload, check_call, decode

TOKEN = "123456789:AAH-double-token-abcdefghijklmnopqrst"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "Complaint Desk",
    "username": "complaint_desk_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply "
    "markup are exactly the same as a current content and reply markup of the message"
)
WEBHOOK_RETRY = 0.5
"""Seconds before an update the webhook did not accept is posted again."""
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


BAD_GATEWAY_PAGE = "<html><head><title>502 Bad Gateway</title></head></html>"


class Swallowed(Exception):
    """The call was read and its connection is dropped: the bot never gets an answer."""


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


@dataclass
class Bucket:
    """A token bucket: ``rate`` per second, bursts up to ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """0 if allowed now, else seconds until it would be."""
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


SENDING = {
    "sendmessage", "sendphoto", "senddocument", "copymessage", "editmessagetext",
    "editmessagereplymarkup", "editmessagecaption", "forwardmessage",
}  # fmt: skip


class BotApiDouble:
    def __init__(
        self,
        *,
        token: str = TOKEN,
        per_chat_rate: float = 1.0,
        per_chat_burst: float = 5.0,
        global_rate: float = 30.0,
        group_per_minute: float = 20.0,
    ) -> None:
        self.token = token
        self.per_chat = (per_chat_rate, per_chat_burst)
        self.group_rate = group_per_minute / 60
        self.overall = Bucket(global_rate, global_rate)
        self.buckets: dict[int, Bucket] = {}
        self.violations: list[str] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[tuple[str, int, str]] = []
        self.chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.outbox: list[dict[str, Any]] = []
        self.callbacks: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.topics: dict[tuple[int, int], dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.chat_commands: dict[int, list[dict[str, Any]]] = {}
        """Commands set for one chat (BotCommandScopeChat), e.g. the agents' own menu."""
        self.webhook: dict[str, Any] = {}
        self.blocked: set[int] = set()
        self.not_started: set[int] = set()
        """Users who never opened a private chat with the bot (pressed Start)."""
        self.migrated: dict[int, int] = {}
        """Groups upgraded to a supergroup: old id -> new id (migrate_group)."""
        self.members: dict[tuple[int, int], str] = {}
        """(chat, user) -> status where it is not "member" (member_leaves)."""
        self.slow_chats: dict[int, tuple[float, float]] = {}
        """Chats whose requests Telegram answers only after so many seconds (slow)."""
        self.swallowing: set[int] = set()
        """Chats whose next sending request is read and then met with a dropped
        connection, no answer (swallow_next): the bot cannot tell whether it arrived."""
        self.allowed_updates: list[str] | None = None
        """As the bot last asked (getUpdates, setWebhook); None: Telegram's default."""
        self._updates: list[dict[str, Any]] = []
        self._jitter = random.Random(7)
        self._updates_seen: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._closed = asyncio.Event()
        """Set by stop(): a request held back (slow(), a long poll) is let go."""
        self._runner: web.AppRunner | None = None
        self._delivery: asyncio.Task[None] | None = None
        self.webhook_answers: list[tuple[int, int]] = []
        """(update_id, HTTP status the webhook answered; 0: no answer) per delivery."""
        self.port = 0
        self._site: web.TCPSite | None = None
        self.bad_gateway = False
        """Telegram's front answering 502 (an HTML page, as nginx does) to every call."""
        self._outage_armed: tuple[float, float] | None = None
        self._going_down: tuple[float, float] | None = None
        self.outage_task: asyncio.Task[None] | None = None
        self.outage_ended_at: float | None = None
        """time.monotonic() when the last outage ended (the API answered again)."""

    # --- server ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._site = site
        self._delivery = asyncio.create_task(self._deliver_forever())

    async def go_down(self) -> None:
        """The Bot API is unreachable: nothing listens on its port (connections are
        refused) and every open connection is dropped."""
        assert self._runner is not None and self._site is not None
        await self._site.stop()
        self._site = None
        server = self._runner.server
        assert server is not None
        await server.shutdown(0.05)

    async def come_back(self, *, bad_gateway: bool = False) -> None:
        """Listening again on the same port; with `bad_gateway`, answering 502 for now."""
        assert self._runner is not None and self._site is None
        self.bad_gateway = bad_gateway
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self._site = site

    def outage_after_next_delivery(self, refused: float, bad_gateway: float) -> None:
        """Right after the next getUpdates answer that carries updates, the API goes away:
        `refused` seconds of refused connections, then `bad_gateway` seconds of 502s."""
        self._outage_armed = (refused, bad_gateway)

    def outage_now(self, refused: float, bad_gateway: float) -> None:
        """The API goes away this moment, in the middle of whatever is in flight (a
        request being answered may never get its answer): `refused` seconds of refused
        connections, then `bad_gateway` seconds of 502s."""

        async def run() -> None:
            await self.go_down()
            await self._outage(refused, bad_gateway)

        self.outage_task = asyncio.create_task(run())

    async def end_outage(self) -> None:
        """The API answers again now (whatever the outage had left to run)."""
        if self.outage_task is not None:
            self.outage_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.outage_task
        if self._site is None:
            await self.come_back()
        self.bad_gateway = False
        self.outage_ended_at = time.monotonic()

    async def _outage(self, refused: float, bad_gateway: float) -> None:
        await asyncio.sleep(refused)
        await self.come_back(bad_gateway=True)
        await asyncio.sleep(bad_gateway)
        self.bad_gateway = False
        self.outage_ended_at = time.monotonic()

    async def stop(self) -> None:
        # A long poll or a request held back by slow() still open (the bot stopped or was
        # killed meanwhile) would hold the server's shutdown for its whole wait (10-30 s
        # per test): it is answered now.
        self._closed.set()
        self._new_update.set()
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
        if self._runner is not None:
            await self._runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return dict(request.query)
        kind = request.content_type
        if kind == "application/json":
            body = await request.read()
            return dict(json.loads(body)) if body else {}
        if kind == "multipart/form-data":
            params: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                if part.filename:  # type: ignore[union-attr]
                    data = await part.read()  # type: ignore[union-attr]
                    params[part.name or ""] = Upload(part.filename, bytes(data))  # type: ignore[union-attr]
                else:
                    params[part.name or ""] = await part.text()  # type: ignore[union-attr]
            # attach://name parameters point at a part: the part is the value.
            for name, value in list(params.items()):
                if isinstance(value, str) and value.startswith("attach://"):
                    target = value.removeprefix("attach://")
                    if isinstance(params.get(target), Upload):
                        params[name] = params.pop(target)
            return params
        return dict(await request.post())

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if self.bad_gateway:
            self.errors.append((method, 502, "Bad Gateway"))
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        try:
            status, body = await self.answer(method, await self._params(request))
        except Swallowed:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the bot
        response = web.json_response(body, status=status)
        if status == 200 and self._going_down is not None:
            await self._cut_off(request, response)
        return response

    async def answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One Bot API call as Telegram answers it: recorded, checked against the spec,
        handled; (HTTP status, JSON body). The HTTP server and the in-process request
        (tests/support/botapi/inprocess.py) both come here. Raises :class:`Swallowed`
        for a call whose connection is to drop with no answer (swallow_next)."""
        self.requests.append((method, params))
        problems = check_call(method, params)
        if problems and problems[0].startswith("unknown method"):
            self.violations.append(problems[0])
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        try:
            if problems:
                self.violations.extend(problems)
                raise ApiError(400, f"Bad Request: {problems[0]}")
            handler = getattr(self, f"_m_{method.lower()}", None)
            delay, jitter = self.slow_chats.get(_chat_id(params.get("chat_id")), (0.0, 0.0))
            delay = max(0.0, delay + self._jitter.uniform(-jitter, jitter))
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), delay)
            if method.lower() in SENDING:
                if _chat_id(params.get("chat_id")) in self.swallowing:
                    self.swallowing.discard(_chat_id(params.get("chat_id")))
                    self.errors.append((method, 0, "connection dropped, no answer"))
                    raise Swallowed
                self._flood(_chat_id(params.get("chat_id")))
            result = await handler(params) if handler else True
        except ApiError as error:
            self.errors.append((method, error.code, error.description))
            body: dict[str, Any] = {
                "ok": False,
                "error_code": error.code,
                "description": error.description,
            }
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            if error.migrate_to_chat_id is not None:
                body["parameters"] = {"migrate_to_chat_id": error.migrate_to_chat_id}
            return error.code, body
        return 200, {"ok": True, "result": result}

    async def _cut_off(self, request: web.Request, response: web.Response) -> None:
        """The start of an outage, as this answer leaves: nothing listens any more, idle
        connections are closed and this one closes after the answer, so whatever the bot
        sends next finds the port closed."""
        assert self._going_down is not None and self._site is not None
        refused, bad_gateway = self._going_down
        self._going_down = None
        response.force_close()
        await self._site.stop()
        self._site = None
        server = self._runner.server if self._runner is not None else None
        for connection in server.connections if server is not None else []:
            if connection is not request.protocol:
                connection.force_close()
        # The bot notices its idle connections closed before it reads this answer: what
        # it sends next opens a new connection, and is refused.
        await asyncio.sleep(0.3)
        self.outage_task = asyncio.create_task(self._outage(refused, bad_gateway))

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        data = self.files.get(path.rsplit("/", 1)[-1])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data)

    def _flood(self, chat_id: int) -> None:
        chat = self.chats.get(chat_id, {})
        wait = self.overall.take()
        if not wait:
            rate, burst = self.per_chat
            if chat.get("type") in ("group", "supergroup"):
                rate, burst = self.group_rate, 20.0
            bucket = self.buckets.setdefault(chat_id, Bucket(rate, burst))
            wait = bucket.take()
        if wait:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {seconds}", seconds)

    # --- what the tests do -------------------------------------------------------------

    def add_user(self, user_id: int, first_name: str, language_code: str = "en") -> None:
        self.users[user_id] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        self.chats[user_id] = {"id": user_id, "type": "private", "first_name": first_name}

    def add_group(self, chat_id: int, title: str, *, forum: bool = True) -> None:
        self.chats[chat_id] = {
            "id": chat_id,
            "type": "supergroup",
            "title": title,
            "is_forum": forum,
        }

    def _push(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **update})
        self._new_update.set()
        return update_id

    # --- webhook delivery (as Telegram: POST each update, again until a 2xx) ------------

    async def _deliver_forever(self) -> None:
        """While a webhook is set, pending updates are POSTed to it in order, up to
        max_connections at once but one at a time per chat (as Telegram's Bot API server
        queues webhook updates by chat); an answer other than 2xx (or none) is retried."""
        async with aiohttp.ClientSession() as session:
            in_flight: dict[int, asyncio.Task[None]] = {}
            while True:
                url = self.webhook.get("url")
                limit = int(self.webhook.get("max_connections") or 40)
                if url:
                    waiting: set[Any] = set()  # chats with an earlier update not yet taken
                    for update in list(self._updates):
                        if len(in_flight) >= limit:
                            break
                        queue = _queue_of(update)
                        if queue in waiting:
                            continue
                        waiting.add(queue)
                        if update["update_id"] not in in_flight:
                            in_flight[update["update_id"]] = asyncio.create_task(
                                self._post_update(session, url, update)
                            )
                for update_id, task in list(in_flight.items()):
                    if task.done():
                        del in_flight[update_id]
                await asyncio.sleep(0.01 if url else 0.1)

    async def _post_update(
        self, session: aiohttp.ClientSession, url: str, update: dict[str, Any]
    ) -> None:
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        body = {"update_id": update["update_id"], **_clean(update)}
        try:
            async with session.post(
                url, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            self.webhook_answers.append((update["update_id"], 0))
            self.webhook["last_error_message"] = str(error) or type(error).__name__
            await asyncio.sleep(WEBHOOK_RETRY)
            return
        self.webhook_answers.append((update["update_id"], status))
        if 200 <= status < 300:
            self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
            self._updates_seen = [*self._updates_seen[-500:], update]
        else:
            self.webhook["last_error_message"] = f"Wrong response from the webhook: {status}"
            await asyncio.sleep(WEBHOOK_RETRY)

    async def post_raw(self, body: bytes, secret: str | None) -> tuple[int, str]:
        """What an outsider (or a broken proxy) might POST to the bot's webhook URL."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.webhook["url"], data=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    def redeliver(self, update_id: int) -> None:
        """Telegram sometimes delivers an update again (e.g. after a timeout)."""
        for update in list(self._updates_seen):
            if update["update_id"] == update_id:
                self._updates.append(update)
                self._new_update.set()

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def user_sends(
        self,
        user_id: int,
        text: str | None = None,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        **media: Any,
    ) -> dict[str, Any]:
        """A user's message (text, or photo=/document=/contact=/voice=/... objects); in a
        group with ``chat_id``, in a forum topic with ``thread_id``."""
        chat = self.chats[chat_id if chat_id is not None else user_id]
        if chat["id"] == user_id:
            self.not_started.discard(user_id)  # writing to the bot opens the private chat
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": self.users[user_id],
        }
        if thread_id is not None:
            message.update(message_thread_id=thread_id, is_topic_message=True)
        if reply_to is not None:
            message["reply_to_message"] = _clean(self.messages[(chat["id"], reply_to)])
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        message.update(media)
        message["injected_at"] = time.monotonic()
        self.messages[(chat["id"], message["message_id"])] = message
        message["update_id"] = self._push({"message": message})
        return message

    def user_sends_photo(self, user_id: int, caption: str | None = None) -> dict[str, Any]:
        file_id = f"photo-{next(self._ids)}"
        self.files[file_id] = b"\x89PNG fake"
        photo = [
            {"file_id": file_id, "file_unique_id": f"u{file_id}", "width": 90, "height": 90},
            {
                "file_id": file_id + "-big",
                "file_unique_id": f"u{file_id}b",
                "width": 800,
                "height": 800,
            },
        ]
        extra: dict[str, Any] = {"photo": photo}
        if caption:
            extra["caption"] = caption
        return self.user_sends(user_id, **extra)

    def user_presses(
        self, user_id: int, message_id: int, data: str, *, chat_id: int | None = None
    ) -> str:
        """A tap on an inline button; returns the callback query id."""
        message = self.messages[(chat_id if chat_id is not None else user_id, message_id)]
        query_id = str(next(self._ids) * 7919)
        self.callbacks[query_id] = {"answered": False, "at": time.monotonic()}
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.users[user_id],
                    "message": message,
                    "chat_instance": f"ci{user_id}",
                    "data": data,
                }
            }
        )
        return query_id

    def user_edits(self, user_id: int, message_id: int, text: str) -> None:
        message = dict(self.messages[(user_id, message_id)])
        message.pop("update_id", None)
        message.update(text=text, edit_date=int(time.time()))
        self.messages[(user_id, message_id)] = message
        self._push({"edited_message": message})

    @property
    def queued(self) -> list[dict[str, Any]]:
        """Updates not yet fetched or acknowledged by the bot, oldest first."""
        return list(self._updates)

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat as they stand now (after edits), in order."""
        return [m for m in self.outbox if m["chat"]["id"] == chat_id]

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def wait_for_replies(
        self, chat_id: int, count: int, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        await self.wait_for(
            lambda: len(self.sent_to(chat_id)) >= count, timeout, f"{count} replies"
        )
        return self.sent_to(chat_id)

    # --- the methods -----------------------------------------------------------------------

    async def _m_getme(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_getupdates(self, params: dict[str, Any]) -> Any:
        if self.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if params.get("allowed_updates") is not None:
            self.allowed_updates = list(decode(params["allowed_updates"]))
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout and not self._closed.is_set():
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        batch = self._updates[:limit]
        self._updates_seen = [*self._updates_seen[-500:], *batch]
        if batch and self._outage_armed is not None:
            self._going_down, self._outage_armed = self._outage_armed, None
        return [{"update_id": u["update_id"], **_clean(u)} for u in batch]

    async def _m_setwebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {
            "url": params["url"],
            "secret_token": params.get("secret_token"),
            "max_connections": int(params.get("max_connections") or 40),
        }
        if params.get("allowed_updates") is not None:
            self.allowed_updates = list(decode(params["allowed_updates"]))
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {}
        if str(params.get("drop_pending_updates")).lower() == "true":
            self._updates.clear()
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
            **(
                {"last_error_message": self.webhook["last_error_message"]}
                if self.webhook.get("last_error_message")
                else {}
            ),
        }

    def slow(self, chat_id: int, seconds: float, jitter: float = 0.0) -> None:
        """Every request about this chat is answered only after `seconds` (0: at once
        again), as Telegram under load or a bot waiting for a group's minute budget.
        With `jitter`, each request waits `seconds` ± up to `jitter`, so two requests in
        flight at once may land in either order, as on the real network."""
        self.slow_chats[chat_id] = (seconds, jitter)

    def swallow_next(self, chat_id: int) -> None:
        """The next message the bot sends to this chat is read, and the connection drops
        before any answer: the request left, the message is not in the chat (the case of
        a network cut in the middle of a request)."""
        self.swallowing.add(chat_id)

    def never_started(self, user_id: int) -> None:
        """The user has not pressed Start in a private chat with the bot: Telegram refuses
        to let the bot write to them first (until they write to it)."""
        self.not_started.add(user_id)

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sending to them is forbidden from now on."""
        self.blocked.add(user_id)

    def migrate_group(self, old_id: int, new_id: int, *, announce: bool = True) -> None:
        """A group is upgraded to a supergroup (without topics) with a new id. Requests to
        the old id answer 400 with parameters.migrate_to_chat_id; the history moves with
        its message ids. ``announce``: the service messages Telegram then sends to the bot
        (migrate_to_chat_id in the old chat, migrate_from_chat_id in the new one); without,
        as for a bot that missed them."""
        old = self.chats[old_id]
        new = {"id": new_id, "type": "supergroup", "title": old.get("title", ""), "is_forum": False}
        self.chats[new_id] = new
        self.migrated[old_id] = new_id
        for (chat_id, message_id), message in list(self.messages.items()):
            if chat_id == old_id:
                self.messages[(new_id, message_id)] = {**message, "chat": new}
        self._message_ids[new_id] = self._message_ids.setdefault(old_id, itertools.count(1))
        if announce:
            for chat, key, value in (
                (old, "migrate_to_chat_id", new_id),
                (new, "migrate_from_chat_id", old_id),
            ):
                message = {
                    "message_id": self._next_message_id(chat["id"]),
                    "date": int(time.time()),
                    "chat": chat,
                    key: value,
                }
                message["update_id"] = self._push({"message": message})

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """A user deletes a forum topic, and its messages with it: requests to the topic
        answer 400 "message thread not found". Telegram tells the bot nothing."""
        del self.topics[(chat_id, thread_id)]
        for key, message in list(self.messages.items()):
            if key[0] == chat_id and message.get("message_thread_id") == thread_id:
                del self.messages[key]

    def member_leaves(self, chat_id: int, user_id: int) -> None:
        """A member leaves a group by themselves. Telegram sends a chat_member update (to a
        bot that asked for them in allowed_updates; it must be an admin there) and a
        service message with left_chat_member."""
        chat, user = self.chats[chat_id], self.users[user_id]
        self.members[(chat_id, user_id)] = "left"
        now = int(time.time())
        if "chat_member" in (self.allowed_updates or []):
            self._push(
                {
                    "chat_member": {
                        "chat": chat,
                        "from": user,
                        "date": now,
                        "old_chat_member": {"status": "member", "user": user},
                        "new_chat_member": {"status": "left", "user": user},
                    }
                }
            )
        message_id = self._next_message_id(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": now,
            "chat": chat,
            "from": user,
            "left_chat_member": user,
        }
        self.messages[(chat_id, message_id)] = message
        message["update_id"] = self._push({"message": message})

    async def _m_getchatmember(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        user = self.users.get(int(params["user_id"]))
        if user is None:
            raise ApiError(400, "Bad Request: user not found")
        status = self.members.get((chat["id"], user["id"]), "member")
        return {"status": status, "user": user} | ({"until_date": 0} if status == "kicked" else {})

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self.chats.get(_chat_id(params["chat_id"]))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat["id"] in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat["id"] in self.not_started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat["id"] in self.migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self.migrated[chat["id"]],
            )
        thread = params.get("message_thread_id")
        if thread is not None and (chat["id"], int(thread)) not in self.topics:
            raise ApiError(400, "Bad Request: message thread not found")
        return chat

    def _markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = decode(params.get("reply_markup"))
        if not markup:
            return None
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
        return dict(markup)

    def _text(self, params: dict[str, Any], key: str = "text", limit: int = 4096) -> str:
        raw = str(params.get(key) or "")
        if str(params.get("parse_mode") or "").upper() == "HTML":
            try:
                shown = visible_text(raw)
            except EntityError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        else:
            shown = raw
        if key == "text" and not shown.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(shown.encode("utf-16-le")) // 2 > limit:
            raise ApiError(
                400,
                "Bad Request: message is too long"
                if key == "text"
                else "Bad Request: message caption is too long",
            )
        return shown

    def _store(
        self, chat: dict[str, Any], params: dict[str, Any], **content: Any
    ) -> dict[str, Any]:
        message = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": BOT_USER,
            **content,
            "sent_at": time.monotonic(),
        }
        markup = self._markup(params)
        if markup:
            message["reply_markup"] = markup
        if params.get("message_thread_id") is not None:
            message["message_thread_id"] = int(params["message_thread_id"])
            message["is_topic_message"] = True
        self.messages[(chat["id"], message["message_id"])] = message
        self.outbox.append(message)
        return message

    async def _m_sendmessage(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        shown = self._text(params)
        message = self._store(chat, params, text=shown)
        message["raw_text"] = params["text"]
        return _clean(message)

    def _own_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        message = self.messages.get((chat["id"], int(params.get("message_id") or 0)))
        if message is None or message.get("from", {}).get("id") != BOT_USER["id"]:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    async def _m_editmessagetext(self, params: dict[str, Any]) -> Any:
        message = self._own_message(params)
        shown = self._text(params)
        markup = self._markup(params)
        if shown == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        message["text"] = shown
        message["raw_text"] = params["text"]
        message["edit_date"] = int(time.time())
        message["edited_at"] = time.monotonic()  # as sent_at: for measuring, never shown
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return _clean(message)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        message = self._own_message(params)
        markup = self._markup(params)
        if markup == message.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        message["edited_at"] = time.monotonic()
        return _clean(message)

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> Any:
        query = self.callbacks.get(str(params["callback_query_id"]))
        if query is None or query["answered"] or time.monotonic() - query["at"] > 15:
            raise ApiError(400, QUERY_TOO_OLD)
        query["answered"] = True
        query["text"] = params.get("text")
        return True

    async def _m_sendchataction(self, params: dict[str, Any]) -> Any:
        self._chat(params)
        return True

    async def _m_sendphoto(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        caption = self._text(params, "caption", 1024) if params.get("caption") else None
        file_id = params["photo"] if isinstance(params["photo"], str) else f"up-{next(self._ids)}"
        content: dict[str, Any] = {
            "photo": [
                {"file_id": file_id, "file_unique_id": "u" + file_id, "width": 800, "height": 800}
            ]
        }
        if caption:
            content["caption"] = caption
        return _clean(self._store(chat, params, **content))

    async def _m_senddocument(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        caption = self._text(params, "caption", 1024) if params.get("caption") else None
        file_id = (
            params["document"] if isinstance(params["document"], str) else f"up-{next(self._ids)}"
        )
        content: dict[str, Any] = {
            "document": {"file_id": file_id, "file_unique_id": "u" + file_id}
        }
        if caption:
            content["caption"] = caption
        return _clean(self._store(chat, params, **content))

    async def _m_copymessage(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        source = self.messages.get((int(decode(params["from_chat_id"])), int(params["message_id"])))
        if source is None:
            raise ApiError(400, "Bad Request: message to copy not found")
        content = {
            k: v
            for k, v in source.items()
            if k in ("text", "photo", "document", "caption", "voice", "sticker")
        }
        message = self._store(chat, params, **content)
        message["copied_from"] = (source["chat"]["id"], source["message_id"])
        return {"message_id": message["message_id"]}

    async def _m_getfile(self, params: dict[str, Any]) -> Any:
        file_id = str(params["file_id"])
        if file_id.removesuffix("-big") not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": 9,
            "file_path": f"photos/{file_id}",
        }

    async def _m_setmycommands(self, params: dict[str, Any]) -> Any:
        commands = decode(params["commands"])
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not (
                1 <= len(name) <= 32 and name == name.lower() and name.replace("_", "").isalnum()
            ):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        scope = decode(params["scope"]) if params.get("scope") else {"type": "default"}
        if scope.get("type") == "chat":
            if _chat_id(scope.get("chat_id")) in self.not_started:
                raise ApiError(400, "Bad Request: chat not found")  # no private chat yet
            self._chat({"chat_id": scope.get("chat_id")})  # 400 chat not found, as Telegram
            self.chat_commands[_chat_id(scope.get("chat_id"))] = list(commands)
            return True
        self.commands[str(params.get("language_code") or "")] = list(commands)
        return True

    async def _m_createforumtopic(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        if not chat.get("is_forum"):
            raise ApiError(400, "Bad Request: the chat is not a forum")
        thread = next(self._ids) + 1000
        topic = {"message_thread_id": thread, "name": params["name"], "icon_color": 7322096}
        self.topics[(chat["id"], thread)] = topic
        return topic

    def _topic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat({"chat_id": params["chat_id"]})
        topic = self.topics.get((chat["id"], int(params["message_thread_id"])))
        if topic is None:
            raise ApiError(400, "Bad Request: TOPIC_ID_INVALID")
        return topic

    async def _m_editforumtopic(self, params: dict[str, Any]) -> Any:
        topic = self._topic(params)
        if params.get("name"):
            topic["name"] = params["name"]
        return True

    async def _m_closeforumtopic(self, params: dict[str, Any]) -> Any:
        self._topic(params)["closed"] = True
        return True

    async def _m_reopenforumtopic(self, params: dict[str, Any]) -> Any:
        self._topic(params)["closed"] = False
        return True

    async def _m_deleteforumtopic(self, params: dict[str, Any]) -> Any:
        topic = self._topic(params)
        chat_id = int(decode(params["chat_id"]))
        del self.topics[(chat_id, topic["message_thread_id"])]
        return True

    async def _m_pinchatmessage(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        message = self.messages.get((chat["id"], int(params["message_id"])))
        if message is None:
            raise ApiError(400, "Bad Request: message to pin not found")
        message["pinned"] = True
        return True

    async def _m_unpinchatmessage(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params)
        if params.get("message_id") is not None:
            message = self.messages.get((chat["id"], int(params["message_id"])))
            if message is None:
                raise ApiError(400, "Bad Request: message to unpin not found")
            message["pinned"] = False
        return True


def _queue_of(update: dict[str, Any]) -> Any:
    """The chat an update belongs to, for per-chat delivery order (else its own id)."""
    for value in update.values():
        if isinstance(value, dict):
            for holder in (value, value.get("message")):
                if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
                    return holder["chat"].get("id")
            if isinstance(value.get("from"), dict):
                return value["from"].get("id")
    return ("update", update["update_id"])


def _chat_id(value: Any) -> int:
    """A numeric chat id; a @username or anything else matches no chat here."""
    try:
        return int(decode(value))
    except (TypeError, ValueError):
        return 0


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    """What goes over the wire: no bookkeeping keys."""
    hidden = {
        "update_id",
        "raw_text",
        "copied_from",
        "pinned",
        "sent_at",
        "edited_at",
        "injected_at",
    }
    out = {k: v for k, v in message.items() if k not in hidden}
    for key in ("message", "edited_message"):
        if key in out:
            out[key] = _clean(out[key])
    if "callback_query" in out:
        query = dict(out["callback_query"])
        query["message"] = _clean(query["message"])
        out["callback_query"] = query
    return out
