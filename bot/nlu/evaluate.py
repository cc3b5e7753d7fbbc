"""`nlu test`: stratified cross-validation on nlu_data/ and a held-out set, as `rasa test nlu` does.

For every language and axis it writes per-label precision / recall / F1, the
confusion matrix and the misclassified examples to a results folder, and returns
a short summary for stdout.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sklearn.metrics import classification_report, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold

from bot.nlu.data import Example, TrainingData
from bot.nlu.encoder import EmbeddingCache
from bot.nlu.labels import (
    COMPLAIN,
    COMPLAINT_TYPES,
    DIALOGUE_INTENTS,
    LANGUAGES,
    MOTIVES,
    SIGNALS,
    Parse,
)
from bot.nlu.model import ModelConfig, TriageModel, intent_label

NOT_COMPLAINT = "not_complaint"


@dataclass
class AxisResult:
    """Gold and predicted labels of one axis in one language, with the texts for the error list.

    ``details`` holds, per row, extra fields for the error list (an id, a confidence...).
    """

    labels: tuple[str, ...]
    gold: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: str, gold: str, predicted: str, **details: Any) -> None:
        self.texts.append(text)
        self.gold.append(gold)
        self.predicted.append(predicted)
        self.details.append(details)

    def present(self) -> list[str]:
        """The labels scored: those of ``labels`` that occur in the gold, in that order."""
        return [label for label in self.labels if label in self.gold]

    def macro_f1(self) -> float:
        return float(
            f1_score(
                self.gold, self.predicted, labels=self.present(), average="macro", zero_division=0
            )
        )

    def confusion_pairs(self, top: int = 10) -> list[tuple[str, str, int]]:
        """The most frequent (gold, predicted, count) mistakes, most frequent first.

        Counted on every row, so a prediction outside ``labels`` is listed too.
        """
        pairs = Counter(
            (gold, predicted)
            for gold, predicted in zip(self.gold, self.predicted, strict=True)
            if gold != predicted
        )
        ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
        return [(gold, predicted, count) for (gold, predicted), count in ranked[:top]]

    def report(self) -> dict[str, Any]:
        present = self.present()
        return {
            "support": len(self.gold),
            "macro_f1": round(self.macro_f1(), 4),
            "per_label": classification_report(
                self.gold, self.predicted, labels=present, output_dict=True, zero_division=0
            ),
            "confusion_matrix": {
                "labels": present,
                "rows_gold_columns_predicted": confusion_matrix(
                    self.gold, self.predicted, labels=present
                ).tolist(),
            },
            "confusion_pairs": [
                {"gold": gold, "predicted": predicted, "count": count}
                for gold, predicted, count in self.confusion_pairs()
            ],
        }

    def errors(self) -> list[dict[str, Any]]:
        """The misclassified rows: ``id`` (when given) first, then text, gold, predicted."""
        rows = zip(self.texts, self.gold, self.predicted, self.details, strict=True)
        return [
            {
                **({"id": details["id"]} if "id" in details else {}),
                "text": text,
                "gold": gold,
                "predicted": predicted,
                **{key: value for key, value in details.items() if key != "id"},
            }
            for text, gold, predicted, details in rows
            if gold != predicted
        ]


Results = dict[str, dict[str, AxisResult]]  # language -> axis -> result


def _empty_results() -> Results:
    axes: dict[str, tuple[str, ...]] = {
        "complaint": (COMPLAIN, NOT_COMPLAINT),
        "intent": DIALOGUE_INTENTS,
        "complaint_type": COMPLAINT_TYPES,
        "motive": MOTIVES,
        **{f"signal:{name}": (name, "none") for name in SIGNALS},
    }
    return {
        language: {axis: AxisResult(labels) for axis, labels in axes.items()}
        for language in LANGUAGES
    }


def _score_examples(results: Results, examples: list[Example], parses: list[Parse]) -> None:
    for example, parse in zip(examples, parses, strict=True):
        axes = results[example.language]
        gold_intent = intent_label(example)
        predicted_intent = parse["intent"]["name"]
        axes["intent"].add(example.text, gold_intent, predicted_intent)
        axes["complaint"].add(
            example.text,
            COMPLAIN if gold_intent == COMPLAIN else NOT_COMPLAINT,
            COMPLAIN if predicted_intent == COMPLAIN else NOT_COMPLAINT,
        )
        if example.axis == "complaint_type":
            axes["complaint_type"].add(example.text, example.label, parse["complaint_type"]["name"])
        if example.axis == "motive" and example.label in MOTIVES:  # not the training-only one
            axes["motive"].add(example.text, example.label, parse["motive"]["name"])
        for signal in SIGNALS:
            gold = signal if example.axis == "signal" and example.label == signal else "none"
            predicted = signal if signal in parse["signals"] else "none"
            axes[f"signal:{signal}"].add(example.text, gold, predicted)


def cross_validate(
    data: TrainingData,
    config: ModelConfig | None = None,
    *,
    folds: int = 5,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
    embeddings: EmbeddingCache | None = None,
) -> Results:
    """Stratified k-fold over every example, stratified by language, axis and label.

    ``embeddings`` keeps the encoder's vectors between folds (each text is embedded once)."""
    results = _empty_results()
    examples = data.examples
    strata = [f"{e.language}|{e.axis}|{e.label}" for e in examples]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train_rows, test_rows) in enumerate(splitter.split(examples, strata), start=1):
        if progress:
            progress(f"fold {fold}/{folds}")
        subset = replace(data, examples=[examples[i] for i in train_rows])
        model = TriageModel.train(subset, config, embeddings=embeddings)
        held = [examples[i] for i in test_rows]
        _score_examples(results, held, model.parse_batch([e.text for e in held]))
    return results


