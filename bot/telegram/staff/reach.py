"""Reaching members of staff: supervisors' alerts, a private message that could not be
delivered (mentioned in the group instead), who can be reached privately at start-up.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
)
from telegram.error import (
    BadRequest,
    TelegramError,
)

from bot.html_text import escape
from bot.store import (
    StaffMessage,
    Ticket,
)
from bot.telegram.staff.rows import (
    Outgoing,
)
from bot.telegram.staff.topics import Topics

log = logging.getLogger(__name__)


class Reach(Topics):
    async def alert_supervisors(self, bot: Bot, text: str, ticket: Ticket | None = None) -> None:
        """Each supervisor privately; those Telegram will not let the bot write to are
        mentioned in the staff group with the alert (in the ticket's topic if it has one),
        so an alert always reaches a person. Written as rows and sent by the staff outbox:
        an alert raised while Telegram is away goes when it is back. A decision that
        raises an alert writes it in its own transaction instead (supervisor_alert)."""
        out = Outgoing()
        self.supervisor_alert(out, text, ticket)
        self.write_and_deliver(bot, out)

    async def staff_not_delivered(
        self, bot: Bot, row: StaffMessage, outcome: str, reason: str
    ) -> None:
        """The staff outbox's word on a private message Telegram refused (never pressed
        Start, or blocked the bot): the person is mentioned in the staff group with it.
        One that left and got no answer ("unconfirmed") may have arrived: logged only."""
        if outcome == "unconfirmed":
            log.warning(
                "staff message %s to chat %s perhaps not delivered: %s", row.id, row.chat_id, reason
            )
            return
        if row.mention is None:
            log.error("staff message %s to chat %s not delivered: %s", row.id, row.chat_id, reason)
            return
        if row.chat_id not in self.unreachable:
            log.warning(
                "staff member %s cannot be messaged privately (%s): mentioned in the "
                "staff group instead; ask them to open a chat with the bot and press Start",
                row.chat_id,
                reason,
            )
        self.unreachable.add(row.chat_id)
        ticket = None
        if row.ticket_id is not None:
            with self.db.session() as session:
                ticket = session.get(Ticket, row.ticket_id)
        await self._mention(bot, [row.chat_id], row.mention, ticket)

    async def _mention(
        self, bot: Bot, user_ids: list[int], text: str, ticket: Ticket | None
    ) -> None:
        """The alert in the staff group, mentioning each of them by name (a text mention
        notifies them even without a username): in the ticket's topic, else General (the
        staff outbox posts there if the topic is gone)."""
        if self.staff_chat_id is None:
            log.error("alert for staff %s reached nobody (no staff group): %s", user_ids, text)
            return
        mentions = [
            f'<a href="tg://user?id={user_id}">{escape(await self._first_name(bot, user_id))}</a>'
            for user_id in user_ids
        ]
        html = (
            ", ".join(mentions)
            + "\n"
            + escape(text)
            + "\n\n"
            + escape(self.label("staff.press_start"))
        )
        thread = (
            ticket.topic_id
            if ticket is not None and ticket.staff_chat_id == self.staff_chat_id
            else None
        )
        mention = StaffMessage(
            chat_id=self.staff_chat_id,
            thread_id=thread,
            text=html,
            ticket_id=ticket.id if ticket is not None else None,
        )
        self.write_and_deliver(bot, Outgoing(staff=[mention]))

    async def _first_name(self, bot: Bot, user_id: int) -> str:
        if self.staff_chat_id is not None:
            with contextlib.suppress(TelegramError):
                member = await bot.get_chat_member(self.staff_chat_id, user_id)
                return member.user.first_name
        return str(user_id)

    async def check_reach(self, bot: Bot, menu: list[BotCommand]) -> None:
        """At start-up: which members of staff the bot can write to privately. Telegram
        has no chat with someone who never pressed Start (setMyCommands for that chat
        says "chat not found"), so the staff command menu doubles as the probe."""
        for user_id in sorted(self.staff):
            try:
                await bot.set_my_commands(menu, scope=BotCommandScopeChat(user_id))
            except BadRequest:
                self.unreachable.add(user_id)
                role = "supervisor" if user_id in self.settings.supervisor_ids else "agent"
                log.warning(
                    "%s %s has not pressed Start in a private chat with the bot: their "
                    "alerts are posted in the staff group, mentioning them, until they do",
                    role,
                    user_id,
                )
            else:
                self.unreachable.discard(user_id)
