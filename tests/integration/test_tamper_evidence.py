"""`ledger verify` catches every kind of tampering a superuser could do behind the guards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import psycopg
import pytest

from ledger.store import Incoming, Origin
from ledger.store import verify as verify_module
from ledger.store.chain import chain_hash
from ledger.store.checkpoints import create_checkpoint, export_checkpoints, verify_export_signature
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.verify import verify as verify_report
from tests.support.cli import ledger
from tests.support.events import event

pytestmark = pytest.mark.integration

PUMPS = ("P1", "P2", "P3")


def _append(store: EventStore, per_pump: int, pumps: tuple[str, ...] = PUMPS) -> None:
    items = []
    for n in range(per_pump):
        for pump in pumps:
            e = event("infusion.status_reported", subject={"pump_id": pump, "channel": "A"},
                      data={"volume_infused": {"value": f"{n}.5", "unit": "mL"}})
            items.append(Incoming(e, Origin("kafka", f"t:0:{n}")))
    store.append(items)


@pytest.fixture
def ledger_db(database: ConnectionParams, tmp_path: Path) -> Iterator[ConnectionParams]:
    """Three pump streams; checkpoint 1 over 15 events, checkpoint 2 over 9 more, exported;
    checkpoint 2's range holds a gap in the notification ids (a rolled-back append) after
    the last event of P2's stream."""
    with EventStore(database) as store:
        _append(store, 5)
        create_checkpoint(database.conninfo)
        _append(store, 2)
        with psycopg.connect(database.conninfo) as conn:  # consume an id, then roll back
            conn.execute("SELECT nextval('ledger_events_notification_id_seq')")
            conn.rollback()
        _append(store, 1, pumps=("P1", "P3"))
        create_checkpoint(database.conninfo)
    export_checkpoints(database.conninfo, tmp_path / "outside.json", database_label="test")
    yield database


def superuser(params: ConnectionParams) -> psycopg.Connection:
    conn = psycopg.connect(params.conninfo, autocommit=True)
    conn.execute("SET session_replication_role = replica")  # triggers off: the attack
    return conn


def row(conn: psycopg.Connection, stream: str, version: int) -> tuple:
    return conn.execute(
        "SELECT notification_id, state, hash FROM ledger_events WHERE stream = %s"
        " AND originator_version = %s", (stream, version)).fetchone()


STREAM = "channel:north-campus:P2:A"


def verify(params: ConnectionParams, *extra: str) -> tuple[int, dict, str]:
    result = ledger("verify", *extra, database=params)
    return result.code, result.summary, result.stderr


def test_an_untouched_ledger_verifies_intact(ledger_db: ConnectionParams, tmp_path: Path) -> None:
    code, summary, _ = verify(ledger_db, "--checkpoints", str(tmp_path / "outside.json"))
    assert code == 0
    assert summary == {"verified_events": 23, "streams": 3, "checkpoints": 2,
                       "unanchored_events": 0, "access_records": 0, "access_seals": 0,
                       "problems": 0, "ok": True, "first_problem": None}


def test_a_changed_byte_in_one_payload_is_found_and_named(ledger_db: ConnectionParams) -> None:
    with superuser(ledger_db) as conn:
        position, state, _ = row(conn, STREAM, 3)
        forged = state.replace(b'"2.5"', b'"7.5"')  # version 3 recorded 2.5 mL
        assert forged != state
        conn.execute("UPDATE ledger_events SET state = %s WHERE notification_id = %s",
                      (forged, position))
    code, summary, stderr = verify(ledger_db)
    assert code == 2
    assert summary["ok"] is False
    assert summary["first_problem"] == {
        "kind": "hash_mismatch", "detail": "recomputed hash differs from stored hash",
        "stream": STREAM, "version": 3, "notification_id": position,
    }
    assert "checkpoint 1: the Merkle root" not in stderr  # hashes untouched: root still holds


def test_a_deleted_event_in_the_middle_of_a_stream_is_found(ledger_db: ConnectionParams) -> None:
    with superuser(ledger_db) as conn:
        conn.execute("DELETE FROM ledger_events WHERE stream = %s AND originator_version = 2",
                     (STREAM,))
    code, summary, _ = verify(ledger_db)
    assert code == 2
    problem = summary["first_problem"]
    assert (problem["kind"], problem["stream"], problem["version"]) == ("version_gap", STREAM, 3)


