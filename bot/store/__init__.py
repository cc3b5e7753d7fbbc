"""The database: customers, conversations, every message, complaints, tickets, follow-ups."""

from bot.store.db import Database
from bot.store.models import (
    OPEN_TICKET,
    Agent,
    Complaint,
    Conversation,
    ConversationStatus,
    Customer,
    Evidence,
    FollowUp,
    HeldMessage,
    Message,
    Priority,
    ProcessedUpdate,
    StaffMessage,
    StaffPost,
    Stage,
    Ticket,
    TicketStatus,
)

__all__ = [
    "OPEN_TICKET",
    "Agent",
    "Complaint",
    "Conversation",
    "ConversationStatus",
    "Customer",
    "Database",
    "Evidence",
    "FollowUp",
    "HeldMessage",
    "Message",
    "Priority",
    "ProcessedUpdate",
    "StaffMessage",
    "StaffPost",
    "Stage",
    "Ticket",
    "TicketStatus",
]
