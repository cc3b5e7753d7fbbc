"""The wording: every response the bot can say exists in both languages, with its
placeholders, and none contains a phrase shared/domain.md §7 forbids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from actions.facts import load_facts, load_policy
from bot.config import PROJECT_ROOT
from bot.dialogue.responses import LANGUAGES, RESPONSES_DIR, Responses, placeholders
from bot.nlu.labels import COMPLAINT_TYPES, MOTIVES

FORBIDDEN = yaml.safe_load((RESPONSES_DIR.parent / "forbidden.yml").read_text(encoding="utf-8"))
SOURCES = [
    *(PROJECT_ROOT / "bot" / "dialogue").glob("*.py"),
    PROJECT_ROOT / "actions" / "complaint.py",
]


def said_by_code() -> set[str]:
    """Every response key the policy and the actions can produce."""
    keys = set()
    for source in SOURCES:
        keys |= set(re.findall(r'"(utter_[a-z_0-9]+)"', source.read_text(encoding="utf-8")))
    facts = load_facts()
    keys |= {f"utter_restate_{name}" for name in COMPLAINT_TYPES}
    keys |= {
        f"utter_empathy_{level}_{name}" for level in ("mild", "strong") for name in COMPLAINT_TYPES
    }
    keys |= {f"utter_expectation_{name}" for name in MOTIVES}
    keys |= {f"utter_ask_{name}" for names in facts.types.values() for name in names}
    keys |= {f"utter_ask_{name}_open" for name, slot in facts.slots.items() if slot.negative}
    keys |= {f"utter_policy_{rule['name']}" for rule in load_policy()}
    keys |= {f"utter_abuse_strike_{n}" for n in (1, 2, 3)}
    return {key for key in keys if not key.endswith("_")}


def all_texts(language: str) -> list[tuple[str, str]]:
    pack = Responses().packs[language]
    texts = [(key, text) for key, options in pack.responses.items() for text in options]
    texts += list(pack.labels.items())
    faq = yaml.safe_load((RESPONSES_DIR.parent / "faq" / f"{language}.yml").read_text("utf-8"))
    texts += [(f"faq:{entry['id']}", entry["answer"]) for entry in faq["faq"]]
    return texts


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_response_the_code_can_say_exists(language: str) -> None:
    pack = Responses().packs[language]
    missing = sorted(said_by_code() - set(pack.responses))
    assert missing == []


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    zh, en = (Responses().packs[lang] for lang in ("zh", "en"))
    assert set(zh.responses) == set(en.responses)
    assert set(zh.labels) == set(en.labels)
    for key in en.responses:
        wanted = placeholders(en.responses[key][0])
        for text in (*en.responses[key], *zh.responses[key]):
            assert placeholders(text) == wanted, (key, text)


def test_greetings_and_empathy_come_in_variations() -> None:
    for language in LANGUAGES:
        pack = Responses().packs[language]
        for key in (
            "utter_greet",
            "utter_greet_brief",
            "utter_empathy_mild",
            "utter_empathy_strong",
        ):
            assert len(set(pack.responses[key])) >= 4, (language, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_forbidden_phrase_anywhere(language: str) -> None:
    phrases = [p.lower() for p in FORBIDDEN["zh"] + FORBIDDEN["en"]]
    offending = [
        (key, phrase)
        for key, text in all_texts(language)
        for phrase in phrases
        if phrase in text.lower()
    ]
    assert offending == []


def test_the_forbidden_list_covers_the_domain_phrases() -> None:
    for phrase in (
        "不归我负责",
        "你搞错了",
        "我们的规定",
        "that's our policy",
        "not my department",
        "我们没做好",  # no admission of fault before the facts (shared/seeds/)
        "let you down",
    ):
        assert phrase in FORBIDDEN["zh"] + FORBIDDEN["en"]


def test_the_scan_would_catch_one(tmp_path: Path) -> None:
    """The scan is not vacuous: a planted phrase in a copy of the files is found."""
    for language in LANGUAGES:
        (tmp_path / f"{language}.yml").write_text(
            (RESPONSES_DIR / f"{language}.yml")
            .read_text("utf-8")
            .replace(
                "responses:\n",
                'responses:\n  utter_planted:\n    - text: "Sorry, that\'s our policy."\n',
                1,
            ),
            encoding="utf-8",
        )
    planted = Responses(tmp_path).packs["en"].responses["utter_planted"][0].lower()
    assert any(phrase.lower() in planted for phrase in FORBIDDEN["en"])
