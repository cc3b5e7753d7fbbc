"""Every stage a conversation can be in has its handler: the dialogue dispatches on
`Conversation.stage` by name (`Policy._stage_<stage>`, `Survey._<stage>`), so a stage
added to the enum without one would quietly fall back to the start."""

from __future__ import annotations

from bot.dialogue import survey
from bot.dialogue.policy import Policy
from bot.dialogue.survey import Survey
from bot.store import Stage

ELSEWHERE = {Stage.HANDED_OFF, Stage.CLOSED}
"""Handled before the stage is looked at: a person has the case, or it is over."""


def test_each_stage_has_a_handler() -> None:
    missing = [
        stage
        for stage in Stage
        if stage not in ELSEWHERE
        and not (
            hasattr(Survey, f"_{stage}")
            if stage in survey.STAGES
            else hasattr(Policy, f"_stage_{stage}")
        )
    ]
    assert missing == []
    assert set(survey.STAGES) < set(Stage)


def test_a_stage_is_its_stored_text() -> None:
    assert Stage.FACT_OPEN == "fact_open" and f"_stage_{Stage.FACT_OPEN}" == "_stage_fact_open"
