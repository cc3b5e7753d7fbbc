"""Named model settings: `nlu eval --variant NAME` and `nlu test --variant NAME` score
one (trained and cached in NLU_CACHE_DIR like the default), and `python -m benchmarks
--nlu` times them. The comparisons in docs/nlu.md were made with these."""

from __future__ import annotations

from bot.nlu.model import ModelConfig

VARIANTS: dict[str, ModelConfig] = {
    "default": ModelConfig(),
    # The encoder comparison (docs/nlu.md): TF-IDF alone (the model before the encoder,
    # with its class weights), each encoder alone, each encoder beside TF-IDF.
    "tfidf": ModelConfig(encoder="none", class_weight_power=0.5),
    "e5-only": ModelConfig(use_chars=False, use_words=False),
    "use-only": ModelConfig(encoder="use", use_chars=False, use_words=False),
    "use+tfidf": ModelConfig(encoder="use"),
    "e5-weight-2": ModelConfig(encoder_weight=2.0),
    "e5-balance-0.75": ModelConfig(class_weight_power=0.75),
    "signals-per-language": ModelConfig(signals_per_language=True),
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
