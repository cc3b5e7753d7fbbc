"""The sentence encoder: real embeddings from the bundled weights, cached per text."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.nlu import NluService
from bot.nlu.encoder import EmbeddingCache, SentenceEncoder
from bot.nlu.model import TriageModel

ENCODER = SentenceEncoder()


def test_texts_that_mean_the_same_are_closer_than_texts_that_do_not() -> None:
    """What TF-IDF cannot do: no shared word, and across languages."""
    heel, sole, refund, weather = ENCODER.embed([
        "the heel came off after two walks",
        "the soles of these boots are coming unglued",
        "I want my money back for this order",
        "what a lovely sunny afternoon in the park",
    ])  # fmt: skip
    assert np.allclose(np.linalg.norm([heel, sole, refund], axis=1), 1.0, atol=1e-3)
    assert heel @ sole > heel @ weather
    late_zh, late_en, broken_en = ENCODER.embed([
        "快递一个星期了还没送到",
        "my parcel still hasn't arrived after a week",
        "the screen cracked",
    ])  # fmt: skip
    assert late_zh @ late_en > late_zh @ broken_en


def test_a_text_embeds_the_same_alone_or_in_a_batch() -> None:
    texts = ["退钱", "my order never came and nobody answers", ""]
    together = ENCODER.embed(texts)
    alone = np.vstack([ENCODER.embed([text]) for text in texts])
    assert np.array_equal(together, alone)


def test_the_cache_embeds_each_text_once_and_survives_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.nlu.encoder")
    first = EmbeddingCache(tmp_path, ENCODER)
    vectors = first.embed(["the kettle leaks", "水壶漏水", "the kettle leaks"])
    assert vectors.shape == (3, ENCODER.dim)
    assert np.array_equal(vectors[0], vectors[2])
    assert "embedding 2 training texts" in caplog.text  # the repeated text is embedded once
    assert "embedded 2 of 2" in caplog.text  # progress, for a cold start that takes minutes
    caplog.clear()

    again = EmbeddingCache(tmp_path, ENCODER)  # a new process: read from disk
    more = again.embed(["水壶漏水", "a new line of data"])
    assert np.array_equal(more[0], vectors[1])
    assert "embedding 1 training texts" in caplog.text  # only the new text
    caplog.clear()
    assert np.array_equal(EmbeddingCache(tmp_path, ENCODER).embed(["a new line of data"]), more[1:])
    assert caplog.text == ""


def test_a_broken_cache_file_is_rebuilt(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, ENCODER)
    cache.path.write_bytes(b"not an npz file")
    assert EmbeddingCache(tmp_path, ENCODER).embed(["hello"]).shape == (1, ENCODER.dim)
    assert EmbeddingCache(tmp_path, ENCODER).embed(["hello"]).shape == (1, ENCODER.dim)


def test_the_pickled_model_carries_no_cache_and_loads_the_encoder_again(
    model: TriageModel,
) -> None:
    import pickle

    assert model.encoder is not None
    restored = pickle.loads(pickle.dumps(model))
    assert restored.embeddings is None
    assert restored.parse("我要退货")["intent"] == model.parse("我要退货")["intent"]


async def test_parsing_runs_off_the_event_loop(model: TriageModel) -> None:
    """The encoder's forward pass must not hold up other customers' updates."""
    service = NluService(Settings(_env_file=None), model=model)  # type: ignore[call-arg]
    threads: list[str] = []
    real = model.parse_batch

    def recording(texts, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(texts, **kwargs)

    model.parse_batch = recording  # type: ignore[method-assign]
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        running = asyncio.create_task(ticker())
        parsed = await service.parse("my parcel is late and nobody answers")
        many = await service.parse_many(["hi", "退钱"])
        running.cancel()
    finally:
        del model.parse_batch
    assert parsed["intent"]["name"] == "complain"
    assert [item["text"] for item in many] == ["hi", "退钱"]
    assert threads and all(name.startswith("nlu") for name in threads)
    assert ticks > 0  # the loop went on while the model worked