def load_holdout(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """tests/nlu/holdout/<lang>.jsonl: texts written apart from nlu_data/, never trained on."""
    holdout: dict[str, list[dict[str, Any]]] = {}
    for language in LANGUAGES:
        path = folder / f"{language}.jsonl"
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            holdout[language] = [json.loads(line) for line in lines if line.strip()]
    return holdout


def evaluate_holdout(model: TriageModel, holdout: dict[str, list[dict[str, Any]]]) -> Results:
    results = _empty_results()
    for language, items in holdout.items():
        axes = results[language]
        parses = model.parse_batch([item["text"] for item in items])
        for item, parse in zip(items, parses, strict=True):
            text = item["text"]
            predicted_complaint = parse["intent"]["name"] == COMPLAIN
            axes["complaint"].add(
                text,
                COMPLAIN if item["complaint"] else NOT_COMPLAINT,
                COMPLAIN if predicted_complaint else NOT_COMPLAINT,
            )
            if item["complaint"] and item.get("complaint_type"):
                axes["complaint_type"].add(
                    text, item["complaint_type"], parse["complaint_type"]["name"]
                )
            if item["complaint"] and item.get("motive"):
                axes["motive"].add(text, item["motive"], parse["motive"]["name"])
            for signal in SIGNALS:
                gold = signal if signal in (item.get("signals") or []) else "none"
                axes[f"signal:{signal}"].add(
                    text, gold, signal if signal in parse["signals"] else "none"
                )
    return results


def write_results(results: Results, folder: Path) -> None:
    """Per language: <axis>.json (report and confusion matrix) and <axis>_errors.jsonl."""
    for language, axes in results.items():
        target = folder / language
        target.mkdir(parents=True, exist_ok=True)
        for axis, result in axes.items():
            if not result.gold:
                continue
            name = axis.replace(":", "_")
            (target / f"{name}.json").write_text(
                json.dumps(result.report(), ensure_ascii=False, indent=2), encoding="utf-8"
            )
            with (target / f"{name}_errors.jsonl").open("w", encoding="utf-8") as handle:
                for error in result.errors():
                    handle.write(json.dumps(error, ensure_ascii=False) + "\n")


def summary_rows(results: Results) -> Iterable[tuple[str, str, int, float]]:
    for language, axes in results.items():
        for axis, result in axes.items():
            if result.gold:
                yield language, axis, len(result.gold), result.macro_f1()


def format_summary(title: str, results: Results) -> str:
    lines = [title, f"{'lang':<5}{'axis':<24}{'n':>6}{'macro-F1':>10}"]
    for language, axis, support, score in summary_rows(results):
        lines.append(f"{language:<5}{axis:<24}{support:>6}{score:>10.3f}")
    return "\n".join(lines)
