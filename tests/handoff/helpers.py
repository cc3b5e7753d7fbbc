"""What the hand-off tests do again and again: a customer's complaint up to the card."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.store import Customer, Ticket
from tests.support.botapi.double import BotApiDouble
from tests.telegram.conftest import AGENTS, STAFF_CHAT

BILLING = "I was charged twice for order SO20241105123, $45.90 each time, refund please"


async def complaint(
    double: BotApiDouble, customers: Any, user_id: int = 601, name: str = "Anna"
) -> Any:
    """A billing complaint through to the confirmed read-back; returns the customer."""
    customer = customers(user_id, name, "en")
    await customer.say(BILLING)
    await customer.tap("Yes")
    await answer_until(customer, "Yes, all correct", "bought it online last month")
    await customer.tap("Yes, all correct")
    await double.wait_for(lambda: card_of(double, name) is not None, 20, "the card")
    return customer


async def complained(double: BotApiDouble, customers: Any) -> tuple[Any, dict[str, Any], int]:
    """Anna's complaint up to its card in a topic: (the customer, the card, the topic's id)."""
    anna = await complaint(double, customers)
    card = card_of(double, "Anna")
    assert card is not None
    return anna, card, int(card["message_thread_id"])


async def taken(
    double: BotApiDouble, customers: Any, agent: int
) -> tuple[Any, dict[str, Any], int]:
    """Anna's complaint, taken by `agent`: (the customer, the card, the topic's id)."""
    anna, card, thread = await complained(double, customers)
    assert (await press(double, agent, card, "Take")).startswith("It's yours")
    # The customer is told who has the case by the outbox, after the press is answered:
    # wait for it, so it is not taken for the answer to what the customer says next.
    name = AGENTS[agent]
    await double.wait_for(
        lambda: any(name in m.get("text", "") for m in double.sent_to(anna.user_id)),
        30,
        "the customer told who has the case",
    )
    return anna, card, thread


def last_to(double: BotApiDouble, chat_id: int, words: str) -> dict[str, Any]:
    """The latest message the bot sent to a chat that contains `words`."""
    return next(m for m in reversed(double.sent_to(chat_id)) if words in m.get("text", ""))


def card_of(double: BotApiDouble, name: str) -> dict[str, Any] | None:
    """The summary card posted for a customer (by first name)."""
    for message in double.sent_to(STAFF_CHAT):
        if message.get("reply_markup") and f"Customer: {name} " in message.get("text", ""):
            return message
    return None


def button(message: dict[str, Any], label: str) -> str:
    """The callback_data of the button with this label."""
    for row in message["reply_markup"]["inline_keyboard"]:
        for item in row:
            if item["text"].startswith(label):
                return str(item["callback_data"])
    raise AssertionError(f"no button {label!r} in {message.get('text')!r}")


async def press(double: BotApiDouble, user_id: int, message: dict[str, Any], label: str) -> str:
    """A member of staff presses a button in the staff group; returns the answer shown."""
    query = double.user_presses(
        user_id, message["message_id"], button(message, label), chat_id=STAFF_CHAT
    )
    await double.wait_for(lambda: double.callbacks[query]["answered"], 20, f"{label} answered")
    return str(double.callbacks[query]["text"] or "")


async def answer_until(customer: Any, final: str, typed: str) -> None:
    """Answer each question with its first button, or typed text when there is none."""
    for _ in range(12):
        if customer.keyboard and customer.keyboard[0] == final:
            return
        last = customer.double.sent_to(customer.user_id)[-1]
        if last.get("reply_markup"):
            await customer.tap(customer.keyboard[0])
        else:
            await customer.say(typed)
    raise AssertionError("no read-back after 12 answers")


def ticket_of(customer: Any) -> Ticket:
    """The customer's latest ticket, fresh from the database."""
    with customer.db.session() as session:
        found = session.exec(
            select(Ticket)
            .join(Customer, col(Customer.id) == Ticket.customer_id)
            .where(Customer.telegram_id == customer.user_id)
            .order_by(col(Ticket.id).desc())
        ).first()
    assert found is not None, "no ticket"
    return found
