"""Answers to common questions (faq/<lang>.yml), matched by character n-gram similarity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from bot.nlu.text import normalise

FAQ_DIR = Path(__file__).parent / "faq"
THRESHOLD = 0.5
"""Cosine similarity to the nearest known phrasing below which nothing matches."""


@dataclass(frozen=True)
class Answer:
    topic: str
    text: str
    score: float


class _Index:
    def __init__(self, entries: list[dict[str, object]]) -> None:
        self.topics: list[str] = []
        phrasings: list[str] = []
        self.answers: dict[str, str] = {}
        for entry in entries:
            topic = str(entry["id"])
            self.answers[topic] = str(entry["answer"])
            for question in entry["questions"]:  # type: ignore[attr-defined]
                self.topics.append(topic)
                phrasings.append(normalise(str(question)))
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(phrasings)

    def best(self, text: str) -> Answer | None:
        scores = linear_kernel(self.vectorizer.transform([normalise(text)]), self.matrix)[0]
        index = int(scores.argmax())
        score = float(scores[index])
        if score < THRESHOLD:
            return None
        topic = self.topics[index]
        return Answer(topic=topic, text=self.answers[topic], score=score)


class Faq:
    def __init__(self, directory: Path = FAQ_DIR) -> None:
        self.indexes = {}
        for path in sorted(directory.glob("*.yml")):
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            self.indexes[path.stem] = _Index(list(raw["faq"]))

    def answer(self, text: str, language: str) -> Answer | None:
        index = self.indexes.get(language)
        return index.best(text) if index else None
