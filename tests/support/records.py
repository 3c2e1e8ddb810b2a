"""StoredRecords without a database: what a fold sees, built from wire events."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.contract import parse_event, wire_dict
from ledger.store.reader import StoredRecord
from ledger.store.streams import stream_key
from tests.support.events import wire

_positions = itertools.count(1)
BASE = datetime(2026, 3, 14, 13, 0, tzinfo=UTC)


def record(kind: str, *, minute: float = 0, position: int | None = None, **changes: Any
           ) -> StoredRecord:
    """A validated event of ``kind`` as the store would hand it to a projection."""
    at = BASE + timedelta(minutes=minute)
    changes.setdefault("occurred_at", at.isoformat())
    changes.setdefault("received_at", (at + timedelta(seconds=1)).isoformat())
    event = parse_event(json.dumps(wire(kind, **changes)))
    document = wire_dict(event)
    return StoredRecord(
        notification_id=position if position is not None else next(_positions),
        stream=stream_key(event), version=0, type=event.type, event_id=event.event_id,
        occurred_at=event.occurred_at, received_at=event.received_at,
        recorded_at=at + timedelta(seconds=2), hash=b"", event=document,
        origin={"kind": "test", "ref": "-"},
    )


def channel(pump: str = "PUMP-1", channel_id: str = "A", patient: str | None = "MRN-1",
            order: str | None = "ORD-1") -> dict[str, Any]:
    """A subject for channel events (pass ``patient=None`` / ``order=None`` to leave out)."""
    return {"facility_id": "north-campus", "pump_id": pump, "channel": channel_id,
            "patient_id": patient, "order_id": order}


def fresh_uuid() -> str:
    return str(uuid.uuid4())
