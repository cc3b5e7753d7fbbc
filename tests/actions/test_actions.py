"""The rasa-sdk actions: called directly (Tracker + CollectingDispatcher), in-process
through ActionExecutor, and over HTTP against a real `python -m rasa_sdk` process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.complaint import (
    ActionHandoff,
    ActionRecordComplaint,
    ValidateComplaintForm,
    earlier_same_problem,
)
from bot.config import PROJECT_ROOT, Settings
from bot.dialogue.actions_client import RemoteActions, build_domain
from bot.nlu.model import TriageModel
from tests.dialogue.conftest import Customer, make_engine


def tracker(
    slots: dict[str, Any], texts: list[dict[str, Any]], candidate: dict[str, Any] | None = None
) -> Tracker:
    events: list[dict[str, Any]] = [
        {"event": "user", "text": parse["text"], "parse_data": parse} for parse in texts
    ]
    events += [{"event": "slot", "name": k, "value": v} for k, v in (candidate or {}).items()]
    return Tracker(
        "42",
        {"today": "2026-11-22", "language": "en", **slots},
        texts[-1],
        events,
        False,
        None,
        {"name": "complaint_form"},
        "action_listen",
    )


async def test_the_form_asks_only_what_is_missing(model: TriageModel) -> None:
    parse = model.parse("I was charged twice on order SO20241105123", today=None)
    dispatcher = CollectingDispatcher()
    events = await ValidateComplaintForm().run(
        dispatcher, tracker({"complaint_type": "billing"}, [parse]), build_domain()
    )
    values = {e["name"]: e["value"] for e in events}
    assert values["order_id"] == "SO20241105123"
    assert values["billing_issue"] == "charged_twice"
    assert values["requested_slot"] == "amount"
    assert dispatcher.messages == []


async def _validate(
    model: TriageModel, complaint_type: str, slot: str, story: str, typed: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """The form's answer to ``typed`` given at the ``slot`` question of a complaint that
    began with ``story``: the responses it sends and the events it returns."""
    dispatcher = CollectingDispatcher()
    events = await ValidateComplaintForm().run(
        dispatcher,
        tracker(
            {"complaint_type": complaint_type, "requested_slot": slot},
            [model.parse(story, today=None), model.parse(typed, today=None)],
            candidate={slot: typed},
        ),
        build_domain(),
    )
    return [str(m["response"]) for m in dispatcher.messages], events


async def test_a_number_too_short_for_an_order_is_called_incomplete(model: TriageModel) -> None:
    sent, _ = await _validate(model, "delivery", "order_id", "my parcel never came", "8823")
    assert sent == ["utter_invalid_order_id"]


@pytest.mark.parametrize(
    ("typed", "response"),
    [
        ("I already told you, 2 weeks ago", "utter_invalid_order_id_words"),
        ("我2周前就说过了", "utter_invalid_order_id_words"),
        ("order 12", "utter_invalid_order_id"),
        ("SO2024", "utter_invalid_order_id"),
    ],
)
async def test_words_with_a_digit_are_not_called_an_incomplete_number(
    model: TriageModel, typed: str, response: str
) -> None:
    """Asked for the order number, "I already told you, 2 weeks ago" is no try at one:
    the question again with where to find it, not "that number looks incomplete"."""
    sent, _ = await _validate(model, "delivery", "order_id", "my parcel never came", typed)
    assert sent == [response]


@pytest.mark.parametrize("typed", ["不知道", "not sure"])
async def test_dont_know_to_a_yes_no_question_goes_on_without_it(
    model: TriageModel, typed: str
) -> None:
    """ "不知道" to "was anyone hurt?" is an answer (neither yes nor no), not an unread
    choice: the fact is left for the agent and the questions go on."""
    sent, events = await _validate(model, "safety", "injury", "the heater started smoking", typed)
    assert sent[:1] == ["utter_fact_not_given"]
    assert {"event": "slot", "timestamp": None, "name": "injury", "value": "not_given"} in events


@pytest.mark.parametrize(
    ("slot", "typed", "response"),
    [
        ("waiting_since", "idk", "utter_fact_not_given"),
        ("waiting_since", "not sure tbh", "utter_fact_not_given"),
        ("contact_channel", "记不清了", "utter_fact_not_given"),
        ("waiting_since", "what?", "utter_invalid_choice_confused"),  # a question back
    ],
)
async def test_dont_know_to_a_choice_goes_on_without_it(
    model: TriageModel, slot: str, typed: str, response: str
) -> None:
    """ "idk" to "how long have you been waiting?" was "Sorry, I didn't catch which one
    you meant", and the "what?" after it then ended the question as if unanswerable."""
    sent, _ = await _validate(model, "slow_response", slot, "nobody ever answers me", typed)
    assert sent[:1] == [response]


@pytest.mark.parametrize(
    ("lang", "story"),
    [
        ("en", "my parcel is 2 weeks late and nobody answers my emails"),
        ("en", "I've been waiting three days for a reply to my email"),
        ("zh", "快递晚了两周，发邮件也一直没人回"),
        ("zh", "邮件发了都半个月了还没人回复"),
    ],
)
async def test_a_stated_wait_answers_how_long_they_have_waited(
    model: TriageModel, lang: str, story: str
) -> None:
    """The wait the empathy line mirrors ("you've already waited 2 weeks") is the
    answer to "how long have you been waiting?": not asked again."""
    events = await ValidateComplaintForm().run(
        CollectingDispatcher(),
        tracker(
            {"complaint_type": "slow_response", "language": lang},
            [model.parse(story, today=None)],
        ),
        build_domain(),
    )
    values = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    expected = "this_week" if "three" in story else "this_month"
    assert values.get("waiting_since") == expected
    assert values.get("requested_slot") != "waiting_since"


