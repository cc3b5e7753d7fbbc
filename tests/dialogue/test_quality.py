"""Conversation quality on the scripted customers (tests/dialogue/customers.yml).

Every complaint type in both languages, plus venting, angry, polite, major, abusive
customers and ones who give everything at once: empathy precedes the first fact
question, no fact is asked twice, every read-back is complete.
"""

from __future__ import annotations

import pytest

from benchmarks.quality import Customer, figures, load_customers, play
from bot.config import PROJECT_ROOT
from bot.dialogue import Engine

CUSTOMERS = load_customers(PROJECT_ROOT / "tests" / "dialogue" / "customers.yml")


def test_every_type_and_every_kind_is_scripted_in_both_languages() -> None:
    from bot.nlu.labels import COMPLAINT_TYPES

    for lang in ("zh", "en"):
        mine = [c for c in CUSTOMERS if c.lang == lang]
        assert {c.type for c in mine if c.kind == "type"} == set(COMPLAINT_TYPES)
        kinds = {c.kind for c in mine}
        assert {"venting", "angry", "polite", "major", "abusive", "everything"} <= kinds
        assert "listening" in kinds  # junk answers, a correction, a question while waiting


@pytest.mark.parametrize("customer", CUSTOMERS, ids=[c.id for c in CUSTOMERS])
async def test_scripted_conversation(engine: Engine, customer: Customer) -> None:
    run = await play(engine, customer, user_id=10_000 + CUSTOMERS.index(customer))
    trace = "\n".join(
        f"{said!r} -> {[k for r in rs for k in r.responses]}" for said, rs in run.exchanges
    )
    assert run.status == "handed_off", trace
    assert run.empathy_first, trace
    assert run.reasked == [], trace
    assert run.summary_missing == [], trace
    if "major" in customer.expect:
        assert run.ticket["summary_data"]["major"] == customer.expect["major"], trace
        assert run.ticket["supervisor_flag"] == customer.expect["major"]
    if "abuse_strikes" in customer.expect:
        assert run.abuse_strikes == customer.expect["abuse_strikes"], trace
    assert run.junk_stored == [], trace
    assert run.correction_applied in (None, True), trace
    assert run.waiting_answered in (None, True), (trace, run.after)


async def test_figures_over_all_customers(engine: Engine) -> None:
    runs = [await play(engine, c, user_id=20_000 + i) for i, c in enumerate(CUSTOMERS)]
    result = figures(runs)
    assert result["empathy_before_first_fact_question"] == 1.0
    assert result["facts_reasked"] == 0
    assert result["summaries_complete"] == 1.0
    assert result["handed_off"] == len(CUSTOMERS)
    for lang in ("zh", "en"):
        stored, junk = result["junk_stored_by_language"][lang]
        assert junk >= 3 and stored == 0
        applied, corrections = result["corrections_applied_by_language"][lang]
        assert corrections >= 3 and applied == corrections
        answered, asked = result["waiting_answered_by_language"][lang]
        assert asked >= 3 and answered == asked
        named, empathy = result["empathy_named_by_language"][lang]
        assert named >= 0.4 * empathy  # the product or the wait, where the customer said it
