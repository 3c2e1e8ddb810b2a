"""The Kafka message key of an event: what producers must use, and why.

Kafka keeps order only within a partition, and a key always maps to the same partition.
The ledger chains and versions events per stream (``ledger.store.streams``), so every
event of one stream must travel on one partition, in the order the source emitted them:

* programming, delivery, safety (DERS), alarm and device events → ``subject.pump_id``
  (all channels of a pump share a partition, so a pump-level alarm and its channel events
  stay in order);
* order and documentation events → ``subject.order_id``;
* ``bcma.scan_recorded`` and ``patient.located`` → ``subject.patient_id``.

A wrong key does not corrupt the ledger (each event is still recorded once), but events
of one stream may then be consumed out of order by different consumers, and projections
would see a later rate change before an earlier start. The ledger's producers (the
simulator, ``ledger deadletter resubmit``, the benchmark) use :func:`message_key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PATIENT_KEYED = frozenset({"bcma.scan_recorded", "patient.located"})
ORDER_KEYED_PREFIXES = ("order.", "documentation.")


def key_field(event_type: str) -> str:
    """The ``subject`` field whose value is the message key for ``event_type``."""
    if event_type in PATIENT_KEYED:
        return "patient_id"
    if event_type.startswith(ORDER_KEYED_PREFIXES):
        return "order_id"
    return "pump_id"


def message_key(event: Mapping[str, Any]) -> bytes | None:
    """The key (UTF-8) for a v1 event given as a JSON-like mapping; None if it has none."""
    subject = event.get("subject") or {}
    value = subject.get(key_field(str(event.get("type", ""))))
    return None if value is None else str(value).encode()
