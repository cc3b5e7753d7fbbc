"""The embedded classifier: the output contract, bad input, caching, and accuracy on unseen text."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import PROJECT_ROOT
from bot.nlu.evaluate import evaluate_holdout, load_holdout
from bot.nlu.labels import COMPLAINT_TYPES, DIALOGUE_INTENTS, MOTIVES, SIGNALS
from bot.nlu.model import TriageModel, load_or_train, says_self_harm
from tests.conftest import NLU_DATA, NLU_TEST_CACHE, copy_small_nlu_data

HOLDOUT = Path(__file__).parent / "holdout"
FAQ = PROJECT_ROOT / "bot" / "dialogue" / "faq"
CONTRACT_KEYS = {"text", "language", "intent", "intent_ranking", "complaint_type", "motive"} | {
    "entities",
    "signals",
}


def assert_contract(result: dict[str, object]) -> None:
    assert set(result) >= CONTRACT_KEYS
    assert result["language"] in {"zh", "en"}
    json.dumps(result)  # serialisable as it is printed
    intent = result["intent"]
    assert isinstance(intent, dict) and intent["name"] in DIALOGUE_INTENTS
    assert 0.0 <= intent["confidence"] <= 1.0
    ranking = result["intent_ranking"]
    assert isinstance(ranking, list) and ranking[0]["name"] == intent["name"]
    assert result["complaint_type"]["name"] in COMPLAINT_TYPES  # type: ignore[index]
    assert result["motive"]["name"] in MOTIVES  # type: ignore[index]
    assert set(result["signals"]) <= set(SIGNALS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "intent", "complaint_type", "motive", "signals"),
    [
        (
            "快递显示签收了但我根本没收到!!打了三次客服电话都说在查,再不给我退款我就去12315投诉",
            "complain", "delivery", "compensation", {"major_media", "repeat_contact"},
        ),
        (
            "the blender you sold me started smoking and sparking on the second use, "
            "my kid was right there",
            "complain", "safety", None, set(),
        ),
        ("你好,在吗", "greet", None, None, set()),
        ("thanks so much, that sorted it", "thank", None, None, set()),
        ("请问退货运费谁出?", "inquiry", None, None, set()),
        ("转人工", "request_human", None, None, set()),
        (
            "I don't want anything back, I'm just so fed up with your rude staff "
            "and needed to say it",
            "complain", "service_attitude", "venting", set(),
        ),
        (  # the price paid and "money back" do not make a wrong size a billing problem
            "This is ridiculous. I ordered a pair of running shoes 3 weeks ago (order "
            "#A-77120934), paid $89.99, and they sent me the wrong size. I've emailed twice "
            "and nobody answers. I want my money back NOW",
            "complain", "delivery", "compensation", {"repeat_contact"},
        ),
        ("客服消息发了三次都没人理，我的耳机到底什么时候修好", "complain", None, None,
         {"repeat_contact"}),
    ],
)  # fmt: skip
def test_typical_messages(
    model: TriageModel,
    text: str,
    intent: str,
    complaint_type: str | None,
    motive: str | None,
    signals: set[str],
) -> None:
    result = model.parse(text)
    assert_contract(result)
    assert result["intent"]["name"] == intent
    if complaint_type:
        assert result["complaint_type"]["name"] == complaint_type
    if motive:
        assert result["motive"]["name"] == motive
    assert signals <= set(result["signals"])


def test_language_is_the_dominant_one(model: TriageModel) -> None:
    assert model.parse("这个app的refund流程太离谱了")["language"] == "zh"
    assert model.parse("my order still hasn't arrived 快递呢")["language"] == "en"
    assert model.parse("hello")["language"] == "en"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "😡😡😡😡",
        "\x00\x07\x1b[31m\u202e",
        "Добрый день, мой заказ не пришёл",
        "<script>alert('x')</script><b>bold</b>",
        "..!!??",
    ],
)
def test_bad_input_gives_a_valid_answer_with_low_confidence(model: TriageModel, text: str) -> None:
    result = model.parse(text)
    assert_contract(result)
    assert result["text"] == text
    if not any(char.isalpha() and char.isascii() for char in text):
        assert result["intent"]["confidence"] <= 0.2
        assert result["complaint_type"]["confidence"] <= 0.2


def test_very_long_text_is_parsed(model: TriageModel) -> None:
    text = ("我的订单SO2024110588123一直没发货,客服也不回。" * 500)[:10_000]
    result = model.parse(text)
    assert_contract(result)
    assert result["intent"]["name"] == "complain"
    assert any(entity["entity"] == "order_id" for entity in result["entities"])


def test_batch_and_single_parses_agree(model: TriageModel) -> None:
    texts = ["退钱", "hi there", "the app keeps crashing", "谢谢你们"]
    assert model.parse_batch(texts) == [model.parse(text) for text in texts]


@pytest.mark.slow
def test_the_model_is_cached_by_the_hash_of_the_data(tmp_path: Path) -> None:
    data = copy_small_nlu_data(tmp_path / "nlu_data")
    cache = tmp_path / "cache"
    first = load_or_train(data, cache, embeddings_dir=NLU_TEST_CACHE)
    assert len(list(cache.glob("*.pkl"))) == 1
    started = time.perf_counter()
    again = load_or_train(data, cache, embeddings_dir=NLU_TEST_CACHE)
    assert time.perf_counter() - started < first.training_seconds
    assert again.fingerprint == first.fingerprint
    with (data / "en" / "intents.yml").open("a", encoding="utf-8") as handle:
        handle.write("- intent: greet\n  examples: |\n    - howdy partner\n")
    changed = load_or_train(data, cache, embeddings_dir=NLU_TEST_CACHE)
    assert changed.fingerprint != first.fingerprint
    assert len(list(cache.glob("*.pkl"))) == 2


def test_a_broken_cache_file_is_rebuilt(tmp_path: Path) -> None:
    from bot.nlu.model import ModelConfig, cache_path, fingerprint

    data = copy_small_nlu_data(tmp_path / "nlu_data")
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache_path(cache, fingerprint(data), ModelConfig())
    path.write_bytes(b"not a pickle")
    rebuilt = load_or_train(data, cache, embeddings_dir=NLU_TEST_CACHE)
    assert rebuilt.parse("你好")["intent"]["name"] == "greet"
    assert rebuilt.fingerprint == fingerprint(data)
    assert path.read_bytes() != b"not a pickle"  # the rebuilt model replaced it


# Floors a little under the figures in docs/nlu.md, so a change that makes the model worse
# on text it has never seen fails here.
HOLDOUT_FLOORS = {
    ("zh", "complaint"): 0.93,
    ("en", "complaint"): 0.93,
    ("zh", "complaint_type"): 0.89,
    ("en", "complaint_type"): 0.84,
    ("zh", "motive"): 0.93,
    ("en", "motive"): 0.87,
}


@pytest.mark.slow
def test_accuracy_on_the_held_out_set(model: TriageModel) -> None:
    holdout = load_holdout(HOLDOUT)
    assert set(holdout) == {"zh", "en"} and all(len(items) >= 300 for items in holdout.values())
    results = evaluate_holdout(model, holdout)
    scores = {key: results[key[0]][key[1]].macro_f1() for key in HOLDOUT_FLOORS}
    below = {key: round(score, 3) for key, score in scores.items() if score < HOLDOUT_FLOORS[key]}
    assert not below, f"macro-F1 under the floor: {below}"


def test_the_questions_the_faq_answers_fire_no_signal(model: TriageModel) -> None:
    """Asking the shop's phone number or when a refund arrives is not abuse, a threat, a
    repeat contact or a threat to go to the press: a signal there scolds the customer or
    sends a plain question to a supervisor. (The FAQ's questions are never trained on.)"""
    fired = {}
    for language in ("zh", "en"):
        faq = yaml.safe_load((FAQ / f"{language}.yml").read_text(encoding="utf-8"))["faq"]
        questions = [question for item in faq for question in item["questions"]]
        assert len(questions) >= 80
        for parse in model.parse_batch(questions):
            if parse["signals"]:
                fired[parse["text"]] = parse["signals"]
    assert fired == {}


@pytest.mark.parametrize("binary", [False, True])
def test_the_reduced_classifier_gives_sklearns_probabilities(binary: bool) -> None:
    """CalibratedLinear is CalibratedClassifierCV(ensemble=False) without the overhead."""
    from scipy.sparse import csr_matrix
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    from bot.nlu.data import load_training_data
    from bot.nlu.model import CalibratedLinear, ModelConfig, _vectorizer
    from bot.nlu.text import normalise

    data = load_training_data(NLU_DATA)
    examples = [e for e in data.examples if e.axis == "complaint_type"][:800]
    labels = [("yes" if e.label == "delivery" else "no") if binary else e.label for e in examples]
    matrix = csr_matrix(
        _vectorizer(ModelConfig()).fit_transform([normalise(e.text) for e in examples])
    )
    fitted = CalibratedClassifierCV(
        LinearSVC(random_state=0), method="sigmoid", cv=3, ensemble=False
    ).fit(matrix, labels)
    reduced = CalibratedLinear.from_sklearn(fitted)
    assert list(reduced.classes_) == list(fitted.classes_)
    assert abs(reduced.predict_proba(matrix) - fitted.predict_proba(matrix)).max() < 1e-5


SIGNAL_SETS = Path(__file__).parent / "signals"
# tests/nlu/signals/ (written blind to the training data, never trained on; its README
# says which set has been read since) and docs/nlu.md.
SIGNAL_FLOORS: dict[str, tuple[dict[str, float], dict[tuple[str, str], float]]] = {
    # set: (most false alarms per language, recall floor per language and signal)
    "": (  # read since (see its README): a check that nothing regressed
        {"zh": 1 / 133, "en": 2 / 134},  # measured: 0 and 2 (session 18)
        {
            ("zh", "major_media"): 0.97, ("zh", "repeat_contact"): 0.96,
            ("zh", "abusive"): 0.97, ("zh", "threat_of_harm"): 0.9,
            ("en", "major_media"): 0.94, ("en", "repeat_contact"): 0.9,
            ("en", "abusive"): 0.97, ("en", "threat_of_harm"): 0.96,
        },  # measured, session 18: 1.00 1.00 1.00 0.94 / 0.97 0.94 1.00 1.00
    ),
    "blind_2": (  # read since session 19 (see its README)
        {"zh": 1 / 60, "en": 1 / 60},  # measured: 0 and 0 (session 19)
        {
            ("zh", "major_media"): 0.93, ("zh", "repeat_contact"): 0.93,
            ("zh", "abusive"): 0.9, ("zh", "threat_of_harm"): 0.95,
            ("en", "major_media"): 0.93, ("en", "repeat_contact"): 0.86,
            ("en", "abusive"): 0.9, ("en", "threat_of_harm"): 0.9,
        },  # measured, session 19: 1.00 1.00 1.00 1.00 / 1.00 0.93 1.00 0.95
    ),
    "blind_3": (  # positives never read by the writers of nlu_data/
        {"zh": 1 / 100, "en": 3 / 100},  # measured: 1 and 3 (session 19)
        {
            ("zh", "major_media"): 0.85, ("zh", "repeat_contact"): 0.81,
            ("zh", "abusive"): 0.9, ("zh", "threat_of_harm"): 0.77,
            ("en", "major_media"): 0.9, ("en", "repeat_contact"): 0.56,
            ("en", "abusive"): 0.9, ("en", "threat_of_harm"): 0.87,
        },  # measured, session 19: 0.90 0.84 0.95 0.80 / 0.95 0.59 0.95 0.90
    ),
}  # fmt: skip


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("folder", list(SIGNAL_FLOORS), ids=["read", "blind_2", "blind_3"])
def test_signals_on_messages_written_blind_to_the_training_data(
    model: TriageModel, folder: str
) -> None:
    """A confused, short or mildly cross message raises no signal; real abuse, threats
    (self-harm among them), threats to go public and repeat contacts do. Floors at the
    measured figures (docs/nlu.md); the goal is at most 2% false alarms and recall 0.90
    or better, and a change that moves away from it fails here."""
    max_false_alarms, recall_floors = SIGNAL_FLOORS[folder]
    harmless = _jsonl(SIGNAL_SETS / folder / "benign.jsonl")
    positive = _jsonl(SIGNAL_SETS / folder / "positive.jsonl")
    assert len(harmless) >= 120 and len(positive) >= 120
    fired = {row["text"]: parse["signals"] for row, parse in
             zip(harmless, model.parse_batch([row["text"] for row in harmless]), strict=True)
             if parse["signals"]}  # fmt: skip
    for language, most in max_false_alarms.items():
        rows = [row for row in harmless if row["lang"] == language]
        alarms = {row["text"]: fired[row["text"]] for row in rows if row["text"] in fired}
        assert len(alarms) <= most * len(rows), alarms
    parses = model.parse_batch([row["text"] for row in positive])
    for (language, signal), floor in recall_floors.items():
        rows = [(row, parse) for row, parse in zip(positive, parses, strict=True)
                if row["lang"] == language and signal in row["signals"]]  # fmt: skip
        missed = [row["text"] for row, parse in rows if signal not in parse["signals"]]
        recall = 1 - len(missed) / len(rows)
        # the blind set's misses are not printed: nobody writing training data reads them
        assert recall >= floor, (language, signal, recall if folder == "blind_3" else missed)


@pytest.mark.parametrize(
    "text",
    ["what?", "are you a bot?", "this is a joke", "你说什么?", "what is going on with my order",
     "how do I complain about a courier"],
)  # fmt: skip
def test_a_confused_customer_is_not_taken_for_an_abusive_one(model: TriageModel, text: str) -> None:
    """The parses the triage issue reported: each of these was abusive or major_media."""
    assert model.parse(text)["signals"] == []


DEV_SET = PROJECT_ROOT.parent / "shared" / "nlu_dev"
# Real customer texts (../shared/nlu_dev: third-party, read in place, never copied here
# or trained on). Floors a little under the figures of docs/nlu.md.
DEV_FLOORS = {
    ("zh", "is_complaint"): 0.82,
    ("en", "is_complaint"): 0.72,
    ("zh", "complaint_type"): 0.61,
    ("en", "complaint_type"): 0.60,
    ("zh", "motive"): 0.53,
    ("en", "motive"): 0.61,
}  # fmt: skip  (measured, session 12: 0.843 0.742 / 0.632 0.621 / 0.555 0.633)


@pytest.mark.slow
@pytest.mark.skipif(
    not DEV_SET.is_dir(), reason="../shared/nlu_dev is not beside this checkout (CI has it)"
)
def test_accuracy_on_real_customer_texts(model: TriageModel) -> None:
    from bot.nlu.realeval import evaluate_tickets, read_tickets

    tickets = read_tickets([DEV_SET / "detection.jsonl", DEV_SET / "complaints.jsonl"])
    results = evaluate_tickets(tickets, model.parse_batch([ticket.text for ticket in tickets]))
    scores = {key: results[key[0]].axes[key[1]].macro_f1() for key in DEV_FLOORS}
    below = {key: round(score, 3) for key, score in scores.items() if score < DEV_FLOORS[key]}
    assert not below, f"macro-F1 under the floor on real customer texts: {below}"


@pytest.mark.parametrize(
    ("text", "self_harm"),
    [
        ("I want to kill myself", True),  # a self-harm key phrase
        ("this was all my savings. i cant go on. goodbye", True),  # despair, no one else
        ("you took my last money and i can't go on", True),  # blame is not a threat
        ("i will burn your shop down, goodbye", False),  # a threat to others named
        ("我要砍了你们客服，撑不下去了", False),
        ("我真的撑不下去了，再见了", True),
        ("I will make you regret this", False),  # a threat in no list: not self-harm
    ],
)  # fmt: skip
def test_whose_harm_a_threat_is_about(text: str, self_harm: bool) -> None:
    """The dialogue's choice between care and a threat's answer, once threat_of_harm has
    fired (bot.nlu.model.says_self_harm): self-harm phrases, then threats to others, then
    words of despair."""
    assert says_self_harm(text, NLU_DATA) is self_harm


@pytest.mark.parametrize(
    "text",
    ["我周六去你们店里看看", "下午四点我到你们专柜", "I'll pop by the counter on thursday",
     "gonna swing by ur shop around 4 to grab my order", "I bought it in the shop on Main Street",
     "the store is 5 kms from my house"],
)  # fmt: skip
def test_a_visit_to_the_shop_is_no_threat(model: TriageModel, text: str) -> None:
    """Threat examples often read "I'll come to your store tomorrow and…": going to a shop
    at a time had become a threat (0.94-1.0) and ended the conversation with a supervisor
    alert. None of these texts is in nlu_data/."""
    assert model.parse(text)["signals"] == []


@pytest.mark.parametrize(
    "text", ["honestly might just kms", "I'm coming to your store tomorrow with a baseball bat"]
)
def test_harm_in_slang_and_a_visit_with_a_weapon_still_fire(model: TriageModel, text: str) -> None:
    assert "threat_of_harm" in model.parse(text)["signals"]


@pytest.mark.parametrize(
    "text", ["洗衣机修了三次了还是漏水", "the washer has been repaired three times and still leaks"]
)
def test_repaired_several_times_without_a_fix_is_a_repeat_contact(
    model: TriageModel, text: str
) -> None:
    """Domain §4: "came back several times without a fix" makes a complaint major."""
    assert "repeat_contact" in model.parse(text)["signals"]