def test_swapped_payloads_of_two_events_are_found(ledger_db: ConnectionParams) -> None:
    with superuser(ledger_db) as conn:
        first, state_a, _ = row(conn, STREAM, 2)
        second, state_b, _ = row(conn, STREAM, 4)
        conn.execute("UPDATE ledger_events SET state = %s WHERE notification_id = %s",
                     (state_b, first))
        conn.execute("UPDATE ledger_events SET state = %s WHERE notification_id = %s",
                     (state_a, second))
    code, summary, stderr = verify(ledger_db)
    assert code == 2
    assert summary["problems"] >= 2
    assert f"stream={STREAM} version=2 position={first}" in stderr
    assert f"stream={STREAM} version=4 position={second}" in stderr


def test_deleting_a_streams_last_events_and_their_checkpoint_is_caught_by_the_outside_copy(
    ledger_db: ConnectionParams, tmp_path: Path
) -> None:
    with superuser(ledger_db) as conn:
        conn.execute("DELETE FROM ledger_events WHERE stream = %s AND originator_version > 5",
                     (STREAM,))
        conn.execute("DELETE FROM ledger_checkpoints WHERE checkpoint_id = 2")
    code, summary, _ = verify(ledger_db)
    assert code == 0  # inside the database alone, this rewrite is consistent
    assert summary["unanchored_events"] > 0
    code, summary, stderr = verify(ledger_db, "--checkpoints", str(tmp_path / "outside.json"))
    assert code == 2
    assert summary["first_problem"]["kind"] == "checkpoint_missing"
    assert f"stream={STREAM} version=7" in stderr


def _forge(conn: psycopg.Connection, notification_id: int) -> None:
    """A well-formed event with a correct chain link, slipped into a gap of the global order."""
    last_version, last_hash = conn.execute(
        "SELECT originator_version, hash FROM ledger_events WHERE stream = %s"
        " ORDER BY originator_version DESC LIMIT 1", (STREAM,)).fetchone()
    template = conn.execute(
        "SELECT originator_id, topic, state, event_id FROM ledger_events WHERE stream = %s"
        " AND originator_version = %s", (STREAM, last_version)).fetchone()
    record = json.loads(template[2])
    record["stream_version"] = last_version + 1
    record["event"]["event_id"] = "00000000-0000-4000-8000-00000000f0f0"
    record["event"]["data"]["volume_infused"]["value"] = "999"
    state = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    # A careful forger copies the record's clocks into the columns, as the ledger would.
    conn.execute(
        "INSERT INTO ledger_events (originator_id, originator_version, topic, state,"
        " notification_id, event_id, stream, occurred_at, received_at, recorded_at, hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (template[0], last_version + 1, template[1], state, notification_id,
         record["event"]["event_id"], STREAM, record["event"]["occurred_at"],
         record["event"].get("received_at"), record["recorded_at"],
         chain_hash(bytes(last_hash), state)),
    )


def _gap(conn: psycopg.Connection) -> int:
    (gap,) = conn.execute(
        "SELECT s.i FROM generate_series(1, (SELECT max(notification_id) FROM ledger_events)) s(i)"
        " WHERE NOT EXISTS (SELECT 1 FROM ledger_events WHERE notification_id = s.i) LIMIT 1"
    ).fetchone()
    return int(gap)


def test_a_forged_event_inside_an_anchored_range_breaks_its_checkpoint(
    ledger_db: ConnectionParams,
) -> None:
    with superuser(ledger_db) as conn:
        _forge(conn, _gap(conn))
    code, summary, _ = verify(ledger_db)
    assert code == 2
    assert summary["first_problem"]["kind"] == "checkpoint_mismatch"


def test_a_forged_event_with_recomputed_checkpoints_is_caught_by_the_outside_copy(
    ledger_db: ConnectionParams, tmp_path: Path
) -> None:
    with superuser(ledger_db) as conn:
        _forge(conn, _gap(conn))
        conn.execute("DELETE FROM ledger_checkpoints")
    create_checkpoint(ledger_db.conninfo)  # the attacker re-anchors everything
    code, _, _ = verify(ledger_db)
    assert code == 0  # the database now agrees with itself
    code, summary, stderr = verify(ledger_db, "--checkpoints", str(tmp_path / "outside.json"))
    assert code == 2
    assert summary["first_problem"]["kind"] == "checkpoint_rewritten"
    assert f"stream={STREAM}" in stderr


