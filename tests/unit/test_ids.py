"""UUIDv7 for the ids the ledger mints itself (RFC 9562 §5.7)."""

from __future__ import annotations

import uuid

from ledger.ids import uuid7

# 2022-02-22T19:22:22.000Z, the timestamp of RFC 9562's appendix A.6 example.
RFC_EXAMPLE_NS = 0x017F22E279B0 * 1_000_000


def test_version_variant_and_timestamp_follow_rfc_9562() -> None:
    value = uuid7(RFC_EXAMPLE_NS + 999_999)  # sub-millisecond part is dropped
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.hex[:12] == "017f22e279b0"  # unix_ts_ms, big-endian, as in the example


def test_ids_sort_by_millisecond() -> None:
    earlier = [uuid7(RFC_EXAMPLE_NS + n * 1_000_000) for n in range(200)]
    assert sorted(earlier) == earlier
    assert sorted(map(str, earlier)) == [str(u) for u in earlier]  # text order too


def test_ids_within_one_millisecond_are_distinct() -> None:
    ids = {uuid7(RFC_EXAMPLE_NS) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert {u.hex[:12] for u in ids} == {"017f22e279b0"}


def test_default_clock_is_now() -> None:
    import time

    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= int(value.hex[:12], 16) <= after
