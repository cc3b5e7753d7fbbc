"""What the agents are to see is written in the customer's own turn.

While a person has the case, each message of the customer's — a photo too — is stored
as a StaffPost row in the same transaction as the turn (bot/dialogue/engine.py,
`_staff_posts`), so a stop before it reaches the staff group loses nothing; the
channel posts the rows in order and deletes them (bot/telegram/lanes.py). /forget
erases rows not posted yet, as it erases the transcript."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.dialogue import Engine, Incoming
from bot.store import Evidence, StaffPost
from bot.store.models import utcnow
from handoff import tickets
from tests.dialogue.conftest import Customer as Talker

PHOTO = {"kind": "photo", "file_id": "receipt-2"}


def _posts(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    with engine.db.session() as session:
        rows = session.exec(select(StaffPost).order_by(col(StaffPost.id))).all()
        return [(row.kind, row.body) for row in rows]


async def _handed_off(engine: Engine) -> Talker:
    anna = Talker(engine)
    await anna.say("I was charged twice for order SO20241105123")
    await anna.tap("Yes")
    await anna.answer_questions()
    await anna.tap("Yes, all correct")
    assert anna.status == "handed_off"
    return anna


async def test_messages_after_the_hand_off_are_written_for_the_topic(staffed: Engine) -> None:
    anna = await _handed_off(staffed)
    assert _posts(staffed) == []  # the card comes from the ticket itself
    ticket_id = anna.ticket().id

    said = await staffed.handle(
        Incoming(user_id=1001, chat_id=1001, name="Anna", text="any news?", message_ref=41)
    )
    sent = await staffed.handle(
        Incoming(user_id=1001, chat_id=1001, name="Anna", text="", media=PHOTO, message_ref=42)
    )
    assert said.staff_posts == [ticket_id] and sent.staff_posts == [ticket_id]
    line = {"name": "Anna", "chat_id": 1001}
    assert _posts(staffed) == [
        ("line", {**line, "text": "any news?", "message_id": 41, "copy": False}),
        ("line", {**line, "text": "", "message_id": 42, "copy": True}),
    ]
    # commands and presses of the bot's buttons are for the bot, not lines for agents
    await anna.say("/forget")
    assert len(_posts(staffed)) == 2
    await anna.tap("Yes, erase everything")
    # nothing of hers is left to post: only the deletion of her ticket's topic
    posts = _posts(staffed)
    assert [(kind, body["key"], body["delete_topic"]) for kind, body in posts] == [
        ("event", "staff.customer_cancelled", True)
    ]
    assert posts[0][1]["ticket_id"] == ticket_id


async def test_without_a_staff_group_nothing_is_written(engine: Engine) -> None:
    anna = await _handed_off(engine)
    result = await engine.handle(
        Incoming(user_id=1001, chat_id=1001, name="Anna", text="any news?", message_ref=41)
    )
    assert result.staff_posts == [] and _posts(engine) == []
    assert anna.status == "handed_off"


async def test_media_after_the_hand_off_is_passed_on_and_the_bot_goes_quiet_once_taken(
    staffed: Engine,
) -> None:
    """A voice message cannot be played by the bot, but the agent can: it is passed on
    (not met with "please type it"); once an agent has the ticket, the bot says nothing
    to a photo or a voice message, the agent answers."""
    anna = await _handed_off(staffed)
    ticket_id = anna.ticket().id

    async def send(media: dict[str, Any], ref: int) -> list[str]:
        result = await staffed.handle(
            Incoming(user_id=1001, chat_id=1001, name="Anna", text="", media=media, message_ref=ref)
        )
        assert result.staff_posts == [ticket_id]  # it reaches the topic, either way
        return [key for reply in result.replies for key in reply.responses]

    voice = {"kind": "voice", "file_id": "voice-1"}
    assert await send(voice, 50) == ["utter_handoff_waiting"]  # "added to your case"
    assert await send(PHOTO, 51) == ["utter_evidence_received"]
    with staffed.db.session() as session:
        assert tickets.take(
            session, ticket_id=ticket_id, agent_id=9001, agent_name="Ada", now=utcnow()
        )
        session.commit()
    assert await send(voice, 52) == []
    assert await send({"kind": "photo", "file_id": "receipt-3"}, 53) == []
    copies = [body["message_id"] for kind, body in _posts(staffed) if body.get("copy")]
    assert copies == [50, 51, 52, 53]
    with staffed.db.session() as session:
        kept = session.exec(select(Evidence.file_id).order_by(col(Evidence.id))).all()
    assert kept == ["receipt-2", "receipt-3"]
