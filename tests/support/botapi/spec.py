"""Checks a Bot API call against the official machine-readable spec (Bot API 10.0).

Every parameter is checked: the method exists, no unknown parameter, none missing,
each value of its declared type (objects recursively, with their own fields).
Problems come back as Telegram words them ("Bad Request: ...") where Telegram has
fixed words, and are also kept so a test run can fail on any of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bot.config import PROJECT_ROOT

SPEC_PATH = PROJECT_ROOT.parent / "shared" / "telegram" / "bot-api-10.0.json"
_INTEGER = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


class Upload:
    """A file part of a multipart request."""

    def __init__(self, filename: str | None, data: bytes) -> None:
        self.filename = filename
        self.data = data


@dataclass(frozen=True)
class Field:
    name: str
    types: tuple[str, ...]
    required: bool


@cache
def _spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def method_fields(method: str) -> dict[str, Field] | None:
    """The parameters of a method (case-insensitive, as Telegram matches them)."""
    methods = {name.lower(): spec for name, spec in _spec()["methods"].items()}
    spec = methods.get(method.lower())
    if spec is None:
        return None
    return {
        f["name"]: Field(f["name"], tuple(f["types"]), bool(f["required"]))
        for f in spec.get("fields", [])
    }


def type_fields(name: str) -> dict[str, Field] | None:
    spec = _spec()["types"].get(name)
    if spec is None or "fields" not in spec:
        return None
    return {
        f["name"]: Field(f["name"], tuple(f["types"]), bool(f["required"])) for f in spec["fields"]
    }


def subtypes(name: str) -> list[str]:
    return list(_spec()["types"].get(name, {}).get("subtypes", []))


def check_call(method: str, params: dict[str, Any]) -> list[str]:
    """Everything wrong with a call; empty when it follows the spec."""
    fields = method_fields(method)
    if fields is None:
        return [f"unknown method {method}"]
    problems = []
    for name in params:
        if name not in fields:
            problems.append(f"{method}: unknown parameter {name!r}")
    for field in fields.values():
        if field.name not in params or params[field.name] is None:
            if field.required:
                problems.append(f"{method}: missing required parameter {field.name!r}")
            continue
        problem = check_value(field.types, params[field.name], f"{method}.{field.name}")
        if problem:
            problems.append(problem)
    return problems


def decode(value: Any) -> Any:
    """A form-encoded object or array arrives as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def check_value(types: tuple[str, ...], value: Any, where: str) -> str | None:
    """None if the value fits one of the types, else what is wrong."""
    problems = []
    for kind in types:
        problem = _check_one(kind, value, where)
        if problem is None:
            return None
        problems.append(problem)
    return problems[0]


def _check_one(kind: str, value: Any, where: str) -> str | None:
    if kind.startswith("Array of "):
        items = decode(value)
        if not isinstance(items, list):
            return f"{where}: expected an array, got {type(items).__name__}"
        inner = kind.removeprefix("Array of ")
        for index, item in enumerate(items):
            problem = _check_one(inner, item, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if kind == "Integer":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and _INTEGER.fullmatch(value)
        )
        return None if ok else f"{where}: expected an Integer, got {value!r}"
    if kind == "Float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok or (isinstance(value, str) and bool(_FLOAT.fullmatch(value)))
        return None if ok else f"{where}: expected a Float, got {value!r}"
    if kind == "Boolean":
        ok = isinstance(value, bool) or value in ("true", "false", "True", "False")
        return None if ok else f"{where}: expected a Boolean, got {value!r}"
    if kind == "String":
        return None if isinstance(value, str) else f"{where}: expected a String, got {value!r}"
    if kind == "InputFile":
        ok = isinstance(value, Upload) or (isinstance(value, str) and value.startswith("attach://"))
        return None if ok else f"{where}: expected an uploaded file"
    variants = subtypes(kind)
    if variants:
        problems = [_check_one(variant, value, where) for variant in variants]
        return None if any(p is None for p in problems) else f"{where}: fits no {kind} variant"
    fields = type_fields(kind)
    if fields is None:
        return None  # a type the spec describes in prose only
    obj = decode(value)
    if not isinstance(obj, dict):
        return f"{where}: expected a {kind} object, got {type(obj).__name__}"
    for name in obj:
        if name not in fields:
            return f"{where}: {kind} has no field {name!r}"
    for field in fields.values():
        if field.name not in obj:
            if field.required:
                return f"{where}: {kind} needs {field.name!r}"
            continue
        problem = check_value(field.types, obj[field.name], f"{where}.{field.name}")
        if problem:
            return problem
    return None
