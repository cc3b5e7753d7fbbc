"""A ticket's summary card, its topic's name and the history shown to a newly assigned agent."""

from __future__ import annotations

import logging

from sqlmodel import col, select
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)

from bot.payloads import DeskPress
from bot.store import (
    Customer,
    Ticket,
)
from bot.store import Message as MessageRow
from bot.telegram.staff.rows import (
    HISTORY_LINES,
    TOPIC_NAME_LIMIT,
    DeskRows,
)

log = logging.getLogger(__name__)


class Cards(DeskRows):
    def type_label(self, ticket: Ticket) -> str:
        """The complaint type in the staff's language (or the ticket's kind: request_human…)."""
        kind = (ticket.summary_data or {}).get("complaint_type") or ticket.kind
        return self.responses.label_or(f"type.{kind}", self.language, kind)

    def topic_name(self, ticket: Ticket, customer: Customer) -> str:
        return f"#{ticket.id} · {self.type_label(ticket)} · {customer.name}"[:TOPIC_NAME_LIMIT]

    def card(self, ticket: Ticket, customer: Customer, previous: int, photos: int) -> str:
        data = ticket.summary_data or {}
        lines = [
            self.label("staff.card_title", ticket=f"#{ticket.id}", kind=ticket.kind),
            self.label(
                "staff.card_customer",
                name=customer.name,
                lang=customer.language,
                tier=customer.tier,
                previous=previous,
            ),
        ]
        if data:
            values = self.wording.summary_values(data, self.language)
            motive = data.get("motive")
            lines.append(f"{self.label('slot.complaint_type')}: {values['type']}")
            if motive:
                lines.append(
                    f"{self.label(f'motive.{motive}')} · {self.label(f'approach.{motive}')}"
                )
            lines.append(f"{self.label('slot.desired_outcome')}: {values['outcome']}")
            lines.append(values["facts"])
            flags = [self.label(f"staff.flag_{reason}") for reason in data.get("major_reasons", [])]
            if data.get("habitual"):
                flags.append(self.label("staff.flag_habitual"))
            if "abusive" in (data.get("signals") or []):
                flags.append(self.label("staff.flag_abusive"))
            if flags:
                lines.append("⚠ " + " · ".join(flags))
            lines.append(f"“{values['words']}”")
        if photos:
            lines.append(self.label("staff.card_evidence", count=photos))
        lines.append(
            self.label(
                "staff.card_due", due=self.when(ticket.created_at + self.settings.first_contact_sla)
            )
        )
        return "\n".join(lines)

    def card_buttons(self, ticket_id: int) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        self.label(f"staff.{action}"),
                        callback_data=DeskPress(action, ticket_id).pack(),
                    )
                    for action in ("take", "transfer")
                ],
                [
                    InlineKeyboardButton(
                        self.label(f"staff.{action}"),
                        callback_data=DeskPress(action, ticket_id).pack(),
                    )
                    for action in ("escalate", "close")
                ],
            ]
        )

    def history(self, ticket: Ticket, lines: int = HISTORY_LINES) -> str:
        """The customer's earlier tickets and the latest lines of this conversation."""
        with self.db.session() as session:
            earlier = session.exec(
                select(Ticket)
                .where(Ticket.customer_id == ticket.customer_id, col(Ticket.id) != ticket.id)
                .order_by(col(Ticket.id).desc())
                .limit(10)
            ).all()
            transcript = session.exec(
                select(MessageRow)
                .where(MessageRow.conversation_id == ticket.conversation_id)
                .order_by(col(MessageRow.id).desc())
                .limit(lines)
            ).all()
        out = [self.label("staff.history_tickets", count=len(earlier))]
        for row in earlier:
            kind = (row.summary_data or {}).get("complaint_type") or row.kind
            when = row.created_at.astimezone(self.settings.tz).strftime("%Y-%m-%d")
            out.append(
                f"#{row.id} · {when} · {kind} · {row.status} · {row.resolution or ''}".rstrip(" ·")
            )
        out.append(self.label("staff.history_transcript", count=len(transcript)))
        for message in reversed(transcript):
            who = "👤" if message.direction == "in" else "🤖"
            out.append(f"{who} {message.text or message.payload or ''}"[:300])
        return "\n".join(out)
