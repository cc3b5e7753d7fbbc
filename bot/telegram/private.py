"""Agents in a private chat with the bot: /queue, /take [N], /mine, /away, /available.

Only users in AGENT_IDS / SUPERVISOR_IDS reach these; for anyone else the same words
are ordinary customer messages (the conversation engine answers them). Someone who
has left the staff group is told so and gets nothing else (StaffDesk.is_member).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, or_, select
from telegram import Bot, Message

from bot.html_text import escape, split_text
from bot.store import Agent, Customer, FollowUp, StaffMessage, Ticket
from bot.store.models import TicketStatus
from bot.telegram.staff import Outgoing, StaffDesk
from handoff import queue

COMMANDS = ("/queue", "/take", "/mine", "/away", "/available", "/help")
QUEUE_LINES = 20


class AgentChat:
    def __init__(self, desk: StaffDesk) -> None:
        self.desk = desk
        self.settings = desk.settings
        self.db = desk.db

    def handles(self, message: Message) -> bool:
        user, text = message.from_user, (message.text or "")
        command = text.split(maxsplit=1)[0].split("@")[0].lower() if text.strip() else ""
        return user is not None and user.id in self.desk.staff and command in COMMANDS

    async def on_message(self, message: Message, bot: Bot) -> None:
        user = message.from_user
        assert user is not None and message.text is not None
        if not await self.desk.is_member(bot, user):  # left the staff group: no queue, no take
            await self._reply(bot, message, self.desk.label("staff.not_member"))
            return
        self.desk.remember(user.id, user.first_name)
        command, _, argument = message.text.strip().partition(" ")
        command = command.split("@")[0].lower()
        now = datetime.now(UTC)
        if command == "/queue":
            await self._reply(bot, message, self.queue(user.id, now))
        elif command == "/take":
            await self._take(bot, message, argument.strip().lstrip("#"), now)
        elif command == "/mine":
            await self._reply(bot, message, self.mine(user.id))
        elif command in ("/away", "/available"):
            await self._reply(bot, message, self._availability(user.id, command == "/available"))
        else:
            await self._reply(bot, message, self.desk.label("staff.private_help"))

    def queue(self, agent_id: int, now: datetime) -> str:
        label = self.desk.label
        with self.db.session() as session:
            waiting = queue.waiting_in_order(
                session, now=now, starve_after=self.settings.starvation_limit
            )
            mine = len(queue.held_by(session, agent_id))
            capacity = self.settings.agent_capacity
            if not waiting:
                return label("staff.queue_empty", mine=mine, capacity=capacity)
            lines = [label("staff.queue_title", count=len(waiting), mine=mine, capacity=capacity)]
            for place, ticket in enumerate(waiting[:QUEUE_LINES], start=1):
                line = label(
                    "staff.queue_line",
                    place=place,
                    ticket=f"#{ticket.id}",
                    type=self.desk.type_label(ticket),
                    name=self._name(session, ticket),
                    minutes=int((now - ticket.created_at).total_seconds() // 60),
                )
                lines.append(line + (" ⚠" if ticket.priority or ticket.supervisor_flag else ""))
            if len(waiting) > QUEUE_LINES:
                lines.append(f"… +{len(waiting) - QUEUE_LINES}")
        lines.append(label("staff.queue_hint"))
        return "\n".join(lines)

    def mine(self, agent_id: int) -> str:
        label = self.desk.label
        with self.db.session() as session:
            held = queue.held_by(session, agent_id)
            if not held:
                return label("staff.mine_none")
            lines = [
                label("staff.mine_title", count=len(held), capacity=self.settings.agent_capacity)
            ]
            for ticket in held:
                since = self.desk.when(ticket.assigned_at or ticket.created_at)
                lines.append(
                    label(
                        "staff.mine_line",
                        ticket=f"#{ticket.id}",
                        type=self.desk.type_label(ticket),
                        name=self._name(session, ticket),
                        since=since,
                    )
                )
                # open promises and call-backs, and promises missed (still owed)
                owed = session.exec(
                    select(FollowUp)
                    .where(
                        FollowUp.ticket_id == ticket.id,
                        col(FollowUp.kind).in_(("promise", "callback")),
                        or_(FollowUp.status == "pending", FollowUp.outcome == "missed"),
                    )
                    .order_by(col(FollowUp.due_at))
                ).all()
                for item in owed:
                    due = self.desk.when(item.due_at)
                    if item.kind == "callback":
                        line = label("staff.callback_item", when=due)
                    elif item.outcome == "missed":
                        line = label("staff.promise_overdue", note=item.note, due=due)
                    else:
                        line = label("staff.promise_item", note=item.note, due=due)
                    lines.append("   " + line)
        return "\n".join(lines)

    async def _take(self, bot: Bot, message: Message, argument: str, now: datetime) -> None:
        user = message.from_user
        assert user is not None
        label = self.desk.label
        with self.db.session() as session:
            if not argument:
                waiting = queue.waiting_in_order(
                    session, now=now, starve_after=self.settings.starvation_limit
                )
                if not waiting:
                    await self._reply(bot, message, label("staff.nothing_waiting"))
                    return
                ticket_id = waiting[0].id or 0
            elif argument.isdigit():
                ticket_id = int(argument)
                ticket = session.get(Ticket, ticket_id)
                if ticket is None:
                    await self._reply(bot, message, label("staff.unknown"))
                    return
                if ticket.status != TicketStatus.WAITING:
                    await self._reply(
                        bot,
                        message,
                        label("staff.not_waiting", ticket=f"#{ticket_id}", status=ticket.status),
                    )
                    return
            else:
                await self._reply(bot, message, label("staff.take_usage"))
                return
        outcome, answer = await self.desk.take(bot, ticket_id, user.id, user.first_name, now)
        if outcome != "won":
            await self._reply(bot, message, answer)
            return
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
        text = label("staff.took", ticket=f"#{ticket_id}") + " " + answer
        await self.desk.tell_staff(bot, message.chat.id, text, ticket)

    def _availability(self, agent_id: int, available: bool) -> str:
        with self.db.session() as session:
            agent = session.get(Agent, agent_id) or Agent(telegram_id=agent_id)
            agent.available, agent.updated_at = available, datetime.now(UTC)
            session.add(agent)
            session.commit()
            held = len(queue.held_by(session, agent_id))
        if available:
            return self.desk.label("staff.available")
        return self.desk.label("staff.away", count=held)

    def _name(self, session: Session, ticket: Ticket) -> str:
        customer = session.get(Customer, ticket.customer_id)
        return customer.name if customer is not None else "?"

    async def _reply(self, bot: Bot, message: Message, text: str) -> None:
        """The answer as rows for the staff outbox: Telegram away or a restart meanwhile,
        the agent still gets it when it can go."""
        rows = [
            StaffMessage(chat_id=message.chat.id, text=escape(piece)) for piece in split_text(text)
        ]
        self.desk.write_and_deliver(bot, Outgoing(staff=rows))
