"""Event ids the ledger mints itself: UUIDv7 (RFC 9562), as DOMAIN.md's envelope asks.

Producers bring their own ``event_id`` (any version, EVENTS.md); the events the system
writes itself — access records, discrepancy reviews, a replay's audit record — get a
time-ordered one. The reason is the indexes: ``ledger_events.event_id`` and
``api_access_log.event_id`` are unique B-trees, and a random (v4) id lands on a random
leaf page, so every insert dirties a page nobody touched lately — a read when the index no
longer fits in memory and a full-page image in the WAL after each checkpoint. Ids that
grow with time all land on the rightmost leaves, which stay in memory and are written
once per filling. Every audited API read inserts one such id (its access-log row).
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT = 0x2 << 62
_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7(now_ns: int | None = None) -> uuid.UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, then 74 random bits (version and variant set).

    Ids minted within one millisecond are ordered randomly among themselves: uniqueness
    rests on the 74 random bits (as v4's on 122), and the index locality only needs
    millisecond order.
    """
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    rand_a = (random >> 62) & _RAND_A
    rand_b = random & _RAND_B
    return uuid.UUID(int=(millis & ((1 << 48) - 1)) << 80 | _VERSION_7 | rand_a << 64
                     | _VARIANT | rand_b)
