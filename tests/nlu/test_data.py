"""nlu_data/ itself: Rasa format, exact label names, enough varied examples, valid annotations."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.nlu.data import NluDataError, load_training_data, parse_annotated
from bot.nlu.labels import (
    COMPLAINT_TYPES,
    DIALOGUE_INTENTS,
    ENTITIES,
    LANGUAGES,
    MOTIVES,
    NO_MOTIVE,
    SIGNALS,
)
from tests.conftest import NLU_DATA

DATA = load_training_data(NLU_DATA)
MINIMUM = {
    **{label: 60 for label in (*COMPLAINT_TYPES, *MOTIVES, NO_MOTIVE)},
    **{label: 25 for label in DIALOGUE_INTENTS + SIGNALS},
}


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_file_is_rasa_nlu_yaml_3_1(language: str) -> None:
    files = sorted((NLU_DATA / language).glob("*.yml"))
    assert files, f"no data for {language}"
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert document["version"] == "3.1", path
        for item in document["nlu"]:
            assert {"intent", "regex", "lookup", "synonym"} & set(item), (path, item)
            assert isinstance(item["examples"], str), (path, item)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_label_has_its_minimum_of_examples(language: str) -> None:
    counts = Counter(example.label for example in DATA.examples if example.language == language)
    short = {label: counts[label] for label, minimum in MINIMUM.items() if counts[label] < minimum}
    assert not short, f"{language}: too few examples {short}"


def test_only_the_agreed_label_names_are_used() -> None:
    assert {example.label for example in DATA.examples} == set(MINIMUM)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_example_appears_twice(language: str) -> None:
    keys = Counter(_key(e.text) for e in DATA.examples if e.language == language)
    repeated = [key for key, count in keys.items() if count > 1 and len(key) > 3]
    assert not repeated, f"{language}: repeated examples {repeated[:5]}"


def test_annotations_use_known_entities_and_point_at_their_text() -> None:
    annotated = [example for example in DATA.examples if example.entities]
    assert len(annotated) > 300
    for example in annotated:
        for span in example.entities:
            assert span.entity in ENTITIES, (example.text, span)
            assert example.text[span.start : span.end].strip(), (example.text, span)
            assert "[" not in example.text and "](" not in example.text


def test_signal_key_phrases_and_entity_regexes_exist_per_language() -> None:
    for signal in SIGNALS:
        assert len(DATA.lookups[f"{signal}_terms"]) >= 20
    for name in ("order_id", "phone", "email"):
        assert DATA.regexes[name]
        for pattern in DATA.regexes[name]:
            re.compile(pattern)


def test_annotation_syntax() -> None:
    text, spans = parse_annotated(
        '订单[SO2024110588123](order_id)的[无线耳机]{"entity": "product", "value": "蓝牙耳机"}坏了'
    )
    assert text == "订单SO2024110588123的无线耳机坏了"
    assert [(s.entity, s.value, text[s.start : s.end]) for s in spans] == [
        ("order_id", "SO2024110588123", "SO2024110588123"),
        ("product", "蓝牙耳机", "无线耳机"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            'version: "3.1"\nnlu:\n- intent: refund_please\n  examples: |\n    - hi\n',
            "unknown label",
        ),
        ('version: "2.0"\nnlu: []\n', 'version must be "3.1"'),
        (
            "version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    hi\n",
            "does not start with '- '",
        ),
        ("version: '3.1'\nnlu: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_data_is_refused_with_the_file_named(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "zh").mkdir()
    bad = tmp_path / "zh" / "bad.yml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(NluDataError) as raised:
        load_training_data(tmp_path)
    assert message in str(raised.value) and "bad.yml" in str(raised.value)


def test_missing_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NluDataError, match="no training data"):
        load_training_data(tmp_path)
