"""The Telegram channel: python-telegram-bot front end for the conversation engine."""
