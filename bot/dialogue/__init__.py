"""The conversation: engine (state, storage, actions), policy (the five steps), wording."""

from bot.dialogue.engine import Engine, TurnResult
from bot.dialogue.turn import Button, Incoming, Reply

__all__ = ["Button", "Engine", "Incoming", "Reply", "TurnResult"]
