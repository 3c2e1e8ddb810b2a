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


def remember_timer(ctx: Any, extra: dict[str, Any], rule: str, timer_id: str) -> None:
    """Note a deadline armed on an episode (``extra["timers"]``, which answers walk).

    Entries of deadlines that have since fired or been cancelled are dropped first: every
    walk skips them anyway (an answer or lookup of a timer that is gone does nothing), but
    kept they grew with the episode's history, and a long infusion's telemetry walked
    thousands of them per event. Pruned here, at arming, the list stays as short as the
    deadlines still pending, and the findings are unchanged."""
    timers = extra["timers"]
    pending = ctx.timers.table
    timers[:] = [entry for entry in timers if entry[1] in pending]
    timers.append([rule, timer_id])
