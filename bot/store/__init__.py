"""The database: customers, conversations, every message, complaints, tickets, follow-ups."""

from bot.store.db import Database
from bot.store.models import (
    Agent,
    Complaint,
    Conversation,
    Customer,
    Evidence,
    FollowUp,
    HeldMessage,
    Message,
    ProcessedUpdate,
    StaffMessage,
    StaffPost,
    Ticket,
)

__all__ = [
    "Agent",
    "Complaint",
    "Conversation",
    "Customer",
    "Database",
    "Evidence",
    "FollowUp",
    "HeldMessage",
    "Message",
    "ProcessedUpdate",
    "StaffMessage",
    "StaffPost",
    "Ticket",
]
