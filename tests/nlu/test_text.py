"""The one guesser from a Telegram language code to the bot's language."""

from __future__ import annotations

import pytest

from bot.nlu.text import language_of_code


@pytest.mark.parametrize(
    ("code", "default", "language"),
    [
        ("zh-hans", "en", "zh"),
        ("zh-TW", "en", "zh"),
        ("ZH", "en", "zh"),
        ("en", "zh", "en"),
        ("en-GB", "zh", "en"),
        ("fr", "zh", "zh"),  # neither: the desk's default language
        ("fr", "en", "en"),
        ("", "zh", "zh"),
        (None, "en", "en"),
    ],
)
def test_a_language_code_gives_chinese_english_or_the_default(
    code: str | None, default: str, language: str
) -> None:
    assert language_of_code(code, default) == language
