"""Valid v1 events for tests: the contract fixtures, changed where a test cares."""

from __future__ import annotations

import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from ledger.contract import parse_event

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VALID_EVENTS = FIXTURES / "contract" / "valid_events.ndjson"


@cache
def _examples() -> dict[str, dict[str, Any]]:
    examples = {}
    for line in VALID_EVENTS.read_text().splitlines():
        if line.strip():
            event = json.loads(line)
            examples.setdefault(event["type"], event)
    return examples


def wire(kind: str, **changes: Any) -> dict[str, Any]:
    """A valid wire event of ``kind`` with a fresh event_id; ``changes`` are deep-merged
    (``subject={...}``, ``data={...}``; a value of ``None`` removes the key)."""
    event = copy.deepcopy(_examples()[kind])
    event["event_id"] = str(uuid.uuid4())
    _merge(event, changes)
    return event


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def event(kind: str, **changes: Any) -> Any:
    """A validated contract event (see ``wire``)."""
    return parse_event(json.dumps(wire(kind, **changes)))
