"""Running the engine in memory over events: incident replay, what-if rule sets, tests.

The same engine the projection runs, fed from a list of wire events (or stored records)
instead of the ledger, with nothing written anywhere: a safety officer replaying an
incident, or a committee trying a changed rule set, sees exactly the findings the
projection would compute for those events in that order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ledger.contract import parse_event, wire_dict
from ledger.store.reader import StoredRecord
from ledger.store.streams import stream_key
from projections.discrepancies import clock, ruleset
from projections.discrepancies.engine import HANDLED, Engine


def to_record(event: dict[str, Any], position: int) -> StoredRecord:
    """A stored record of a wire event at ``position``, as the ledger would hold it.

    ``recorded_at`` is taken from the event's own clocks (received, else occurred): a
    replay never reads the wall clock.
    """
    parsed = parse_event(json.dumps(event), allow_internal=True)
    received: datetime | None = getattr(parsed, "received_at", None)
    return StoredRecord(
        notification_id=position, stream=stream_key(parsed), version=0, type=parsed.type,
        event_id=parsed.event_id, occurred_at=parsed.occurred_at, received_at=received,
        recorded_at=received or parsed.occurred_at, hash=b"", event=wire_dict(parsed),
        origin={"kind": "replay", "position": str(position)},
    )


def records(events: Iterable[dict[str, Any]], start: int = 1) -> list[StoredRecord]:
    return [to_record(event, start + index) for index, event in enumerate(events)]


def replay(items: Iterable[dict[str, Any] | StoredRecord],
           rules: ruleset.RuleSet | None = None) -> Engine:
    """Apply events (wire dicts or stored records) in the given order; return the engine."""
    engine = Engine(rules or ruleset.load())
    for position, item in enumerate(items, start=1):
        record = item if isinstance(item, StoredRecord) else to_record(item, position)
        if record.type in HANDLED:
            engine.process(record)
    return engine


def findings(engine: Engine) -> list[dict[str, Any]]:
    """Every finding the engine produced (a replay keeps them all), in opening order."""
    return sorted(engine.book.changed.values(),
                  key=lambda f: (f["opened_at"], f["rule_id"], f["finding_id"]))


def describe(finding: dict[str, Any]) -> dict[str, Any]:
    """A finding with readable instants, for printing and JSON output."""
    readable = dict(finding)
    for key in ("opened_at", "detected_at", "resolved_at", "reviewed_at"):
        readable[key] = clock.iso(finding.get(key))
    return readable
