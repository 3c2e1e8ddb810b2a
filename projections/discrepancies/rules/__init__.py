"""Rule code, one module per family of DOMAIN.md §7 rules.

Each module exposes ``HANDLERS`` (event type -> functions ``(ctx, record)`` run after the
engine folded the event into its model), ``TIMERS`` (rule id -> function ``(ctx, timer)``
run when one of its deadlines fires) and optionally ``ON_EPISODE_END`` (functions
``(ctx, entity, extra)``). Parameters come from the rule set, never from constants here.
"""

from __future__ import annotations

from typing import Any


def episode_condition(entity: dict[str, Any], extra: dict[str, Any]) -> str:
    """The condition key of an episode-scoped rule: channel stream and episode id."""
    return f"{entity['key']}|{extra['id']}"
