"""How the engine calls the rasa-sdk actions: in-process through rasa_sdk's
``ActionExecutor`` (the default), or by posting the same JSON to a running action
server (``ACTION_SERVER_URL``, e.g. ``http://127.0.0.1:5055/webhook``)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import aiohttp
from rasa_sdk.executor import ActionExecutor

from actions.facts import load_facts
from bot.nlu.labels import DIALOGUE_INTENTS, ENTITIES

log = logging.getLogger(__name__)

ACTIONS = (
    "action_record_complaint",
    "validate_complaint_form",
    "action_summarise",
    "action_apply_correction",
    "action_handoff",
    "action_schedule_follow_up",
)
ENGINE_SLOTS = (
    "language", "today", "now", "complaint_type", "type_locked", "motive", "motive_locked",
    "desired_outcome", "outcome_text", "signals", "major", "major_reasons", "habitual",
    "priority", "complaints_90d", "customer_tier", "first_words", "notes", "summary",
    "requested_slot", "invalid_attempts", "handoff_kind", "ticket_ref", "policy",
    "first_contact_sla_seconds", "progress_sla_seconds", "corrected", "unsure_order_id",
    "earlier_complaints", "came_back",
)  # fmt: skip


class ActionError(Exception):
    """An action could not be run (server down, action failed, bad answer)."""


class ActionRunner(Protocol):
    async def run(self, call: dict[str, Any]) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def build_domain() -> dict[str, Any]:
    """The Rasa domain the actions see: intents, entities, slots, the form, the actions."""
    facts = load_facts()
    slot_names = [*ENGINE_SLOTS, *facts.slots]
    return {
        "version": "3.1",
        "intents": list(DIALOGUE_INTENTS),
        "entities": list(ENTITIES),
        "slots": {
            name: {"type": "any", "influence_conversation": False, "mappings": [{"type": "custom"}]}
            for name in slot_names
        },
        "forms": {"complaint_form": {"required_slots": list(facts.slots)}},
        "actions": list(ACTIONS),
        "responses": {},
        "session_config": {"session_expiration_time": 0, "carry_over_slots_to_new_session": True},
    }


class InProcessActions:
    """Runs the actions package in this process, exactly as the action server would."""

    def __init__(self, package: str = "actions") -> None:
        self.executor = ActionExecutor()
        self.executor.register_package(package)

    async def run(self, call: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await self.executor.run(call)
        except Exception as error:  # an action raised: report it like the server would
            raise ActionError(f"{call.get('next_action')}: {error}") from error
        if result is None:
            raise ActionError("no action named in the call")
        return {"events": result.events, "responses": result.responses}

    async def close(self) -> None:
        return None


class RemoteActions:
    """Posts to a rasa-sdk action server; one retry on a dropped connection."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def run(self, call: dict[str, Any]) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        for attempt in (1, 2):
            try:
                async with self._session.post(self.url, json=call) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200:
                        detail = body.get("error") if isinstance(body, dict) else body
                        raise ActionError(
                            f"action server answered {response.status} for "
                            f"{call.get('next_action')}: {detail}"
                        )
                    return {
                        "events": body.get("events") or [],
                        "responses": body.get("responses") or [],
                    }
            except (TimeoutError, aiohttp.ClientConnectionError) as error:
                if attempt == 2:
                    raise ActionError(f"action server {self.url} unreachable: {error}") from error
                log.warning("action server %s: %s; retrying once", self.url, error)
            except ValueError as error:
                raise ActionError(f"action server sent no JSON: {error}") from error
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def action_runner(url: str | None) -> ActionRunner:
    return RemoteActions(url) if url else InProcessActions()
