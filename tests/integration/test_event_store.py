"""Idempotent batch append: one transaction, per-event outcomes, positions stored with events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ledger.contract.fast import Validated, parse_for_store
from ledger.store import Incoming, Origin, Outcome, SourcePosition
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.reader import read_stream
from tests.support.cli import ledger
from tests.support.events import event, wire

pytestmark = pytest.mark.integration


@pytest.fixture
def store(database: ConnectionParams) -> Iterator[EventStore]:
    with EventStore(database) as store:
        yield store


def incoming(e: object, ref: str = "test:0:0") -> Incoming:
    return Incoming(e, Origin("kafka", ref))


def count_events(params: ConnectionParams) -> int:
    with psycopg.connect(params.conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
        return int(row[0]) if row else 0


def test_a_batch_is_appended_with_versions_per_stream_and_positions_in_commit_order(
    store: EventStore, database: ConnectionParams
) -> None:
    first = event("infusion.started", subject={"pump_id": "P1", "channel": "A"})
    second = event("infusion.rate_changed", subject={"pump_id": "P1", "channel": "A"})
    other = event("infusion.started", subject={"pump_id": "P2", "channel": "A"})
    results = store.append([incoming(first), incoming(second), incoming(other)])
    assert [r.outcome for r in results] == [Outcome.APPENDED] * 3
    assert [r.stream_version for r in results] == [1, 2, 1]
    assert results[0].notification_id < results[1].notification_id < results[2].notification_id
    assert results[0].stream == "channel:north-campus:P1:A"


def test_the_same_event_twice_is_a_duplicate_and_is_stored_once(
    store: EventStore, database: ConnectionParams
) -> None:
    original = event("order.placed")
    (appended,) = store.append([incoming(original)])
    (again,) = store.append([incoming(original, "test:0:9")])
    assert again.outcome is Outcome.DUPLICATE
    assert again.notification_id == appended.notification_id
    assert count_events(database) == 1


def test_equal_content_written_differently_is_still_a_duplicate(store: EventStore) -> None:
    raw = wire("infusion.rate_changed", data={"new_rate": {"value": "14.4", "unit": "mL/h"}},
               occurred_at="2026-03-14T08:22:00-05:00")
    store.append([incoming(event("infusion.rate_changed", **raw))])
    rewritten = dict(raw, occurred_at="2026-03-14T13:22:00Z")  # the same instant
    rewritten["data"] = dict(raw["data"], new_rate={"value": "14.40", "unit": "mL/h"})
    rewritten["received_at"] = "2030-01-01T00:00:00Z"  # ignored by the comparison
    (result,) = store.append([incoming(event("infusion.rate_changed", **rewritten))])
    assert result.outcome is Outcome.DUPLICATE


def test_the_same_event_id_with_other_content_is_a_conflict_and_the_first_stays(
    store: EventStore, database: ConnectionParams
) -> None:
    raw = wire("infusion.rate_changed")
    store.append([incoming(event("infusion.rate_changed", **raw))])
    tampered = dict(raw)
    tampered["data"] = dict(raw["data"], new_rate={"value": "144", "unit": "mL/h"})
    (result,) = store.append([incoming(event("infusion.rate_changed", **tampered))])
    assert result.outcome is Outcome.CONFLICT
    with psycopg.connect(database.conninfo) as conn:
        (stored,) = read_stream(conn, result.stream)
    assert stored.data["new_rate"]["value"] == raw["data"]["new_rate"]["value"]


def test_duplicates_and_conflicts_inside_one_batch_keep_the_first_copy(
    store: EventStore, database: ConnectionParams
) -> None:
    raw = wire("alarm.raised")
    conflicting = dict(raw, data=dict(raw["data"], priority="low"))
    results = store.append([
        incoming(event("alarm.raised", **raw)),
        incoming(event("alarm.raised", **raw)),
        incoming(event("alarm.raised", **conflicting)),
    ])
    assert [r.outcome for r in results] == [Outcome.APPENDED, Outcome.DUPLICATE, Outcome.CONFLICT]
    assert results[1].notification_id == results[0].notification_id
    assert count_events(database) == 1


def test_source_positions_are_stored_with_the_batch_and_only_move_forward(
    store: EventStore,
) -> None:
    store.append([incoming(event("order.placed"))], [SourcePosition("g", "t", 0, 10)])
    store.append([], [SourcePosition("g", "t", 1, 4)])
    store.append([incoming(event("order.placed"))], [SourcePosition("g", "t", 0, 7)])
    assert store.source_positions("g", "t") == {0: 10, 1: 4}
    assert store.source_positions("other", "t") == {}


def test_all_three_clocks_and_the_origin_are_stored(
    store: EventStore, database: ConnectionParams
) -> None:
    e = event("infusion.started", occurred_at="2026-03-14T08:22:00-05:00",
              received_at="2026-03-14T13:22:01Z")
    (result,) = store.append([Incoming(e, Origin("kafka", "infusion.events.v1:2:41"))])
    with psycopg.connect(database.conninfo) as conn:
        (record,) = read_stream(conn, result.stream)
    assert record.occurred_at.isoformat() == "2026-03-14T13:22:00+00:00"
    assert record.received_at is not None and record.received_at.minute == 22
    assert record.recorded_at > record.received_at
    assert record.origin == {"kind": "kafka", "ref": "infusion.events.v1:2:41"}
    assert record.event["occurred_at"].endswith("-05:00")  # the device's own offset is kept


def test_application_save_is_refused_so_no_event_bypasses_the_ledger(store: EventStore) -> None:
    from eventsourcing.domain import Aggregate

    from ledger.errors import LedgerError

    with pytest.raises(LedgerError, match=r"EventStore\.append"):
        store.app.save(Aggregate())


def test_fast_path_events_are_appended_and_told_apart_from_duplicates_and_conflicts(
    store: EventStore, database: ConnectionParams
) -> None:
    raw = wire("infusion.status_reported")
    first = parse_for_store(json.dumps(raw).encode())
    assert isinstance(first, Validated)
    (appended,) = store.append([incoming(first)])
    same = parse_for_store(json.dumps(dict(raw, received_at="2030-01-01T00:00:00Z")))
    changed = dict(raw, data=dict(raw["data"], rate={"value": "144", "unit": "mL/h"}))
    results = store.append([incoming(same), incoming(parse_for_store(json.dumps(changed)))])
    assert appended.outcome is Outcome.APPENDED
    assert [r.outcome for r in results] == [Outcome.DUPLICATE, Outcome.CONFLICT]
    with psycopg.connect(database.conninfo) as conn:
        (stored,) = read_stream(conn, appended.stream)
    assert stored.data["rate"] == raw["data"]["rate"]


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # reported by the test, not lost in the thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _someone_waits_for_the_append_lock(params: ConnectionParams) -> bool:
    with psycopg.connect(params.conninfo) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("looks_first", [False, True], ids=["optimistic", "careful"])
def test_an_event_another_writer_stores_meanwhile_is_still_only_a_duplicate(
    database: ConnectionParams, looks_first: bool
) -> None:
    # B either does not look for stored copies (optimistic: the unique index guards) or
    # looks before taking the append lock (careful, after it recently met a duplicate).
    # Given writer A holding the lock with event X written but not committed, and writer B
    # (having looked for X, not there yet, or not looked) queueing on the lock
    shared = event("infusion.started", subject={"pump_id": "P9", "channel": "A"})
    own = event("infusion.rate_changed", subject={"pump_id": "P9", "channel": "A"})
    holding, release = threading.Event(), threading.Event()

    def hold(outcomes: object) -> None:
        holding.set()
        assert release.wait(30)

    with EventStore(database) as a, EventStore(database) as b:
        b.recorder._careful_batches = 1 if looks_first else 0
        thread_a, outcome_a = _in_thread(
            lambda: a.append([incoming(shared)], before_commit=hold))
        assert holding.wait(30)
        thread_b, outcome_b = _in_thread(
            lambda: b.append([incoming(shared, "test:1:0"), incoming(own, "test:1:1")]))
        deadline = time.monotonic() + 30
        while not _someone_waits_for_the_append_lock(database):
            assert time.monotonic() < deadline, "B never queued on the append lock"
            time.sleep(0.02)
        # When A commits X
        release.set()
        thread_a.join(30)
        thread_b.join(30)
    # Then B's COPY of X is refused by the unique index, and B's retry (looking under the
    # lock) reports X as a duplicate and appends its own event after it
    assert "error" not in outcome_a and "error" not in outcome_b, (outcome_a, outcome_b)
    results = outcome_b["result"]
    assert [r.outcome for r in results] == [Outcome.DUPLICATE, Outcome.APPENDED]
    assert [r.stream_version for r in results] == [1, 2]
    assert count_events(database) == 2
    verified = ledger("verify", database=database)
    assert verified.code == 0, verified.stderr


def test_after_meeting_a_stored_copy_a_writer_looks_first_for_a_while(
    store: EventStore,
) -> None:
    from ledger.store.recorder import _CAREFUL_BATCHES

    first = event("order.placed")
    store.append([incoming(first)])
    assert store.recorder._careful_batches == 0  # nothing met: no lookups
    results = store.append([incoming(first, "test:0:2"), incoming(event("order.placed"))])
    assert [r.outcome for r in results] == [Outcome.DUPLICATE, Outcome.APPENDED]
    assert store.recorder._careful_batches == _CAREFUL_BATCHES
    (again,) = store.append([incoming(first, "test:0:3")])  # found by the lookup, no retry
    assert again.outcome is Outcome.DUPLICATE
    assert store.recorder._careful_batches == _CAREFUL_BATCHES - 1


def test_heads_cached_by_one_writer_follow_what_another_appended_to_the_same_stream(
    database: ConnectionParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    def batch(label: str) -> list[Incoming]:
        return [
            incoming(event("infusion.status_reported",
                           subject={"pump_id": f"P{i % 3}", "channel": "A"}), f"{label}:{i}")
            for i in range(6)
        ]

    # A window that overflows int2 once added to an id (Python ints bind as the smallest type)
    monkeypatch.setattr("ledger.store.recorder._HEAD_SCAN_LIMIT", 32_767)
    with EventStore(database) as a, EventStore(database) as b:
        a.append(batch("a1"))
        b.append(batch("b1"))  # the same three streams, after A's cached heads
        a.append(batch("a2"))  # A forgets exactly the heads B moved
        # And when others appended more than the scan looks through, A drops them all
        monkeypatch.setattr("ledger.store.recorder._HEAD_SCAN_LIMIT", 1)
        b.append(batch("b2"))
        results = a.append(batch("a3"))
    assert [r.stream_version for r in results] == [9, 9, 9, 10, 10, 10]
    assert count_events(database) == 30
    verified = ledger("verify", database=database)
    assert verified.code == 0, verified.stderr
