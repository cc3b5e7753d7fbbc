"""A customer's message or button press, through the engine and back: the typing
indicator, a pressed keyboard settled, a press that continues its message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import (
    Message,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.dialogue import Incoming, Reply, TurnResult
from bot.store.models import utcnow
from bot.telegram.render import escape, keyboard
from bot.telegram.request import ON_SEND, ReplyMark
from bot.telegram.wiring import (
    ANSWER_WITHIN,
    ARRIVED,
    MAX_TEXT,
    MERGED,
    TYPING_AFTER,
    Wiring,
    media_of,
    pressed_label,
)

log = logging.getLogger(__name__)


class Customers(Wiring):
    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None
        user = message.from_user
        if user is None:
            return
        media = media_of(message)
        text = message.text if message.text is not None else (message.caption or "")
        merged = MERGED.get()
        lines = [text, *(later["message"]["text"] for later in merged)]
        incoming = Incoming(
            user_id=user.id,
            chat_id=message.chat.id,
            name=user.first_name,
            text="\n".join(lines),
            language_hint=user.language_code,
            message_ref=merged[-1]["message"]["message_id"] if merged else message.message_id,
            media=media,
            update_id=update.update_id,
            merged_updates=tuple(int(later["update_id"]) for later in merged),
        )
        async with self._typing(context, message.chat.id):
            result = await self.engine.handle(incoming)
        if result.duplicate and not (result.replies or result.ticket_id or result.staff_posts):
            log.info("update %s already handled; skipped", update.update_id)
            return
        await self._send_all(context, message.chat.id, result.replies)
        self._after_turn(context, result)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        arrived = ARRIVED.get()
        if arrived is None or utcnow() - arrived < ANSWER_WITHIN:
            try:
                await query.answer()
            except BadRequest:  # answered too late after all: Telegram says so, fine
                pass
            except TelegramError as error:  # it only stops the spinner: the press counts
                log.warning("press in chat %s not acknowledged: %s", query.from_user.id, error)
        keyboard_message = query.message if isinstance(query.message, Message) else None
        chat_id = keyboard_message.chat.id if keyboard_message else query.from_user.id
        label = pressed_label(keyboard_message, query.data)
        incoming = Incoming(
            user_id=query.from_user.id,
            chat_id=chat_id,
            name=query.from_user.first_name,
            text=label or "",
            payload=query.data or "",
            language_hint=query.from_user.language_code,
            button_ref=keyboard_message.message_id if keyboard_message else None,
            update_id=update.update_id,
        )
        async with self._typing(context, chat_id):
            result = await self.engine.handle(incoming)
        if result.duplicate and not (result.replies or result.ticket_id or result.staff_posts):
            return
        replies = result.replies
        if keyboard_message is not None and not result.duplicate:
            continued = False
            if result.continues and replies and not self.outbox.busy(chat_id):
                with self.outbox.holding(chat_id):
                    continued = await self._continue(keyboard_message, label, replies[0])
            if not continued:
                await self._settle_keyboard(keyboard_message, label, replies)
        await self._send_all(context, chat_id, replies)
        self._after_turn(context, result)

    async def _continue(self, message: Message, label: str | None, reply: Reply) -> bool:
        """The pressed message shows the choice and becomes the next message (its text
        and keyboard): one Bot API call instead of an edit and a new message. False when
        it would be too long, the reply is not the chat's next message to go, or Telegram
        refuses the edit (then the outbox sends it as a message of its own)."""
        if not label or not message.text or reply.row_id is None:
            return False
        text = f"{message.text}\n\n✓ {label}\n\n{reply.text}"
        if len(text) > MAX_TEXT or self.outbox.first_waiting(message.chat.id) != reply.row_id:
            return False
        ON_SEND.set(ReplyMark(self.outbox.marking, reply.row_id))
        try:
            # An edit may be repeated: the same text again changes nothing
            await self._retrying(
                lambda: message.edit_text(
                    escape(text), parse_mode=ParseMode.HTML, reply_markup=keyboard(reply.buttons)
                )
            )
        except TelegramError as error:
            if self.outbox.left(reply.row_id):  # Telegram may have applied it: not again
                self.outbox.finish(reply.row_id, "unconfirmed")
            else:
                log.info("message %s not continued (%s); sent anew", message.message_id, error)
            return False
        finally:
            ON_SEND.set(None)
        self.outbox.finish(reply.row_id, "sent", message.message_id)
        return True

    def _after_turn(self, context: ContextTypes.DEFAULT_TYPE, result: TurnResult) -> None:
        """A new ticket goes to the staff group; what the turn wrote for topics (the
        customer's message on a handed-off case, notes) follows it. Queued in the
        ticket's lane: the customer's turn does not wait for the group's 20 messages a
        minute (bot/telegram/lanes.py)."""
        bot = context.bot
        if result.ticket_id is not None:
            self.lanes.card(bot, result.ticket_id)
        for ticket_id in result.staff_posts:
            self.lanes.posts(bot, ticket_id)

    async def _settle_keyboard(
        self, message: Message, label: str | None, replies: list[Reply]
    ) -> None:
        """After a press the old keyboard goes: the message shows the choice instead."""
        expired = bool(replies) and replies[0].responses[:1] == ["utter_choice_expired"]
        if self._behind("keyboard_edit"):
            return
        try:
            if label and not expired and message.text:
                await message.edit_text(
                    escape(message.text) + "\n\n" + escape(f"✓ {label}"),
                    parse_mode=ParseMode.HTML,
                    reply_markup=None,
                )
            elif message.reply_markup is not None:
                await message.edit_reply_markup(reply_markup=None)
        except TelegramError as error:  # already edited, too old to edit, or timed out
            log.info("keyboard of message %s left as is: %s", message.message_id, error)

    # --- sending ---------------------------------------------------------------------

    async def _send_all(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, replies: list[Reply]
    ) -> None:
        """The turn's replies are rows already (written with the turn): the outbox sends
        them after anything of this chat's still waiting, and the turn waits a while."""
        await self.outbox.deliver(chat_id)

    @contextlib.asynccontextmanager
    async def _typing(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int
    ) -> AsyncIterator[None]:
        """Show "typing…" only when a reply takes longer than a moment."""

        async def later() -> None:
            await asyncio.sleep(TYPING_AFTER)
            if self._behind("typing"):
                return
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)

        task = asyncio.create_task(later())
        try:
            yield
        finally:
            task.cancel()