def test_an_undecodable_row_is_a_finding_not_a_crash(ledger_db: ConnectionParams) -> None:
    with superuser(ledger_db) as conn:
        position, _, _ = row(conn, STREAM, 1)
        garbage = b"\xff\xfe not json"
        conn.execute("UPDATE ledger_events SET state = %s WHERE notification_id = %s",
                     (garbage, position))
    code, _, stderr = verify(ledger_db)
    assert code == 2
    assert "undecodable" in stderr


def test_a_signed_export_verifies_and_detects_editing(
    ledger_db: ConnectionParams, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_path = tmp_path / "signing.pem"
    key_path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    result = ledger("checkpoint", "export", str(tmp_path / "signed.json"), database=ledger_db,
                    env={"LEDGER_CHECKPOINT_SIGNING_KEY": str(key_path)})
    assert result.code == 0, result.stderr
    assert verify_export_signature(tmp_path / "signed.json")
    document = json.loads((tmp_path / "signed.json").read_text())
    document["checkpoints"][0]["event_count"] += 1
    (tmp_path / "signed.json").write_text(json.dumps(document))
    assert not verify_export_signature(tmp_path / "signed.json")


def test_a_column_changed_behind_an_intact_record_is_found_and_named(
    ledger_db: ConnectionParams,
) -> None:
    """The hash covers the record, not the columns readers filter on: the default pass
    compares each column with the record's bytes."""
    with superuser(ledger_db) as conn:
        position, _, _ = row(conn, STREAM, 2)
        conn.execute("UPDATE ledger_events SET topic = 'infusion.stopped'"
                     " WHERE notification_id = %s", (position,))
        other, _, _ = row(conn, STREAM, 4)
        conn.execute("UPDATE ledger_events SET event_id = gen_random_uuid()"
                     " WHERE notification_id = %s", (other,))
    code, summary, stderr = verify(ledger_db)
    assert code == 2
    assert summary["first_problem"] == {
        "kind": "record_mismatch", "detail": "stored record disagrees with its columns",
        "stream": STREAM, "version": 2, "notification_id": position,
    }
    assert f"record_mismatch: stored record disagrees with its columns [stream={STREAM}" \
        f" version=4 position={other}]" in stderr


def test_deep_verification_also_holds_each_record_to_the_contract(
    ledger_db: ConnectionParams,
) -> None:
    """A record re-hashed by someone who could (no checkpoint covers it yet) but that is no
    valid event passes the default byte-level pass and fails the deep one."""
    with EventStore(ledger_db) as store:
        _append(store, 1, pumps=("P2",))
    with superuser(ledger_db) as conn:
        position, state, _ = row(conn, STREAM, 8)
        _, _, previous = row(conn, STREAM, 7)
        forged = state.replace(b'"unit":"mL"', b'"unit":"parsecs"')
        assert forged != state
        conn.execute("UPDATE ledger_events SET state = %s, hash = %s WHERE notification_id = %s",
                     (forged, chain_hash(bytes(previous), forged), position))
    fast = verify_report(ledger_db.conninfo)
    assert fast.ok and fast.unanchored_events == 1
    deep = verify_report(ledger_db.conninfo, deep=True)
    assert not deep.ok
    problem = deep.problems[0]
    assert (problem.kind, problem.stream, problem.version, problem.notification_id) == (
        "contract_violation", STREAM, 8, position)
    code, _, _ = verify(ledger_db)
    assert code == 0
    code, summary, stderr = verify(ledger_db, "--deep")
    assert code == 2
    assert summary["first_problem"]["kind"] == "contract_violation"
    assert "PROBLEM contract_violation: stored event fails the contract" in stderr
    assert "checkpoints (deep): NOT INTACT" in stderr


@pytest.mark.parametrize(
    ("column", "change"),
    [
        ("occurred_at", "occurred_at + interval '1 hour'"),
        ("received_at", "received_at - interval '1 microsecond'"),
        ("received_at", "NULL"),
        ("recorded_at", "recorded_at - interval '1 day'"),
    ],
    ids=["occurred_at shifted", "received_at shifted", "received_at nulled", "recorded_at shifted"],
)
def test_a_clock_column_shifted_behind_an_intact_record_is_found_and_named(
    ledger_db: ConnectionParams, column: str, change: str
) -> None:
    """As-of reads and replay select by the clock columns, which the hash does not cover:
    the default pass compares each with the record's timestamp, as instants."""
    with superuser(ledger_db) as conn:
        position, state, _ = row(conn, STREAM, 3)
        (held,) = conn.execute(
            f"UPDATE ledger_events SET {column} = {change} WHERE notification_id = %s"
            f" RETURNING {column}", (position,)).fetchone()
    record = json.loads(state)
    written = record[column] if column == "recorded_at" else record["event"][column]
    held_text = "NULL" if held is None else held.astimezone(UTC).isoformat().replace(
        "+00:00", "Z")
    code, summary, stderr = verify(ledger_db)
    assert code == 2
    assert summary["problems"] == 1  # hashes, chains and checkpoints all still hold
    detail = f"column {column} is {held_text} but the stored record has {written}"
    assert summary["first_problem"] == {
        "kind": "clock_mismatch", "detail": detail,
        "stream": STREAM, "version": 3, "notification_id": position,
    }
    assert f"PROBLEM clock_mismatch: {detail} [stream={STREAM} version=3" \
        f" position={position}]" in stderr
    deep = verify_report(ledger_db.conninfo, deep=True)  # the deep pass finds it as well
    assert [(p.kind, p.detail, p.notification_id) for p in deep.problems] == [
        ("clock_mismatch", detail, position)]


def test_a_received_at_set_where_the_record_has_none_is_found(
    ledger_db: ConnectionParams,
) -> None:
    with EventStore(ledger_db) as store:
        e = event("infusion.status_reported", received_at=None,
                  subject={"pump_id": "P2", "channel": "A"})
        store.append([Incoming(e, Origin("kafka", "t:0:99"))])
    with superuser(ledger_db) as conn:
        position, _, _ = row(conn, STREAM, 8)
        conn.execute("UPDATE ledger_events SET received_at = occurred_at"
                     " WHERE notification_id = %s", (position,))
    code, summary, _ = verify(ledger_db)
    assert code == 2
    problem = summary["first_problem"]
    assert (problem["kind"], problem["notification_id"]) == ("clock_mismatch", position)
    assert problem["detail"].startswith("column received_at is 2026-")
    assert problem["detail"].endswith(" but the stored record has no received_at")


def test_clocks_with_any_offset_and_an_absent_received_at_verify_on_the_fast_path(
    database: ConnectionParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record keeps the sender's offset, the columns hold the instant: equal instants in
    other spellings are no finding, and none of these rows needs the decoding check."""
    clocks = [
        ("2026-03-14T08:05:00.123456-05:00", "2026-03-14T13:05:00.5Z"),
        ("2026-03-14T18:35:00+05:30", None),
        ("2026-03-15T03:05:00.000001+14:00", "2026-03-14T13:05:00+00:00"),
        ("2026-03-14T13:05:00Z", None),
        ("2026-03-13T23:05:00.1-14:00", "2026-03-14T13:05:01.000100-00:00"),
    ]
    with EventStore(database) as store:
        for n, (occurred, received) in enumerate(clocks):  # one append each: recorded_at too
            e = event("infusion.status_reported", occurred_at=occurred, received_at=received,
                      subject={"pump_id": f"P{n % 2}", "channel": "A"})
            store.append([Incoming(e, Origin("kafka", f"t:0:{n}"))])
    with psycopg.connect(database.conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events WHERE received_at IS NULL"
                            ).fetchone() == (2,)
    decoded: list[int] = []
    slow = verify_module._decode_check
    monkeypatch.setattr(verify_module, "_decode_check",
                        lambda row, *rest: decoded.append(row[0]) or slow(row, *rest))
    report = verify_report(database.conninfo)
    assert report.ok, report.problems
    assert report.verified_events == len(clocks)
    assert decoded == []
    code, summary, _ = verify(database)
    assert code == 0 and summary["ok"] is True
