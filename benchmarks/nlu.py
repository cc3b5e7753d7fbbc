"""`python -m benchmarks --nlu`: training (cold and cached), start-up, parse latency, memory.

The chosen model is measured beside a baseline (TF-IDF alone, the model before the
encoder) in the same run, on the same machine and texts, so the figures compare like
with like.
"""

from __future__ import annotations

import gc
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.nlu.data import load_training_data
from bot.nlu.model import ModelConfig, TriageModel, embedding_cache, load_or_train
from bot.nlu.variants import VARIANTS


@dataclass
class BenchFigures:
    name: str
    cold_seconds: float  # training with no embedding cache (the first start on a machine)
    cached_seconds: float  # training again with the embeddings cached (a data change)
    startup_seconds: float  # a new process: load the cached model, parse one message
    startup_rss_mib: float  # that process's peak memory
    short_p50_ms: float
    short_p99_ms: float
    long_p50_ms: float
    long_p99_ms: float
    model_mib: float


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _latencies(model: TriageModel, texts: list[str]) -> tuple[float, float]:
    model.parse(texts[0])  # warm caches (jieba dictionary, regexes, the encoder)
    latencies = []
    for text in texts:
        started = time.perf_counter()
        model.parse(text)
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies), _percentile(latencies, 0.99)


_STARTUP = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from bot.nlu.variants import VARIANTS
from bot.nlu.model import load_or_train
model = load_or_train(Path(sys.argv[1]), Path(sys.argv[2]), VARIANTS[sys.argv[3]])
model.parse("你好，我的快递还没到")
seconds = time.perf_counter() - started
# VmHWM, not getrusage: ru_maxrss survives exec, so it would report the parent's size.
status = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]
print(seconds, int(status) / 1024)
"""


def _startup(data_dir: Path, cache: Path, name: str) -> tuple[float, float]:
    """Start-up as the bot does it, in a fresh interpreter: imports, the cached model, a parse."""
    answer = subprocess.run(
        [sys.executable, "-c", _STARTUP, str(data_dir), str(cache), name],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rss = answer.stdout.split()
    return float(seconds), float(rss)


def measure(
    name: str, config: ModelConfig, data_dir: Path, short: list[str], long: list[str]
) -> BenchFigures:
    data = load_training_data(data_dir)
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        gc.collect()
        started = time.perf_counter()
        load_or_train(data_dir, cache, config)  # cold: every text embedded
        cold = time.perf_counter() - started
        started = time.perf_counter()
        model = TriageModel.train(data, config, embeddings=embedding_cache(cache, config))
        cached = time.perf_counter() - started
        model.embeddings = None  # parse new texts as the bot does
        startup, rss = _startup(data_dir, cache, name)
    short_p50, short_p99 = _latencies(model, short)
    long_p50, long_p99 = _latencies(model, long)
    return BenchFigures(
        name=name,
        cold_seconds=cold,
        cached_seconds=cached,
        startup_seconds=startup,
        startup_rss_mib=rss,
        short_p50_ms=short_p50,
        short_p99_ms=short_p99,
        long_p50_ms=long_p50,
        long_p99_ms=long_p99,
        model_mib=len(pickle.dumps(model)) / 2**20,
    )


def bench_texts(data_dir: Path, count: int) -> tuple[list[str], list[str]]:
    """Short messages (the data's texts under 40 characters) and long ones (several
    examples of one language joined into a rant of 400-800 characters)."""
    data = load_training_data(data_dir)
    texts = [example.text for example in data.examples]
    short = [text for text in texts if len(text) < 40]
    short = short[:: max(1, len(short) // count)][:count]
    long: list[str] = []
    for language in ("zh", "en"):
        pool = [e.text for e in data.examples if e.language == language and len(e.text) > 30]
        step = max(1, len(pool) // count)
        rant: list[str] = []
        for text in pool[::step]:
            rant.append(text)
            if len(" ".join(rant)) >= 400:
                long.append(" ".join(rant)[:800])
                rant = []
    return short, long[::2][: count // 2] + long[1::2][: count // 2]


def run_bench(data_dir: Path, count: int, variants: list[str]) -> str:
    short, long = bench_texts(data_dir, count)
    rows = [measure(name, VARIANTS[name], data_dir, short, long) for name in variants]
    header = (
        f"{'model':<14}{'cold s':>8}{'cached s':>9}{'start s':>8}{'RSS MiB':>8}"
        f"{'short p50/p99 ms':>18}{'long p50/p99 ms':>17}{'model MiB':>10}"
    )
    lines = [
        f"texts: {len(short)} short (< 40 characters), {len(long)} long (400-800), one at a time",
        header,
    ]
    for row in rows:
        lines.append(
            f"{row.name:<14}{row.cold_seconds:>8.1f}{row.cached_seconds:>9.1f}"
            f"{row.startup_seconds:>8.1f}{row.startup_rss_mib:>8.0f}"
            f"{f'{row.short_p50_ms:.1f} / {row.short_p99_ms:.1f}':>18}"
            f"{f'{row.long_p50_ms:.1f} / {row.long_p99_ms:.1f}':>17}{row.model_mib:>10.1f}"
        )
    return "\n".join(lines)
