"""The dialogue policy: the five steps of shared/domain.md §1, in order.

1 greet by name · 2 empathy before facts, restate to check understanding ·
3 find the expectation (motive) · 4 facts by closed questions, never re-asked ·
5 read back, say what happens next and by when, hand off.

Around them: FAQ answers for questions, thanks for praise, a person on request at any
point, /cancel, the three-strike abuse protocol, threats straight to a supervisor.
The conversation's ``stage`` says which question is open.

Built in layers by step, each using only those below it: ``asking`` (what every step
uses), ``handing_off`` (step 5's end, and while a person has the case), ``gathering``
(steps 3–4), ``readback`` (step 5), ``listening`` (steps 1–2), and ``turns`` (the
decision itself: commands, privacy, media, then the stage's handler).
"""

from __future__ import annotations

from bot.dialogue.policy.rules import waiting_topic
from bot.dialogue.policy.turns import Policy

__all__ = ["Policy", "waiting_topic"]
