"""The conversation: engine (state, storage, actions), policy (the five steps), wording."""

from bot.dialogue.engine import MAX_MERGED, Engine
from bot.dialogue.turn import Button, Incoming, Reply, TurnResult

__all__ = ["MAX_MERGED", "Button", "Engine", "Incoming", "Reply", "TurnResult"]
