"""`nlu bench`: training time, parse latency p50/p99, parses per second and memory.

The chosen model is measured beside a baseline (character n-grams only) in the same
run, on the same machine and texts, so the figures compare like with like.
"""

from __future__ import annotations

import gc
import pickle
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bot.nlu.data import load_training_data
from bot.nlu.model import ModelConfig, TriageModel

VARIANTS: dict[str, ModelConfig] = {
    "default": ModelConfig(),
    "chars-only": ModelConfig(use_words=False),
    "words-only": ModelConfig(use_chars=False),
    "unweighted": ModelConfig(class_weight_power=0.0),
    "logreg": ModelConfig(classifier="logreg", c=10.0),
    "c0.5": ModelConfig(c=0.5),
    "c0.2": ModelConfig(c=0.2),
    "chars-2-5": ModelConfig(char_ngrams=(2, 5)),
    "signals-0.5": ModelConfig(signal_threshold=0.5),
    "signals-0.7": ModelConfig(signal_threshold=0.7),
    "signals-0.9": ModelConfig(signal_threshold=0.9),
    "signals-0.95": ModelConfig(signal_threshold=0.95),
}


@dataclass
class BenchFigures:
    name: str
    training_seconds: float
    p50_ms: float
    p99_ms: float
    single_per_second: float
    batch_per_second: float
    model_mib: float


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(name: str, config: ModelConfig, data_dir: Path, texts: list[str]) -> BenchFigures:
    data = load_training_data(data_dir)
    gc.collect()
    started = time.perf_counter()
    model = TriageModel.train(data, config)
    training = time.perf_counter() - started
    model.parse(texts[0])  # warm caches (jieba dictionary, regexes)
    latencies = []
    for text in texts:
        started = time.perf_counter()
        model.parse(text)
        latencies.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    model.parse_batch(texts)
    batch = len(texts) / (time.perf_counter() - started)
    size = len(pickle.dumps(model)) / 2**20
    return BenchFigures(
        name=name,
        training_seconds=training,
        p50_ms=statistics.median(latencies),
        p99_ms=_percentile(latencies, 0.99),
        single_per_second=1000 / statistics.fmean(latencies),
        batch_per_second=batch,
        model_mib=size,
    )


def run_bench(data_dir: Path, texts: list[str], variants: list[str]) -> str:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [measure(name, VARIANTS[name], data_dir, texts) for name in variants]
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    header = (
        f"{'model':<12}{'train s':>9}{'p50 ms':>9}{'p99 ms':>9}{'parse/s':>10}"
        f"{'batch/s':>10}{'model MiB':>11}"
    )
    lines = [f"texts: {len(texts)} (single parses, then one batch)", header]
    for row in rows:
        lines.append(
            f"{row.name:<12}{row.training_seconds:>9.2f}{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}"
            f"{row.single_per_second:>10.0f}{row.batch_per_second:>10.0f}{row.model_mib:>11.1f}"
        )
    lines.append(f"peak RSS: {rss_after:.0f} MiB (before training: {rss_before:.0f} MiB)")
    return "\n".join(lines)
