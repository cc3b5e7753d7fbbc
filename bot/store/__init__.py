"""The database: customers, conversations, every message, complaints, tickets, follow-ups."""

from bot.store.db import Database
from bot.store.models import (
    Complaint,
    Conversation,
    Customer,
    FollowUp,
    Message,
    Ticket,
)

__all__ = ["Complaint", "Conversation", "Customer", "Database", "FollowUp", "Message", "Ticket"]
