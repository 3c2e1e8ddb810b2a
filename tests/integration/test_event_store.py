"""Idempotent batch append: one transaction, per-event outcomes, positions stored with events."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ledger.store import Incoming, Origin, Outcome, SourcePosition
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.reader import read_stream
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
