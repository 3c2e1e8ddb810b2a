"""Which stream an event belongs to.

A stream is the unit of ordering, versioning and hash chaining. The split follows who
produces the facts and how Kafka keys them (EVENTS.md "Transport"), so one producer's
facts about one thing arrive in order on one partition:

* ``order:<facility>:<order_id>`` — order lifecycle and EHR documentation (keyed by order);
* ``patient:<facility>:<patient_id>`` — ADT location and BCMA scans (keyed by patient);
* ``channel:<facility>:<pump_id>:<channel>`` — association, programming, delivery and DERS
  events of one pump channel (keyed by pump); infusion episodes are derived from these;
* ``pump:<facility>:<pump_id>`` — device-level facts: alarms (``alarm_id`` is unique per
  pump, and a channel alarm may concern the whole pump), library activation,
  communication and clock changes;
* ``finding:<finding_id>`` and ``access:<YYYY-MM-DD>`` — the product's own internal facts.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from functools import lru_cache
from typing import Any

DEFAULT_FACILITY = "default"
# A fixed namespace: stream ids must be the same on every machine, forever.
STREAM_NAMESPACE = uuid.UUID("5b0f1d2e-7c3a-5e8b-9a41-6d2c0f3e8a17")

_ORDER_TYPES = ("order.", "documentation.")
_PATIENT_TYPES = frozenset({"patient.located", "bcma.scan_recorded"})
_PUMP_TYPES = frozenset(
    {"pump.library_activated", "pump.communication_changed", "pump.clock_changed"}
)


def _part(value: str | None) -> str:
    # ':' separates the parts of a key and '%' escapes, so ids containing them stay unambiguous.
    return (value or "").replace("%", "%25").replace(":", "%3A")


def stream_key(event: Any) -> str:
    """The stream key of a validated contract event."""
    kind = event.type
    subject = event.subject
    facility = _part(subject.facility_id or DEFAULT_FACILITY)
    if kind.startswith(_ORDER_TYPES):
        return f"order:{facility}:{_part(subject.order_id)}"
    if kind in _PATIENT_TYPES:
        return f"patient:{facility}:{_part(subject.patient_id)}"
    if kind in _PUMP_TYPES or kind.startswith("alarm."):
        return f"pump:{facility}:{_part(subject.pump_id)}"
    if kind == "discrepancy.reviewed":
        return f"finding:{_part(event.data.finding_id)}"
    if kind in ("access.recorded", "access.sealed"):
        return f"access:{event.occurred_at.astimezone(UTC).date().isoformat()}"
    # association, programming, delivery and DERS events: one pump channel
    return f"channel:{facility}:{_part(subject.pump_id)}:{_part(subject.channel)}"


# Memoised: a stream receives many events and uuid5 (SHA-1 plus UUID construction) costs
# about as much per event as the rest of the stream bookkeeping. Bounded, so a process
# that sees millions of streams keeps a fixed footprint.
@lru_cache(maxsize=131_072)
def stream_id(key: str) -> uuid.UUID:
    """The eventsourcing originator id of a stream: a UUIDv5 of its key."""
    return uuid.uuid5(STREAM_NAMESPACE, key)
