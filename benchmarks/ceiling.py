"""How far can this representation go on real text? `python -m benchmarks.ceiling FILE.jsonl …`

For labelled files in the `nlu eval` format (docs/nlu.md), per language and axis
(complaint or not, type, motive), the macro-F1 of three throwaway linear models on the
shipped features (e5 embedding beside TF-IDF, the same as the model's):

- **ours**: trained on nlu_data/ only, as it ships (calibrated SVM, the intent model for
  complaint or not): the figures of `nlu eval`;
- **in-domain only**: 5-fold cross-validation on the labelled rows themselves;
- **ours + in-domain**: nlu_data/ plus the other four folds, each counted three times.

The last two are an estimate of the ceiling: what the same features and classifier reach
when they are shown texts of the very kind they are scored on. Nothing is saved and the
shipped model never sees these texts (the development set must not be trained on); the
folds exist only in this process. Scoring follows `nlu eval`: motive over labels with at
least 8 rows in the language, `unspecified` left out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, vstack
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from bot.config import PROJECT_ROOT
from bot.nlu.data import load_training_data
from bot.nlu.encoder import EmbeddingCache, SentenceEncoder
from bot.nlu.labels import COMPLAINT_TYPES, MOTIVES, NO_MOTIVE
from bot.nlu.model import ModelConfig, _fit, _join, _tfidf, _vectorizer, intent_label
from bot.nlu.text import normalise

FOLDS = 5
IN_DOMAIN_WEIGHT = 3


def _rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    return rows


def _predict(model: Any, matrix: Any) -> np.ndarray:
    """The most likely label; never `unspecified`, which a parse never gives either."""
    classes = list(model.classes_)
    allowed = [i for i, label in enumerate(classes) if label != NO_MOTIVE]
    best = np.argmax(model.predict_proba(matrix)[:, allowed], axis=1)
    return np.asarray(classes, dtype=object)[np.asarray(allowed)[best]]


def _axes() -> dict[str, tuple[str, Any]]:
    """Axis -> (row key, how a training example's label reads on that axis)."""
    return {
        "complaint": ("is_complaint", intent_label),
        "type": ("complaint_type", lambda e: e.label if e.axis == "complaint_type" else None),
        "motive": ("motive", lambda e: e.label if e.axis == "motive" else None),
    }


def _scored(axis: str, gold: np.ndarray) -> list[str]:
    if axis == "complaint":
        return ["True", "False"]
    if axis == "type":
        return [label for label in COMPLAINT_TYPES if label in set(gold)]
    counts = Counter(gold)
    return [label for label in MOTIVES if counts[label] >= 8]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceiling", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    cache = Path(os.environ.get("NLU_CACHE_DIR") or PROJECT_ROOT / ".cache" / "nlu")
    data = load_training_data(PROJECT_ROOT / "nlu_data")
    encoder = SentenceEncoder("e5")
    examples = data.examples
    texts = [example.text for example in examples]
    config = ModelConfig()
    vectorizer = _vectorizer(config)
    ours = _join(
        _tfidf(vectorizer, [normalise(text) for text in texts], fit=True),
        EmbeddingCache(cache, encoder).embed(texts),
        1.0,
    )
    rows = _rows(args.files)
    theirs: csr_matrix = _join(
        _tfidf(vectorizer, [normalise(row["text"]) for row in rows]),
        encoder.embed([row["text"] for row in rows]),
        1.0,
    )
    print(
        f"{'lang':5} {'axis':10} {'rows':>5} {'ours':>7} {'in-domain':>10} {'ours+in-domain':>15}"
    )
    for axis, (key, label_of) in _axes().items():
        labelled = [(i, label_of(e)) for i, e in enumerate(examples)]
        train = [i for i, label in labelled if label is not None]
        train_labels = [label for _, label in labelled if label is not None]
        shipped = _fit(ours[train], train_labels, config)
        if axis == "complaint":  # in-domain rows say complaint or not: so do the mixes
            train_labels = [str(label == "complain") for label in train_labels]
        for language in ("zh", "en"):
            chosen = np.array(
                [j for j, row in enumerate(rows) if row.get("lang") == language and key in row]
            )
            if len(chosen) < FOLDS * 2:
                continue
            gold = np.array([str(rows[j][key]) for j in chosen])
            labels = _scored(axis, gold)
            alone = np.empty(len(chosen), dtype=object)
            mixed = np.empty(len(chosen), dtype=object)
            folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
            counts = Counter(gold)
            strata = np.array([g if counts[g] >= FOLDS else "rare" for g in gold])
            for fit, held in folds.split(chosen, strata):
                model = _fit(theirs[chosen[fit]], list(gold[fit]), config)
                alone[held] = _predict(model, theirs[chosen[held]])
                both = vstack([ours[train]] + [theirs[chosen[fit]]] * IN_DOMAIN_WEIGHT)
                model = _fit(both, train_labels + list(gold[fit]) * IN_DOMAIN_WEIGHT, config)
                mixed[held] = _predict(model, theirs[chosen[held]])
            shipped_predictions = _predict(shipped, theirs[chosen])
            if axis == "complaint":
                shipped_predictions = np.array([str(p == "complain") for p in shipped_predictions])
            keep = np.isin(gold, labels)
            scores = [
                f1_score(gold[keep], np.asarray(p)[keep], labels=labels, average="macro",
                         zero_division=0)
                for p in (shipped_predictions, alone, mixed)
            ]  # fmt: skip
            print(
                f"{language:5} {axis:10} {int(keep.sum()):5d} {scores[0]:7.3f} "
                f"{scores[1]:10.3f} {scores[2]:15.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
