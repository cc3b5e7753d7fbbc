"""The bot's wording: response files per language, with variations and button labels.

``responses/<lang>.yml`` holds ``responses`` (key -> list of variations, Rasa's
shape) and ``labels`` (button and summary words). Code names a response; the file
says it. Variations rotate per customer so a returning customer reads a new one.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

RESPONSES_DIR = Path(__file__).parent / "responses"
LANGUAGES = ("zh", "en")


class ResponseError(KeyError):
    """A response or label the code asks for is missing from a language file."""


@dataclass(frozen=True)
class LanguagePack:
    responses: dict[str, tuple[str, ...]]
    labels: dict[str, str]


class Responses:
    def __init__(self, directory: Path = RESPONSES_DIR) -> None:
        self.packs = {lang: _load(directory / f"{lang}.yml") for lang in LANGUAGES}

    def variations(self, key: str, language: str) -> tuple[str, ...]:
        try:
            return self.packs[language].responses[key]
        except KeyError:
            raise ResponseError(f"no response {key!r} in {language}.yml") from None

    def render(self, key: str, language: str, rotation: dict[str, Any], **values: Any) -> str:
        """One variation, the one after the variation this customer saw last."""
        options = self.variations(key, language)
        last = rotation.get(key)
        index = 0 if last is None else (int(last) + 1) % len(options)
        rotation[key] = index
        return options[index].format(**values)

    def label(self, key: str, language: str, **values: Any) -> str:
        try:
            text = self.packs[language].labels[key]
        except KeyError:
            raise ResponseError(f"no label {key!r} in {language}.yml") from None
        return text.format(**values) if values else text

    def has_label(self, key: str, language: str) -> bool:
        return key in self.packs[language].labels

    def label_or(self, key: str, language: str, fallback: str) -> str:
        """The label, or ``fallback`` (e.g. the customer's own words) where there is none."""
        return self.packs[language].labels.get(key, fallback)

    def duration(self, seconds: int, language: str) -> str:
        """2 hours / 2小时: the largest whole unit."""
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds >= size and seconds % size == 0:
                count = seconds // size
                if count == 1:
                    return self.label(f"unit.{unit}", language)
                return self.label(f"unit.{unit}s", language, n=count)
        return self.label("unit.minutes", language, n=max(1, round(seconds / 60)))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@cache
def _load(path: Path) -> LanguagePack:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    responses = {
        key: tuple(str(item["text"]) for item in items)
        for key, items in (raw.get("responses") or {}).items()
    }
    labels = {str(key): str(value) for key, value in (raw.get("labels") or {}).items()}
    return LanguagePack(responses=responses, labels=labels)
