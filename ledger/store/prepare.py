"""Turning validated contract events into rows, outside the append lock.

Everything that does not depend on the stream's current head (stream key, the event's
canonical JSON, the three clocks) is computed here, before the writer takes the lock, so
the serialised part of an append stays as short as possible. The content digest that
tells a duplicate from a conflict is computed only when an ``event_id`` is seen again
(rare), from the event and from the stored copy: nothing per event on the common path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from ledger.contract import content_digest, parse_event, wire_json
from ledger.store.chain import canonical_json
from ledger.store.streams import stream_id, stream_key
from ledger.store.types import Incoming


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    event_id: UUID
    topic: str
    stream: str
    stream_uuid: UUID
    occurred_at: datetime
    received_at: datetime | None
    event: Any
    event_json: bytes
    origin_json: bytes
    stream_json: bytes


def prepare(items: Sequence[Incoming]) -> list[PreparedEvent]:
    prepared = []
    stream_ids: dict[str, tuple[UUID, bytes]] = {}
    for item in items:
        event: Any = item.event
        key = stream_key(event)
        if key not in stream_ids:
            stream_ids[key] = (stream_id(key), canonical_json(key))
        uuid_of_stream, key_json = stream_ids[key]
        prepared.append(
            PreparedEvent(
                event_id=event.event_id,
                topic=event.type,
                stream=key,
                stream_uuid=uuid_of_stream,
                occurred_at=event.occurred_at,
                received_at=event.received_at,
                event=event,
                event_json=wire_json(event),
                origin_json=canonical_json(item.origin.as_dict()),
                stream_json=key_json,
            )
        )
    return prepared


def same_content(event: Any, other: Any) -> bool:
    """EVENTS.md's duplicate test: equal content after its normalisations."""
    return bool(content_digest(event) == content_digest(other))


def stored_event(state: bytes) -> Any:
    """The contract event inside a stored record (to compare a re-sent event with it)."""
    return parse_event(orjson.loads(state)["event"], allow_internal=True)
