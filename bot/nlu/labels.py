"""The label names the rest of the system depends on (nlu_data/README.md defines them)."""

from __future__ import annotations

from typing import Any, Final, Literal, TypedDict

Axis = Literal["intent", "complaint_type", "motive", "signal"]

DIALOGUE_INTENTS: Final = (
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "inquiry",
    "praise",
    "request_human",
    "complain",
)
COMPLAINT_TYPES: Final = (
    "product_quality",
    "delivery",
    "billing",
    "misleading_marketing",
    "service_attitude",
    "slow_response",
    "after_sales",
    "safety",
    "other",
)
MOTIVES: Final = ("compensation", "fix", "explanation", "apology", "venting", "prevention")
NO_MOTIVE: Final = "unspecified"
"""Training only: a plain report of what went wrong, with no want in it. The motive
model learns it beside the six motives, so such a report leaves every motive with a
low confidence and the dialogue asks what the customer would like; it is never output
(a parse's motive is always one of MOTIVES)."""
SIGNALS: Final = ("major_media", "repeat_contact", "abusive", "threat_of_harm")
ENTITIES: Final = ("order_id", "phone", "email", "amount", "date", "product")
LANGUAGES: Final = ("zh", "en")

COMPLAIN: Final = "complain"

AXIS_OF_LABEL: Final[dict[str, Axis]] = {
    **{name: "intent" for name in DIALOGUE_INTENTS},
    **{name: "complaint_type" for name in COMPLAINT_TYPES},
    **{name: "motive" for name in (*MOTIVES, NO_MOTIVE)},
    **{name: "signal" for name in SIGNALS},
}
LABELS_OF_AXIS: Final[dict[Axis, tuple[str, ...]]] = {
    "intent": DIALOGUE_INTENTS,
    "complaint_type": COMPLAINT_TYPES,
    "motive": MOTIVES,
    "signal": SIGNALS,
}


class Ranked(TypedDict):
    """A label and how sure the model is of it (0..1)."""

    name: str
    confidence: float


class Parse(TypedDict, total=False):
    """The parse of one message (`python -m bot nlu parse` prints it): Rasa's
    /model/parse shape (text, intent, intent_ranking, entities) plus ours. A Rasa NLU
    server (`RASA_NLU_URL`) gives Rasa's keys; the rest may then be missing, so readers
    use `.get` for them."""

    text: str
    language: str
    language_confidence: float
    intent: Ranked
    intent_ranking: list[Ranked]
    complaint_type: Ranked
    complaint_type_ranking: list[Ranked]
    motive: Ranked
    motive_ranking: list[Ranked]
    entities: list[dict[str, Any]]
    signals: list[str]
    signal_scores: dict[str, float]
    signal_phrases: list[str]
