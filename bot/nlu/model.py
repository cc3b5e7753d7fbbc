"""The embedded triage classifier: intent, complaint type, motive and signals in one model.

Features are a pretrained multilingual sentence encoder's embedding (what the text
means, in words our examples never used: bot/nlu/encoder.py) joined with TF-IDF
character n-grams (robust to typos, unsegmented Chinese and mixed scripts) and word
uni/bi-grams (jieba words for Chinese). Each axis is a linear SVM with
sigmoid-calibrated probabilities, usable as confidences. Signals are one-vs-rest
classifiers, backed by key phrases and regexes in nlu_data/.

Why this module is over 400 lines: training, parsing, the calibrated arithmetic and the
cache are one model's life cycle, and the pickled classes must keep this module path
(the caches on disk name it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import pickle
import re
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from scipy.sparse import csr_matrix, hstack
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import LinearSVC
from sklearn.utils.parallel import Parallel, delayed

from bot.nlu.data import Example, TrainingData, fingerprint, load_training_data
from bot.nlu.encoder import EmbeddingCache, SentenceEncoder
from bot.nlu.entities import EntityExtractor
from bot.nlu.labels import (
    COMPLAIN,
    COMPLAINT_TYPES,
    DIALOGUE_INTENTS,
    LANGUAGES,
    MOTIVES,
    SIGNALS,
    Parse,
    Ranked,
)
from bot.nlu.text import detect_language, normalise, words

MODEL_VERSION = "6"
_LETTERS = re.compile(r"[A-Za-z\u3400-\u4dbf\u4e00-\u9fff]")
_ONE_LETTER_RUN = re.compile(r"([A-Za-z])\1+")
""""xxx", "aaa": a key held down, not a word (the data masks dates as XX/XX/XXXX)."""


def _is_word(token: str) -> bool:
    return bool(_LETTERS.search(token)) and not _ONE_LETTER_RUN.fullmatch(token)


def word_ngrams(text: str) -> list[str]:
    """Word unigrams and bigrams of an already normalised text (module level: picklable)."""
    tokens = words(text)
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


@dataclass(frozen=True)
class ModelConfig:
    """Knobs compared in docs/nlu.md; the defaults are the chosen ones."""

    char_ngrams: tuple[int, int] = (1, 4)
    use_words: bool = True
    use_chars: bool = True
    classifier: str = "svm"  # "svm": calibrated linear SVM; "logreg": logistic regression
    c: float = 1.0
    class_weight_power: float = 0.5
    signal_class_weight_power: float = 0.5  # a signal's few positives: more weight, more alarms
    signal_threshold: float = 0.9
    encoder: str = "e5"  # sentence embeddings beside the TF-IDF features: "e5", "use", "none"
    encoder_weight: float = 1.0  # the embedding's scale beside the TF-IDF rows (unit norm each)
    signals_per_language: bool = False  # measured: more false alarms, same recall (docs/nlu.md)


def _vectorizer(config: ModelConfig) -> FeatureUnion | None:
    """The TF-IDF part; None when the model reads the embedding alone (a variant)."""
    parts: list[tuple[str, Any]] = []
    if config.use_chars:
        parts.append((
            "chars",
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=config.char_ngrams, sublinear_tf=True,
                min_df=1, lowercase=False, dtype=np.float32,
            ),
        ))  # fmt: skip
    if config.use_words:
        parts.append((
            "words",
            TfidfVectorizer(
                analyzer=word_ngrams, sublinear_tf=True, min_df=1, lowercase=False, dtype=np.float32
            ),
        ))  # fmt: skip
    return FeatureUnion(parts) if parts else None


def _tfidf(vectorizer: FeatureUnion | None, texts: list[str], *, fit: bool = False) -> Any:
    if vectorizer is None:
        return csr_matrix((len(texts), 0), dtype=np.float32)
    return vectorizer.fit_transform(texts) if fit else vectorizer.transform(texts)


def _sample_weights(labels: Sequence[str], power: float) -> np.ndarray:
    """Soften class imbalance: weight = (n / (k * n_class)) ** power."""
    counts = Counter(labels)
    total, classes = len(labels), len(counts)
    return np.array([(total / (classes * counts[label])) ** power for label in labels])


@dataclass
class CalibratedLinear:
    """A fitted, sigmoid-calibrated linear SVM reduced to its arithmetic.

    Gives the probabilities of ``CalibratedClassifierCV(ensemble=False).predict_proba``
    (same formula: decision values, one Platt sigmoid per class, normalised) without
    sklearn's input validation on every call, which was most of the time of parsing
    one short message (seven classifiers, each validated twice).
    """

    classes_: np.ndarray
    weights: np.ndarray  # (n_features, k)
    intercept: np.ndarray  # (k,)
    slope: np.ndarray  # Platt's a, (k,)
    offset: np.ndarray  # Platt's b, (k,)
    columns: np.ndarray  # the class each decision column calibrates

    @classmethod
    def from_sklearn(cls, fitted: CalibratedClassifierCV) -> CalibratedLinear:
        calibrated = fitted.calibrated_classifiers_[0]
        svm = calibrated.estimator
        classes = np.asarray(calibrated.classes)
        positions = LabelEncoder().fit(classes).transform(svm.classes_)
        k = svm.coef_.shape[0]
        columns = positions[:k] + (1 if len(classes) == 2 else 0)
        return cls(
            classes_=classes,
            weights=np.ascontiguousarray(svm.coef_.T, dtype=np.float32),
            intercept=np.asarray(svm.intercept_, dtype=np.float64),
            slope=np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64),
            offset=np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64),
            columns=np.asarray(columns),
        )

    def predict_proba(self, matrix: Any) -> np.ndarray:
        decision = np.asarray(matrix @ self.weights, dtype=np.float64) + self.intercept
        calibrated = expit(-(self.slope * decision + self.offset))
        n_classes = len(self.classes_)
        proba = np.zeros((decision.shape[0], n_classes))
        proba[:, self.columns] = calibrated
        if n_classes == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            total = proba.sum(axis=1, keepdims=True)
            uniform = np.full_like(proba, 1 / n_classes)
            proba = np.divide(proba, total, out=uniform, where=total != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba


Classifier: TypeAlias = CalibratedLinear | LogisticRegression


def _fit(features: csr_matrix, labels: Sequence[str], config: ModelConfig) -> Classifier:
    """A linear SVM with sigmoid-calibrated probabilities (fast on 100k+ sparse features),
    or a logistic regression (slower to train here, kept for comparison)."""
    weights = _sample_weights(labels, config.class_weight_power)
    if config.classifier == "logreg":
        logreg = LogisticRegression(C=config.c, max_iter=3000)
        logreg.fit(features, labels, sample_weight=weights)
        return logreg
    folds = min(3, *Counter(labels).values())
    svm = CalibratedClassifierCV(
        LinearSVC(C=config.c, random_state=0), method="sigmoid", cv=folds, ensemble=False
    )
    svm.fit(features, labels, sample_weight=weights)
    return CalibratedLinear.from_sklearn(svm)


def _lexicon_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _term_pattern(terms: Sequence[str], patterns: Sequence[str] = ()) -> re.Pattern[str] | None:
    """Key phrases (Latin ones as whole words) and regexes, as one pattern on lower-cased text."""
    parts = []
    for term in sorted(
        {_lexicon_text(term) for term in terms if term.strip()}, key=len, reverse=True
    ):
        escaped = re.escape(term)
        parts.append(rf"(?<![a-z]){escaped}(?![a-z])" if re.search("[a-z]", term) else escaped)
    parts.extend(f"(?:{pattern})" for pattern in patterns)
    return re.compile("|".join(parts)) if parts else None


ALSO = {"threat_of_harm": ("self_harm",)}
"""Key-phrase lists that raise a signal besides its own: self-harm is a threat of harm."""


def key_phrases(data: TrainingData, *names: str) -> re.Pattern[str] | None:
    """The key phrases (`lookup: <name>_terms`) and shapes (`regex: <name>_pattern`) of
    nlu_data/ for these names, as one pattern on lower-cased text."""
    terms = [term for name in names for term in data.lookups.get(f"{name}_terms", [])]
    patterns = [pattern for name in names for pattern in data.regexes.get(f"{name}_pattern", [])]
    return _term_pattern(terms, patterns)


@functools.cache
def _harm_lists(root: Path) -> tuple[re.Pattern[str] | None, ...]:
    """Self-harm key phrases, threat-to-others key phrases (without the self-harm ones)
    and self-harm hints, from nlu_data/ (~0.3 s, once a process)."""
    data = load_training_data(root)
    hints = _term_pattern(data.lookups.get("self_harm_hints", []))
    return key_phrases(data, "self_harm"), key_phrases(data, "threat_of_harm"), hints


def says_self_harm(text: str, root: Path) -> bool:
    """Whether a message that raised threat_of_harm is about the customer hurting
    themselves, so the dialogue answers with care rather than as to a threat: a self-harm
    key phrase (`self_harm_terms`) says so; failing that, a phrase of despair
    (`self_harm_hints`: "can't go on", "goodbye forever", 撑不下去) does, unless a threat to
    others is named (`threat_of_harm_terms`). The hints raise no signal themselves: "I
    can't go on like this" alone is a complaint. Read from the data folder, so it holds
    with a remote NLU."""
    own, others, hints = _harm_lists(root)
    lexicon = _lexicon_text(text)
    if own is not None and own.search(lexicon):
        return True
    if others is not None and others.search(lexicon):
        return False
    return bool(hints and hints.search(lexicon))


def intent_label(example: Example) -> str:
    """Complaint types, motives and signals are all examples of the `complain` intent."""
    return example.label if example.axis == "intent" else COMPLAIN


def _join(tfidf: Any, dense: np.ndarray | None, weight: float) -> csr_matrix:
    """TF-IDF rows (unit norm per part) beside the embedding scaled by ``weight``."""
    if dense is None:
        return csr_matrix(tfidf)
    return csr_matrix(hstack([tfidf, csr_matrix(dense * weight)], format="csr"))


@dataclass
class TriageModel:
    """A trained model. Build with :meth:`train` or :func:`load_or_train`."""

    config: ModelConfig
    vectorizer: FeatureUnion | None
    intent: Classifier
    complaint_type: Classifier
    motive: Classifier
    signals: dict[str, dict[str, Classifier]]  # language -> signal -> classifier
    signal_terms: dict[str, re.Pattern[str] | None]
    extractor: EntityExtractor
    known_words: frozenset[str]
    fingerprint: str = ""
    training_seconds: float = 0.0
    default_language: str = "zh"
    encoder: SentenceEncoder | None = None
    embeddings: EmbeddingCache | None = None
    """The training texts' vectors while training and evaluating; not pickled."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["embeddings"] = None
        return state

    @classmethod
    def train(
        cls,
        data: TrainingData,
        config: ModelConfig | None = None,
        *,
        default_language: str = "zh",
        embeddings: EmbeddingCache | None = None,
    ) -> TriageModel:
        """Fit every axis on ``data``. With the encoder on, the texts' vectors come from
        ``embeddings`` (a cache on disk) or, without one, are computed here."""
        config = config or ModelConfig()
        started = time.perf_counter()
        examples = data.examples
        texts = [normalise(example.text) for example in examples]
        vectorizer = _vectorizer(config)
        tfidf = _tfidf(vectorizer, texts, fit=True)
        encoder: SentenceEncoder | None = None
        dense: np.ndarray | None = None
        if config.encoder != "none":
            encoder = (
                embeddings.encoder if embeddings is not None else SentenceEncoder(config.encoder)
            )
            raw = [example.text for example in examples]
            dense = embeddings.embed(raw) if embeddings is not None else encoder.embed(raw)
        matrix = _join(tfidf, dense, config.encoder_weight)

        def rows(axis: str) -> list[int]:
            return [index for index, example in enumerate(examples) if example.axis == axis]

        type_rows, motive_rows = rows("complaint_type"), rows("motive")
        jobs: list[tuple[csr_matrix, list[str]]] = [
            (matrix, [intent_label(example) for example in examples]),
            (matrix[type_rows], [examples[i].label for i in type_rows]),
            (matrix[motive_rows], [examples[i].label for i in motive_rows]),
        ]
        # Signals for both languages at once, or one model per language (a variant:
        # on the blind signal sets it raised more false alarms for the same recall).
        signal_languages = LANGUAGES if config.signals_per_language else ("*",)
        for language in signal_languages:
            chosen = [
                index
                for index, example in enumerate(examples)
                if language == "*" or example.language == language
            ]
            for signal in SIGNALS:
                flags = [
                    "yes" if examples[i].axis == "signal" and examples[i].label == signal else "no"
                    for i in chosen
                ]
                jobs.append((matrix[chosen], flags))
        # The axes are independent; liblinear releases the GIL, so threads use every core.
        signal_config = replace(config, class_weight_power=config.signal_class_weight_power)
        fitted = Parallel(n_jobs=-1, prefer="threads")(
            delayed(_fit)(features, labels, config if index < 3 else signal_config)
            for index, (features, labels) in enumerate(jobs)
        )
        intent, complaint_type, motive = fitted[:3]
        signals: dict[str, dict[str, Classifier]] = {}
        rest = iter(fitted[3:])
        for language in signal_languages:
            signals[language] = {signal: next(rest) for signal in SIGNALS}
        signal_terms = {
            signal: key_phrases(data, *ALSO.get(signal, ()), signal) for signal in SIGNALS
        }
        known = frozenset(token for text in texts for token in words(text) if _is_word(token))
        return cls(
            config=config,
            vectorizer=vectorizer,
            intent=intent,
            complaint_type=complaint_type,
            motive=motive,
            signals=signals,
            signal_terms=signal_terms,
            extractor=EntityExtractor.from_training_data(data),
            known_words=known,
            fingerprint=data.fingerprint,
            training_seconds=time.perf_counter() - started,
            default_language=default_language,
            encoder=encoder,
            embeddings=embeddings if encoder is not None else None,
        )

    def parse(self, text: str, *, today: date | None = None) -> Parse:
        return self.parse_batch([text], today=today)[0]

    def features(self, texts: Sequence[str]) -> csr_matrix:
        """The classifiers' input for raw texts (TF-IDF, and the embedding when on)."""
        tfidf = _tfidf(self.vectorizer, [normalise(text) for text in texts])
        dense = None
        if self.embeddings is not None:
            dense = self.embeddings.embed(texts)
        elif self.encoder is not None:
            dense = self.encoder.embed(texts)
        return _join(tfidf, dense, self.config.encoder_weight)

    def parse_batch(self, texts: Sequence[str], *, today: date | None = None) -> list[Parse]:
        """Parse many texts at once (one matrix product per axis)."""
        today = today or date.today()
        cleaned = [text if isinstance(text, str) else "" for text in texts]
        normalised = [normalise(text) for text in cleaned]
        matrix = self.features(cleaned)
        axes = {
            "intent": self._probabilities(self.intent, matrix, DIALOGUE_INTENTS),
            "complaint_type": self._probabilities(self.complaint_type, matrix, COMPLAINT_TYPES),
            "motive": self._probabilities(self.motive, matrix, MOTIVES),
        }
        signal_scores = {
            language: {
                name: classifier.predict_proba(matrix)[:, list(classifier.classes_).index("yes")]
                for name, classifier in models.items()
            }
            for language, models in self.signals.items()
        }
        results: list[Parse] = []
        for row, (text, norm) in enumerate(zip(cleaned, normalised, strict=True)):
            evidence = any(token in self.known_words for token in words(norm))
            language, language_confidence = detect_language(text, self.default_language)
            ranked = {
                axis: _rank(probs[row], labels, evidence) for axis, (probs, labels) in axes.items()
            }
            lexicon = _lexicon_text(text)
            by_language = signal_scores.get(language) or next(iter(signal_scores.values()))
            fired = []
            scores = {}
            phrases = []
            for signal in SIGNALS:
                score = float(by_language[signal][row]) if evidence else 0.0
                pattern = self.signal_terms.get(signal)
                matched = bool(pattern and pattern.search(lexicon))
                scores[signal] = round(max(score, 0.95 if matched else 0.0), 4)
                if matched:
                    phrases.append(signal)
                if matched or score >= self.config.signal_threshold:
                    fired.append(signal)
            results.append({
                "text": text,
                "language": language,
                "language_confidence": language_confidence,
                "intent": ranked["intent"][0],
                "intent_ranking": ranked["intent"],
                "complaint_type": ranked["complaint_type"][0],
                "complaint_type_ranking": ranked["complaint_type"][:3],
                "motive": ranked["motive"][0],
                "motive_ranking": ranked["motive"][:3],
                "entities": [entity.as_dict() for entity in self.extractor.extract(text, today)],
                "signals": fired,
                "signal_scores": scores,
                "signal_phrases": phrases,
            })  # fmt: skip
        return results

    @staticmethod
    def _probabilities(
        classifier: Classifier, matrix: Any, labels: Sequence[str]
    ) -> tuple[np.ndarray, Sequence[str]]:
        probabilities = classifier.predict_proba(matrix)
        order = [list(classifier.classes_).index(label) for label in labels]
        return probabilities[:, order], labels


