"""Text normalisation, language detection and tokenisation for the classifier.

Chinese is segmented with jieba (words) and also seen as character n-grams, so a
misspelt or unknown word still shares features with the words around it.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from functools import lru_cache

import jieba

jieba.setLogLevel(logging.WARNING)

MAX_CLASSIFIED_CHARS = 2000
"""Long rants are classified on their first part; entities are still read from all of it."""

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_TAG = re.compile(r"<[^<>]{1,200}>")
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_DIGITS = re.compile(r"\d+")
_REPEAT = re.compile(r"(.)\1{3,}")
_TOKEN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|\d+|[^\w\s]")
_MODIFIER = re.compile("[\ufe0f\u200d\U0001f3fb-\U0001f3ff]")


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if category in {"Cc", "Cf", "Cs", "Co", "Cn"} and char not in "\n\t":
        return " "
    return char


def normalise(text: str) -> str:
    """Lower-case, NFKC (full-width to half-width), no control characters, no markup or URLs.

    Digits become `0` so order numbers and amounts share features; elongations
    (`sooooo`, `!!!!!!`) are cut to three.
    """
    text = unicodedata.normalize("NFKC", text[:MAX_CLASSIFIED_CHARS])
    text = "".join(_clean_char(char) for char in text)
    text = html.unescape(_TAG.sub(" ", text))
    text = _URL.sub(" url ", text)
    text = _MENTION.sub(" @user ", text)
    text = _MODIFIER.sub("", text)
    text = _DIGITS.sub("0", text.lower())
    text = _REPEAT.sub(r"\1\1\1", text)
    return " ".join(text.split())


def language_of_code(code: str | None, default: str) -> str:
    """The bot's language for a Telegram `language_code` (an IETF tag such as "zh-hans" or
    "en-GB"): Chinese or English when it says so, else `default` (DEFAULT_LANGUAGE).
    The one guesser from a code: the dialogue's first greeting, the "one moment" said
    while the database is away and the pointer from a group chat use it alike."""
    code = (code or "").lower()
    if code.startswith("zh"):
        return "zh"
    if code.startswith("en"):
        return "en"
    return default


def detect_language(text: str, default: str = "zh") -> tuple[str, float]:
    """Return ``("zh" | "en", confidence)``; mixed text goes to the dominant language.

    A Chinese word is about 1.5 characters: characters are weighed against Latin words so.
    """
    cjk = len(_CJK.findall(text)) / 1.5
    latin = len(_LATIN_WORD.findall(text))
    if cjk == 0 and latin == 0:
        return default, 0.0
    if cjk >= latin:
        return "zh", round(cjk / (cjk + latin), 3)
    return "en", round(latin / (cjk + latin), 3)


@lru_cache(maxsize=4096)
def _segment(chunk: str) -> tuple[str, ...]:
    return tuple(word for word in jieba.lcut(chunk, HMM=True) if word.strip())


def words(normalised: str) -> list[str]:
    """Word tokens: jieba words for Chinese runs, lower-case words for Latin, punctuation kept."""
    tokens: list[str] = []
    for token in _TOKEN.findall(normalised):
        if _CJK.match(token):
            tokens.extend(_segment(token))
        else:
            tokens.append(token)
    return tokens
