"""What the dialogue's decisions use, as an interface.

:class:`bot.dialogue.policy.Policy` decides what to say and do for one turn. What it
reads and writes for that turn is on the :class:`~bot.dialogue.turn.Turn` (the message,
its parse, the conversation's slots, the session); the rest it uses is here: the
settings, the wording, the FAQ, the NLU (to read a corrected story again) and the
actions (:class:`~bot.dialogue.tracker.Tracker`). Rows are written by functions of the
turn (:mod:`bot.dialogue.records`, :mod:`handoff.tickets`). The
:class:`~bot.dialogue.engine.Engine` is one such object; the policy imports nothing from
it, so the two do not import each other (tests/test_layers.py), and a test or another
front end can hand the policy any object with these members.
"""

from __future__ import annotations

from typing import Protocol

from bot.config import Settings
from bot.dialogue.faq import Faq
from bot.dialogue.responses import Responses
from bot.dialogue.tracker import Tracker
from bot.dialogue.wording import Wording
from bot.nlu import NluService


class TurnServices(Protocol):
    settings: Settings
    responses: Responses
    wording: Wording
    faq: Faq
    nlu: NluService
    tracker: Tracker
