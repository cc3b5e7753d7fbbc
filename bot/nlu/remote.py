"""A Rasa NLU server as the parser (`RASA_NLU_URL`), through its `/model/parse` endpoint.

A Rasa model trained on nlu_data/ knows every label as an intent, so its ranking
is split back into our axes: the best dialogue intent (a type, motive or signal
label counts as `complain`), the best complaint type, the best motive, and every
signal above the threshold. Our entity extractor fills in what Rasa did not find.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import aiohttp

from bot.nlu.entities import EntityExtractor
from bot.nlu.labels import (
    AXIS_OF_LABEL,
    COMPLAIN,
    COMPLAINT_TYPES,
    DIALOGUE_INTENTS,
    MOTIVES,
    Parse,
    Ranked,
)
from bot.nlu.text import detect_language


class RasaNluError(RuntimeError):
    """The Rasa server did not give a usable answer."""


def _best(ranking: list[dict[str, Any]], labels: tuple[str, ...], fallback: str) -> Ranked:
    """The best-ranked label of one axis; ``fallback`` with no confidence when Rasa ranked none."""
    for item in ranking:
        if item.get("name") in labels:
            return {"name": item["name"], "confidence": float(item.get("confidence", 0.0))}
    return {"name": fallback, "confidence": 0.0}


def from_rasa(
    answer: dict[str, Any],
    text: str,
    *,
    extractor: EntityExtractor | None = None,
    default_language: str = "zh",
    signal_threshold: float = 0.3,
    today: date | None = None,
) -> Parse:
    """Map Rasa's parse answer onto our output contract."""
    ranking = list(answer.get("intent_ranking") or [])
    top = answer.get("intent") or {}
    if top.get("name") and not any(item.get("name") == top["name"] for item in ranking):
        ranking.insert(0, top)
    merged: dict[str, float] = {}
    for item in ranking:
        name = item.get("name")
        axis = AXIS_OF_LABEL.get(str(name))
        if axis is None:
            continue
        intent = name if axis == "intent" else COMPLAIN
        merged[intent] = merged.get(intent, 0.0) + float(item.get("confidence", 0.0))
    intent_ranking: list[Ranked] = [
        {"name": name, "confidence": round(min(confidence, 1.0), 4)}
        for name, confidence in sorted(merged.items(), key=lambda pair: -pair[1])
    ] or [{"name": DIALOGUE_INTENTS[0], "confidence": 0.0}]
    signals = [
        str(item["name"])
        for item in ranking
        if AXIS_OF_LABEL.get(str(item.get("name"))) == "signal"
        and float(item.get("confidence", 0.0)) >= signal_threshold
    ]
    signal_scores = {
        str(item["name"]): round(float(item.get("confidence", 0.0)), 4)
        for item in ranking
        if AXIS_OF_LABEL.get(str(item.get("name"))) == "signal"
    }
    entities = list(answer.get("entities") or [])
    if extractor is not None:
        taken = [(entity.get("start", -1), entity.get("end", -1)) for entity in entities]
        for entity in extractor.extract(text, today or date.today()):
            if all(entity.end <= start or end <= entity.start for start, end in taken):
                entities.append(entity.as_dict())
    language, confidence = detect_language(text, default_language)
    return {
        "text": text,
        "language": language,
        "language_confidence": confidence,
        "intent": intent_ranking[0],
        "intent_ranking": intent_ranking,
        "complaint_type": _best(ranking, COMPLAINT_TYPES, "other"),
        "motive": _best(ranking, MOTIVES, "explanation"),
        "entities": sorted(entities, key=lambda entity: entity.get("start", 0)),
        "signals": signals,
        "signal_scores": signal_scores,
        "signal_phrases": [],
    }


class RasaNluClient:
    """Posts texts to `<RASA_NLU_URL>/model/parse`."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/model/parse"
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def parse(self, session: aiohttp.ClientSession, text: str) -> dict[str, Any]:
        try:
            async with session.post(
                self.url, json={"text": text}, timeout=self.timeout
            ) as response:
                if response.status != 200:
                    body = (await response.text())[:200]
                    raise RasaNluError(f"{self.url} answered {response.status}: {body}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise RasaNluError(f"{self.url} is not reachable: {error}") from error
        if not isinstance(answer, dict):
            raise RasaNluError(f"{self.url} answered something that is not a parse result")
        return answer
