"""Read nlu_data/ (Rasa NLU YAML, version "3.1") into training examples and extractor tables.

Each `- intent: NAME` block belongs to the axis its name is declared on in
:mod:`bot.nlu.labels`, so one file may hold any axis; unknown names are refused.
Entity annotations use Rasa's `[text](entity)` and `[text]{"entity": ..., "value": ...}`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.nlu.labels import AXIS_OF_LABEL, LANGUAGES, Axis

_ANNOTATION = re.compile(
    r"\[(?P<text>[^\[\]]+?)\](?:\((?P<name>[\w-]+)(?::[^)]*)?\)|(?P<json>\{[^{}]*\}))"
)


class NluDataError(ValueError):
    """nlu_data/ is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class EntitySpan:
    entity: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    axis: Axis
    language: str
    entities: tuple[EntitySpan, ...] = ()
    source: str = ""


@dataclass
class TrainingData:
    """Everything nlu_data/ declares, for every language."""

    examples: list[Example] = field(default_factory=list)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""

    def by_axis(self, axis: Axis, language: str | None = None) -> list[Example]:
        return [
            example
            for example in self.examples
            if example.axis == axis and (language is None or example.language == language)
        ]


def parse_annotated(text: str) -> tuple[str, tuple[EntitySpan, ...]]:
    """Strip Rasa entity annotations from an example, returning plain text and spans."""
    plain: list[str] = []
    spans: list[EntitySpan] = []
    cursor = 0
    position = 0
    for match in _ANNOTATION.finditer(text):
        plain.append(text[cursor : match.start()])
        position += match.start() - cursor
        surface = match.group("text")
        name = match.group("name")
        value = surface
        if match.group("json"):
            try:
                spec = json.loads(match.group("json"))
            except json.JSONDecodeError:
                raise NluDataError(f"bad entity annotation {match.group(0)!r}") from None
            name = spec.get("entity")
            value = str(spec.get("value", surface))
        if not name:
            raise NluDataError(f"entity annotation without a name: {match.group(0)!r}")
        spans.append(EntitySpan(str(name), value, position, position + len(surface)))
        plain.append(surface)
        position += len(surface)
        cursor = match.end()
    plain.append(text[cursor:])
    return "".join(plain), tuple(spans)


def _lines(block: object, where: str) -> list[str]:
    if not isinstance(block, str):
        raise NluDataError(f"{where}: 'examples' must be a '|' block of '- ' lines")
    items = []
    for raw in block.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("- "):
            raise NluDataError(f"{where}: line does not start with '- ': {line[:60]!r}")
        items.append(line[2:].strip())
    return items


def _read_file(path: Path, language: str, data: TrainingData) -> None:
    where = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise NluDataError(f"{where}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or "nlu" not in document:
        raise NluDataError(f"{where}: expected a mapping with a 'nlu' list")
    if str(document.get("version")) != "3.1":
        raise NluDataError(f'{where}: version must be "3.1"')
    for item in document["nlu"] or []:
        if "intent" in item:
            label = str(item["intent"])
            axis = AXIS_OF_LABEL.get(label)
            if axis is None:
                raise NluDataError(f"{where}: unknown label '{label}'")
            for line in _lines(item.get("examples"), f"{where} [{label}]"):
                text, spans = parse_annotated(line)
                data.examples.append(Example(text, label, axis, language, spans, where))
        elif "regex" in item:
            data.regexes.setdefault(str(item["regex"]), []).extend(
                _lines(item.get("examples"), f"{where} [regex {item['regex']}]")
            )
        elif "lookup" in item:
            data.lookups.setdefault(str(item["lookup"]), []).extend(
                _lines(item.get("examples"), f"{where} [lookup {item['lookup']}]")
            )
        elif "synonym" in item:
            canonical = str(item["synonym"])
            for alias in _lines(item.get("examples"), f"{where} [synonym {canonical}]"):
                data.synonyms[alias.lower()] = canonical
        else:
            raise NluDataError(f"{where}: item without intent/regex/lookup/synonym: {item!r}"[:200])


def data_files(root: Path) -> list[tuple[str, Path]]:
    """The YAML files under nlu_data/, with the language of their folder, in a stable order."""
    files: list[tuple[str, Path]] = []
    for language in LANGUAGES:
        folder = root / language
        files.extend((language, path) for path in sorted(folder.glob("*.yml")))
    return files


def fingerprint(root: Path) -> str:
    """A hash of every data file, so a trained model can be cached by its data."""
    digest = hashlib.sha256()
    for language, path in data_files(root):
        digest.update(f"{language}/{path.name}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_training_data(root: Path) -> TrainingData:
    """Load and validate every language folder under ``root``."""
    files = data_files(root)
    if not files:
        raise NluDataError(f"no training data: {root}/zh/*.yml and {root}/en/*.yml are missing")
    data = TrainingData(fingerprint=fingerprint(root))
    for language, path in files:
        _read_file(path, language, data)
    return data
