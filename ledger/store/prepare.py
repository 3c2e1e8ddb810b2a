"""Turning validated contract events into rows, outside the append lock.

Everything that does not depend on the stream's current head (stream key, the event's
canonical JSON, the three clocks) is computed here, before the writer takes the lock, so
the serialised part of an append stays as short as possible. The content digest that
tells a duplicate from a conflict is computed only when an ``event_id`` is seen again
(rare), from the event and from the stored copy: nothing per event on the common path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from ledger.contract import content_digest, parse_event
from ledger.contract.fast import contract_event, stored_json
from ledger.store.chain import canonical_json
from ledger.store.streams import stream_id, stream_key
from ledger.store.types import Incoming, Origin


# A NamedTuple, not a frozen dataclass: one is built per appended event, and a frozen
# dataclass's __init__ (object.__setattr__ per field) costs several times more.
class PreparedEvent(NamedTuple):
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


def origin_json(origin: Origin) -> bytes:
    """``canonical_json(origin.as_dict())``: the keys are written in their sorted order
    already ("kind" < "ref"), so orjson need not sort them."""
    return orjson.dumps({"kind": origin.kind, "ref": origin.ref})


def prepare(items: Sequence[Incoming]) -> list[PreparedEvent]:
    prepared = []
    stream_ids: dict[str, tuple[UUID, bytes]] = {}
    for item in items:
        event: Any = item.event
        key = stream_key(event)
        known = stream_ids.get(key)
        if known is None:
            known = stream_ids[key] = (stream_id(key), canonical_json(key))
        prepared.append(
            PreparedEvent(
                event.event_id,
                event.type,
                key,
                known[0],
                event.occurred_at,
                event.received_at,
                event,
                stored_json(event),
                origin_json(item.origin),
                known[1],
            )
        )
    return prepared


def same_content(event: Any, other: Any) -> bool:
    """EVENTS.md's duplicate test: equal content after its normalisations. Either may be a
    fast-path :class:`~ledger.contract.fast.Validated`."""
    return bool(content_digest(contract_event(event)) == content_digest(contract_event(other)))


def stored_event(state: bytes) -> Any:
    """The contract event inside a stored record (to compare a re-sent event with it)."""
    return parse_event(orjson.loads(state)["event"], allow_internal=True)
