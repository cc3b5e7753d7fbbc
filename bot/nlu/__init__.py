"""The triage brain: is this a complaint, what type, what motive, which facts, is it major.

:class:`NluService` is what the rest of the bot calls. It uses the embedded model
by default and a Rasa NLU server when `RASA_NLU_URL` is set.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import aiohttp

from bot.config import Settings
from bot.nlu.labels import Parse
from bot.nlu.model import TriageModel, load_or_train
from bot.nlu.remote import RasaNluClient, from_rasa

__all__ = ["NluService", "TriageModel", "load_or_train"]

BATCH = 256


class NluService:
    """One interface for both parsers; :meth:`parse` is async because the remote one is."""

    def __init__(self, settings: Settings, model: TriageModel | None = None) -> None:
        self.settings = settings
        self._model = model
        self._remote = RasaNluClient(settings.rasa_nlu_url) if settings.rasa_nlu_url else None
        self._session: aiohttp.ClientSession | None = None
        # The encoder's forward pass takes milliseconds of CPU per message: it runs in
        # one worker thread, so the event loop keeps serving other customers meanwhile.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu")

    @property
    def model(self) -> TriageModel:
        """The embedded model, trained or loaded from its cache on first use."""
        if self._model is None:
            self._model = load_or_train(
                self.settings.nlu_data_dir,
                self.settings.nlu_cache_dir,
                default_language=self.settings.default_language,
            )
        return self._model

    async def parse(self, text: str, *, today: date | None = None) -> Parse:
        if self._remote is None:
            model = self.model
            loop = asyncio.get_running_loop()
            parse = functools.partial(model.parse, text, today=today)
            return await loop.run_in_executor(self._executor, parse)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        answer = await self._remote.parse(self._session, text)
        return from_rasa(
            answer,
            text,
            extractor=self.model.extractor,
            default_language=self.settings.default_language,
            today=today,
        )

    async def parse_in_turn(self, text: str, *, today: date | None = None) -> Parse:
        """Parse inside a turn's database transaction: the embedded model runs right here,
        on the event loop, instead of in the worker thread. Giving the loop away while
        the transaction holds SQLite's write lock lets another turn reach its first
        write, which then waits for that lock *in the loop thread*, so this turn can
        never finish: the kill -9 test with 200 customers stalled that way."""
        if self._remote is None:
            return self.model.parse(text, today=today)
        return await self.parse(text, today=today)

    async def parse_many(self, texts: Sequence[str], *, today: date | None = None) -> list[Parse]:
        """Parse in order; the embedded model in batches of ``BATCH`` to bound memory."""
        if self._remote is None:
            model = self.model
            loop = asyncio.get_running_loop()
            results: list[Parse] = []
            for start in range(0, len(texts), BATCH):
                chunk = list(texts[start : start + BATCH])
                parse = functools.partial(model.parse_batch, chunk, today=today)
                results.extend(await loop.run_in_executor(self._executor, parse))
            return results
        return list(await asyncio.gather(*(self.parse(text, today=today) for text in texts)))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
