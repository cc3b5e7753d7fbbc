"""The bot's words: a turn's parts rendered into messages, and the read-back summary
(the customer's read-back and the agents' card use the same lines).

Texts come from the response files per language (:class:`Responses`); this module only
puts them together: which paragraph a line joins, where a message ends (at a keyboard),
how a fact reads (the button's words, a sum with its cents).
"""

from __future__ import annotations

from typing import Any

from actions.facts import NOT_GIVEN, load_facts
from bot.dialogue.responses import Responses
from bot.dialogue.turn import Button, Reply, Turn

CURRENCY_SIGNS = {
    "CNY": "¥", "USD": "$", "GBP": "£", "EUR": "€", "INR": "₹", "SGD": "S$", "AUD": "A$",
    "HKD": "HK$",
}  # fmt: skip
"""How a sum reads back in the currency the customer wrote it in (others: "5,000 JPY")."""
SAME_PARAGRAPH = frozenset({"utter_empathy_waited"})
"""Lines that go on the paragraph before them (the wait after the empathy it adds to)."""


class Wording:
    def __init__(self, responses: Responses) -> None:
        self.responses = responses

    def summary_values(self, summary: dict[str, Any], language: str) -> dict[str, str]:
        """The read-back's placeholders: labels in the customer's language."""
        label = self.responses.label
        slots = load_facts().slots
        colon = "：" if language == "zh" else ": "
        lines = []
        currency = summary.get("amount_currency")
        for name, value in (summary.get("facts") or {}).items():
            shown = self.fact_value(name, value, language, currency=currency)
            lines.append(f"{label(f'slot.{name}', language)}{colon}{shown}")
        for name, note in (summary.get("notes") or {}).items():
            # the answer to an open follow-up ("no order number? anything that helps us
            # find it"): under what it is for, not as if it were the order number
            title = self.responses.label_or(
                f"note.{name}",
                language,
                label(f"slot.{name}" if name in slots else "note.correction", language),
            )
            lines.append(f"{title}{colon}{note}")
        fallback = str(summary.get("outcome_text") or label("value.unknown", language))
        outcome_text = self.responses.label_or(
            f"outcome.{summary.get('desired_outcome')}", language, fallback
        )
        words = str(summary.get("customer_words") or "")
        return {
            "type": label(f"type.{summary.get('complaint_type') or 'other'}", language),
            "outcome": outcome_text,
            "facts": "\n".join(lines) if lines else label("value.unknown", language),
            "words": words if len(words) <= 300 else words[:297] + "…",
        }

    def fact_value(
        self, name: str, value: Any, language: str, *, currency: str | None = None
    ) -> str:
        """A fact as the customer reads it: the button's words, else what they typed (a
        sum with its cents and the currency they wrote: £45.90, not 45.9)."""
        if isinstance(value, int | float) and not isinstance(value, bool) and name == "amount":
            number = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
            if currency in CURRENCY_SIGNS:
                return f"{CURRENCY_SIGNS[currency]}{number}"
            return f"{number} {currency}" if currency else number
        if value == "no_order_id":
            key = "value.none_order"
        elif value in ("amount_unknown", NOT_GIVEN):
            key = "value.unknown"
        elif value in ("yes", "no"):
            key = f"button.{value}_plain"
        else:
            key = f"choice.{name}.{value}"
        return self.responses.label_or(key, language, str(value))

    def summary_text(self, summary: dict[str, Any], language: str) -> str:
        rotation: dict[str, Any] = {}
        return self.responses.render(
            "utter_summary", language, rotation, **self.summary_values(summary, language)
        )

    def render(self, turn: Turn) -> list[Reply]:
        """The turn's parts as messages: lines joined into paragraphs, a message ending
        where a keyboard goes; placeholders filled in the customer's language."""
        rotation = dict(turn.customer.variations)
        replies: list[Reply] = []
        current: Reply | None = None
        joiner = "\n\n"
        for part in turn.parts:
            values = dict(part.values)
            if part.key == "utter_summary":
                values = self.summary_values(values.get("summary") or {}, turn.language)
            if "outcome" in values:
                values["outcome"] = self.responses.label_or(
                    f"outcome.{values['outcome']}", turn.language, str(values["outcome"])
                )
            if "sla_seconds" in values:
                values["sla"] = self.responses.duration(int(values["sla_seconds"]), turn.language)
            values.setdefault("name", turn.customer.name or "")
            if part.key.startswith("faq:"):
                text = str(values["answer"])
            else:
                text = self.responses.render(part.key, turn.language, rotation, **values)
            if part.key in SAME_PARAGRAPH:
                joiner = "" if turn.language == "zh" else " "
            if current is None:
                current = Reply(text=text)
            else:
                current.text += joiner + text
            current.responses.append(part.key)
            joiner = "\n\n"
            if part.key == "utter_greet_brief":
                joiner = "" if turn.language == "zh" else " "
            if part.buttons:
                current.buttons = [
                    Button(
                        label=self.responses.label_or(b["title"], turn.language, b["title"]),
                        payload=b["payload"],
                    )
                    for b in part.buttons
                ]
                replies.append(current)
                current = None
                joiner = "\n\n"
        if current is not None:
            replies.append(current)
        turn.customer.variations = rotation
        return replies