async def test_an_invalid_answer_says_why_and_keeps_the_buttons(model: TriageModel) -> None:
    first = model.parse("my parcel never came", today=None)
    answer = model.parse("the blue one", today=None)
    dispatcher = CollectingDispatcher()
    events = await ValidateComplaintForm().run(
        dispatcher,
        tracker(
            {"complaint_type": "delivery", "requested_slot": "order_id"},
            [first, answer],
            candidate={"order_id": "the blue one"},
        ),
        build_domain(),
    )
    assert {"event": "slot", "timestamp": None, "name": "order_id", "value": None} in events
    assert dispatcher.messages[0]["response"] == "utter_invalid_order_id_words"
    assert dispatcher.messages[0]["buttons"] == [
        {"title": "button.no_order_id", "payload": "slot:order_id=no_order_id"}
    ]


async def test_record_flags_major_and_habitual(model: TriageModel) -> None:
    parse = model.parse("third time I'm writing about this, I'll take it to the press", today=None)
    events = await ActionRecordComplaint().run(
        CollectingDispatcher(), tracker({"complaints_90d": 2}, [parse]), build_domain()
    )
    values = {e["name"]: e["value"] for e in events}
    assert values["major"] is True and values["habitual"] is True and values["priority"] == 1


EARLIER = [
    {"complaint_type": "delivery", "ticket": 9, "facts": {"order_id": "SO20241105123"}},
    {"complaint_type": "billing", "ticket": 4, "facts": {}},
]


@pytest.mark.parametrize(
    ("complaint_type", "order_id", "ticket"),
    [
        ("delivery", "SO20241105123", 9),
        ("other", "so-2024 1105123", 9),  # the same number, typed another way
        ("delivery", None, 9),  # no number now: the same type
        ("delivery", "SO20249999999", None),  # another order: another problem
        ("billing", "SO20249999999", 4),  # no number then: the same type
        ("product_quality", None, None),
        (None, None, None),
    ],
)
def test_the_same_problem_is_the_same_order_or_the_same_type(
    complaint_type: str | None, order_id: str | None, ticket: int | None
) -> None:
    same = earlier_same_problem(EARLIER, complaint_type, order_id)
    assert (same or {}).get("ticket") == ticket


@pytest.mark.parametrize(
    ("text", "came_back"),
    [
        ("my parcel still hasn't arrived", True),
        ("this is a joke", False),  # a feeling: its type is a guess, no match on it
    ],
)
async def test_record_flags_coming_back_only_on_a_named_problem(
    model: TriageModel, text: str, came_back: bool
) -> None:
    parse = model.parse(text, today=None)
    parse["complaint_type"] = {"name": "delivery", "confidence": 0.9}
    events = await ActionRecordComplaint().run(
        CollectingDispatcher(), tracker({"earlier_complaints": EARLIER}, [parse]), build_domain()
    )
    values = {e["name"]: e["value"] for e in events}
    assert ("came_back" in values["major_reasons"]) is came_back
    assert values["major"] is came_back
    assert (values["came_back"] or {}).get("ticket") == (9 if came_back else None)


async def test_handoff_pauses_and_offers_the_policy_alternative() -> None:
    dispatcher = CollectingDispatcher()
    slots = {
        "complaint_type": "product_quality",
        "purchase_date": "within_year",
        "ticket_ref": "#7",
    }
    events = await ActionHandoff().run(
        dispatcher, tracker(slots, [{"text": "", "entities": []}]), build_domain()
    )
    assert events[-1] == {"event": "pause", "timestamp": None}
    assert [m["response"] for m in dispatcher.messages] == [
        "utter_policy_warranty_repair",
        "utter_next_steps",
    ]  # the close (step 5's question, the thanks) is the engine's


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python -m rasa_sdk --actions actions` process on 127.0.0.1."""
    port = _free_port()
    log = tmp_path_factory.mktemp("action-server") / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"action server did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _conversation(customer: Customer) -> list[str]:
    await customer.say("I was charged twice for order SO20241105123")
    await customer.agree("Refund")
    await customer.answer_questions({"utter_ask_amount": "45.90"})
    await customer.tap("Yes, all correct")
    return customer.all_keys


async def test_the_remote_action_server_gives_the_same_conversation(
    settings: Settings,
    model: TriageModel,
    action_server: str,
    make_database_url: Callable[[str], str],
) -> None:
    local = make_engine(settings, model)
    remote_settings = settings.model_copy(
        update={"action_server_url": action_server, "database_url": make_database_url("r")}
    )
    remote = make_engine(remote_settings, model)
    try:
        assert isinstance(remote.actions, RemoteActions)
        here = await _conversation(Customer(local))
        there_customer = Customer(remote)
        there = await _conversation(there_customer)
        assert there == here
        assert there_customer.status == "handed_off"
        assert there_customer.ticket().summary_data["facts"]["amount"] == 45.9
    finally:
        for engine in (local, remote):
            await engine.close()
            engine.db.dispose()


async def test_an_unreachable_action_server_loses_nothing(
    settings: Settings, model: TriageModel
) -> None:
    down = settings.model_copy(
        update={"action_server_url": f"http://127.0.0.1:{_free_port()}/webhook"}
    )
    engine = make_engine(down, model)
    try:
        anna = Customer(engine)
        await anna.say("my parcel never arrived")
        assert anna.keys == ["utter_error"]
        assert anna.status == "handed_off"
        ticket = anna.ticket()
        assert (ticket.kind, ticket.priority) == ("error", 1)
    finally:
        await engine.close()
        engine.db.dispose()
