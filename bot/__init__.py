"""Complaint-handling support bot for Telegram with a human hand-off."""

__version__ = "0.1.0"
