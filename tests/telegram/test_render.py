"""Replies as Telegram messages: the 4,096 limit, escaping, keyboards."""

from __future__ import annotations

import pytest

from bot.dialogue import Button
from bot.telegram.render import escape, keyboard, split_text


def test_short_text_is_one_piece() -> None:
    assert split_text("hello") == ["hello"]


def test_long_text_is_cut_at_sentence_or_line_boundaries() -> None:
    text = "This is one sentence. " * 400  # 8,800 characters
    pieces = split_text(text)
    assert all(len(piece) <= 4096 for piece in pieces)
    assert all(piece.rstrip().endswith(".") for piece in pieces)
    assert " ".join(pieces).split() == text.split()  # nothing lost


def test_text_without_spaces_is_still_cut() -> None:
    pieces = split_text("字" * 9000)
    assert [len(p) for p in pieces] == [4096, 4096, 808]


def test_customer_markup_is_escaped() -> None:
    assert escape("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"


def test_keyboards_one_per_row_or_two_for_many_short_ones() -> None:
    two = keyboard([Button("Yes", "confirm:yes"), Button("Not quite", "confirm:no")])
    assert two is not None and [len(row) for row in two.inline_keyboard] == [1, 1]
    six = keyboard([Button(f"Option {i}", f"slot:x={i}") for i in range(6)])
    assert six is not None and [len(row) for row in six.inline_keyboard] == [2, 2, 2]
    assert keyboard([]) is None


def test_callback_data_over_64_bytes_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        keyboard([Button("x", "slot:" + "y" * 70)])
