"""The Bot API double: a local Telegram that checks every request against the official spec."""
