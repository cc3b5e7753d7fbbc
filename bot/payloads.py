"""Button payloads: what a pressed inline button sends back (Telegram's `callback_data`,
at most 64 bytes). Every payload the bot puts on a button is made here and read here,
in the spirit of aiogram's `CallbackData`: a prefix, then fields separated by ":".

- `Choice`: a customer's answer to the question on screen, `<question>:<value>`
  (`type:delivery`, `outcome:refund`, `confirm:yes`, `change:order_id`,
  `slot:order_id=SO123`: a `SlotAnswer`). The dialogue compares whole payloads for the
  fixed ones.
- `FollowUpAnswer`: an answer to a follow-up question, `<kind>:<answer>:<follow-up id>`
  (`sv:yes:12` the survey, `sv:r4:12` a score, `sv:skip:12`, `as:no:12` after a
  repair): the id ties the answer to its question after other messages.
- `SlotPick`: a call-back slot, `cb:2026-12-04T09:00` (`cb:none`: none suits).
- `DeskPress`: a button for staff, `tk:<action>:<id>[:<target>]` (take, transfer,
  xfer with the agent's id or 0 for the queue, escalate, close, cb for a due call-back,
  send / discard for a held message).

Nothing here knows Telegram: the dialogue, the hand-off and the Telegram side all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import ClassVar

MAX_BYTES = 64
"""Telegram's limit for callback_data."""


class PayloadError(ValueError):
    """A payload the bot was about to put on a button does not fit or cannot be read back."""


def _fits(payload: str) -> str:
    if len(payload.encode("utf-8")) > MAX_BYTES:
        raise PayloadError(f"payload over {MAX_BYTES} bytes: {payload!r}")
    return payload


@dataclass(frozen=True)
class Choice:
    """A customer's answer to the question on screen: `<question>:<value>`."""

    question: str
    value: str

    def pack(self) -> str:
        if ":" in self.question or not self.question:
            raise PayloadError(f"a question name has no ':' and is not empty: {self.question!r}")
        return _fits(f"{self.question}:{self.value}")

    @classmethod
    def parse(cls, payload: str | None, question: str | None = None) -> Choice | None:
        """The choice in `payload` (of `question`, when given), or None."""
        name, sep, value = (payload or "").partition(":")
        if not sep or not name or (question is not None and name != question):
            return None
        return cls(name, value)


@dataclass(frozen=True)
class SlotAnswer:
    """A fact question's button: `slot:<fact>=<value>` (`slot:order_id=no_order_id`,
    `slot:defect=broken`)."""

    QUESTION: ClassVar[str] = "slot"

    slot: str
    value: str

    def pack(self) -> str:
        if "=" in self.slot or ":" in self.slot or not self.slot:
            raise PayloadError(f"a fact's name has no '=' or ':' and is not empty: {self.slot!r}")
        return Choice(self.QUESTION, f"{self.slot}={self.value}").pack()

    @classmethod
    def parse(cls, payload: str | None) -> SlotAnswer | None:
        """The answer in `payload`, or None if it is not a well-formed one."""
        raw = chosen(payload, cls.QUESTION)
        if raw is None:
            return None
        slot, sep, value = raw.partition("=")
        return cls(slot, value) if sep and slot else None


def chosen(payload: str | None, question: str) -> str | None:
    """The value chosen for `question` (`type` in `type:delivery` -> "delivery"), or None."""
    choice = Choice.parse(payload, question)
    return choice.value if choice is not None else None


@dataclass(frozen=True)
class FollowUpAnswer:
    """An answer to a follow-up question: `<kind>:<answer>:<follow-up id>`."""

    KINDS: ClassVar[tuple[str, ...]] = ("sv", "as")

    kind: str  # sv: the satisfaction survey; as: the check after a repair
    answer: str  # yes, no, skip, r1..r5
    follow_up_id: int

    def pack(self) -> str:
        if self.kind not in self.KINDS:
            raise PayloadError(f"unknown follow-up kind {self.kind!r}")
        return _fits(f"{self.kind}:{self.answer}:{self.follow_up_id}")

    @classmethod
    def parse(cls, payload: str | None) -> FollowUpAnswer | None:
        parts = (payload or "").split(":")
        if len(parts) != 3 or parts[0] not in cls.KINDS or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]))

    @property
    def score(self) -> int | None:
        """The score of a rating button (`r4` -> 4), else None."""
        if len(self.answer) == 2 and self.answer[0] == "r" and self.answer[1] in "12345":
            return int(self.answer[1])
        return None


SLOT_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True)
class SlotPick:
    """A call-back slot the customer picked (`cb:<local start>`), or none of them."""

    PREFIX: ClassVar[str] = "cb"
    NONE: ClassVar[str] = "cb:none"

    start: datetime | None  # local time in the business's zone; None: no slot suits

    def pack(self) -> str:
        if self.start is None:
            return self.NONE
        return _fits(f"{self.PREFIX}:{self.start:{SLOT_FORMAT}}")

    @classmethod
    def parse(cls, payload: str | None, tz: tzinfo) -> SlotPick | None:
        """The pick in `payload` (its start in `tz`); None if it is not a well-formed one."""
        if payload == cls.NONE:
            return cls(None)
        raw = (payload or "").removeprefix(f"{cls.PREFIX}:")
        if raw == payload:
            return None
        try:
            moment = datetime.strptime(raw, SLOT_FORMAT)
        except ValueError:
            return None
        return cls(moment.replace(tzinfo=tz))


@dataclass(frozen=True)
class DeskPress:
    """A button for staff: `tk:<action>:<id>[:<target>]`."""

    PREFIX: ClassVar[str] = "tk"
    ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"take", "transfer", "xfer", "escalate", "close", "cb", "send", "discard"}
    )

    action: str
    id: int  # the ticket; cb: the follow-up; send / discard: the held message
    target: int | None = None  # xfer: the agent's user id, 0 for the queue

    def pack(self) -> str:
        if self.action not in self.ACTIONS:
            raise PayloadError(f"unknown desk action {self.action!r}")
        tail = "" if self.target is None else f":{self.target}"
        return _fits(f"{self.PREFIX}:{self.action}:{self.id}{tail}")

    @classmethod
    def parse(cls, payload: str | None) -> DeskPress | None:
        """The press in `payload`; None for anything malformed or unknown (a forged or
        outdated button is answered as unknown, never acted on)."""
        parts = (payload or "").split(":")
        if not 3 <= len(parts) <= 4 or parts[0] != cls.PREFIX or parts[1] not in cls.ACTIONS:
            return None
        if not parts[2].isdigit():
            return None
        target = None
        if len(parts) == 4:
            if not parts[3].isdigit():
                return None
            target = int(parts[3])
        return cls(parts[1], int(parts[2]), target)