def _rank(probabilities: np.ndarray, labels: Sequence[str], evidence: bool) -> list[Ranked]:
    """Labels by confidence.

    Without a single known word the model knows nothing: the confidence is uniform,
    the model's order is kept as the best guess.
    """
    uniform = 1.0 / len(labels)
    order = np.argsort(-probabilities, kind="stable")
    return [
        {
            "name": labels[i],
            "confidence": round(float(probabilities[i]) if evidence else uniform, 4),
        }
        for i in order
    ]


def cache_path(cache_dir: Path, fingerprint: str, config: ModelConfig) -> Path:
    """Stable across processes (unlike ``hash()``, which is salted per process)."""
    knobs = hashlib.sha256(repr(config).encode()).hexdigest()[:8]
    return cache_dir / f"triage-v{MODEL_VERSION}-{fingerprint}-{knobs}.pkl"


def embedding_cache(cache_dir: Path, config: ModelConfig) -> EmbeddingCache | None:
    """Where the training texts' vectors are kept for ``config`` (None: no encoder)."""
    if config.encoder == "none":
        return None
    return EmbeddingCache(cache_dir, SentenceEncoder(config.encoder))


def load_or_train(
    data_dir: Path,
    cache_dir: Path,
    config: ModelConfig | None = None,
    *,
    default_language: str = "zh",
    embeddings_dir: Path | None = None,
) -> TriageModel:
    """Load the model cached for this exact data, or train and cache it (atomically).

    The training texts' embeddings are kept in ``embeddings_dir`` (default: the cache
    folder), so a change to the data re-embeds only the texts that are new."""
    config = config or ModelConfig()
    data_hash = fingerprint(data_dir)  # hashing the files is enough on a cache hit
    path = cache_path(cache_dir, data_hash, config)
    cached = _load_cached(path, data_hash, default_language)
    if cached is not None:
        return cached
    # Several processes starting on a cold cache (web workers, test workers) train once:
    # the first holds the lock while it trains, the others then load what it wrote.
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache_dir / "train.lock"):
        cached = _load_cached(path, data_hash, default_language)
        if cached is not None:
            return cached
        return _train_and_cache(data_dir, cache_dir, path, config, default_language, embeddings_dir)


def _load_cached(path: Path, data_hash: str, default_language: str) -> TriageModel | None:
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            model = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None  # a stale or broken cache is rebuilt
    if not isinstance(model, TriageModel) or model.fingerprint != data_hash:
        return None
    model.default_language = default_language
    return model


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An advisory lock on a file (where the platform has one: fcntl)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: at worst two processes train the same model
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _train_and_cache(
    data_dir: Path,
    cache_dir: Path,
    path: Path,
    config: ModelConfig,
    default_language: str,
    embeddings_dir: Path | None,
) -> TriageModel:
    embeddings = embedding_cache(embeddings_dir or cache_dir, config)
    model = TriageModel.train(
        load_training_data(data_dir),
        config,
        default_language=default_language,
        embeddings=embeddings,
    )
    model.embeddings = None  # from here on it parses new texts: no cache on disk for those
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False, suffix=".tmp") as temporary:
        pickle.dump(model, temporary, protocol=pickle.HIGHEST_PROTOCOL)
    Path(temporary.name).replace(path)
    return model
