"""`ledger verify` recomputes the read audit's seals from the access records they name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ledger.ids import uuid7
from ledger.store import Incoming, Origin
from ledger.store import verify_access as verify_access_module
from ledger.store.access_seals import RECORD_COLUMNS, access_event
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.verify import verify
from projections.api.sealer import AuditSealer
from projections.api.writer import LedgerWriter

pytestmark = pytest.mark.integration

_RECORD = (
    "INSERT INTO api_access_log (event_id, occurred_at, request_id, key_id, role, method,"
    " endpoint, path, query, facility_ids, patient_ids, outcome, status_code) VALUES"
    " (%s, now(), %s, 'key-1', 'auditor', 'GET', '/v1/patients/{patient_ref}/infusions',"
    " '/v1/patients/pt_1/infusions', 'limit=5', '{north-campus}', %s, 'allowed', 200)"
    " RETURNING id"
)


def write_records(params: ConnectionParams, count: int, prefix: str) -> list[int]:
    with psycopg.connect(params.conninfo, autocommit=True) as conn:
        return [conn.execute(_RECORD, (uuid7(), f"{prefix}-{n}", [f"MRN-{n}"])).fetchone()[0]
                for n in range(count)]


def seal(params: ConnectionParams) -> int:
    writer = LedgerWriter(params)
    sealer = AuditSealer(params.conninfo, writer)
    try:
        return sealer.seal_once()
    finally:
        sealer.close()
        writer.close()


def superuser(params: ConnectionParams) -> psycopg.Connection[Any]:
    conn = psycopg.connect(params.conninfo, autocommit=True)
    conn.execute("SET session_replication_role = replica")  # triggers off: the attack
    return conn


def kinds(params: ConnectionParams) -> set[str]:
    return {problem.kind for problem in verify(params.conninfo).problems}


@pytest.fixture
def sealed(database: ConnectionParams) -> Iterator[ConnectionParams]:
    """Two seals: records 1-3, then 4-5."""
    write_records(database, 3, "first")
    assert seal(database) == 3
    write_records(database, 2, "second")
    assert seal(database) == 2
    yield database


def test_intact_seals_verify_and_are_counted(sealed: ConnectionParams) -> None:
    report = verify(sealed.conninfo)
    assert report.ok, report.problems
    assert (report.access_records, report.access_seals) == (5, 2)
    assert report.summary()["access_records"] == 5


def test_an_altered_access_record_breaks_its_seal(sealed: ConnectionParams) -> None:
    with superuser(sealed) as conn:
        conn.execute("UPDATE api_access_log SET patient_ids = '{MRN-other}' WHERE id = 2")
    assert kinds(sealed) == {"access_records_root"}


def test_a_deleted_access_record_is_named(sealed: ConnectionParams) -> None:
    with superuser(sealed) as conn:
        conn.execute("DELETE FROM api_access_log WHERE id = 4")
    report = verify(sealed.conninfo)
    assert {p.kind for p in report.problems} == {"access_record_missing"}
    assert "[4]" in report.problems[0].detail


def test_a_record_slipped_in_below_the_mark_is_unsealed(sealed: ConnectionParams) -> None:
    with superuser(sealed) as conn:
        conn.execute(_RECORD.replace("(event_id,", "(id, event_id,").replace(
            "VALUES (%s,", "VALUES (0, %s,"), (uuid7(), "forged", ["MRN-9"]))
    assert kinds(sealed) == {"access_record_unsealed"}


def test_an_altered_seal_breaks_its_hash_and_disagrees_with_its_anchor(
    sealed: ConnectionParams,
) -> None:
    with superuser(sealed) as conn:
        conn.execute("UPDATE api_access_seals SET records_root = sha256('x') WHERE seal_id = 1")
    assert kinds(sealed) == {"access_seal_hash", "access_records_root", "access_seal_anchor"}


def test_a_recomputed_seal_still_disagrees_with_the_ledger(sealed: ConnectionParams) -> None:
    """Rewriting a record and recomputing its seal's root and hash, and the next seal's
    link: only the ledger's anchor (pinned by the ledger's own chain) still tells."""
    from ledger.store.access_seals import records_root, seal_hash

    with superuser(sealed) as conn:
        conn.execute("UPDATE api_access_log SET patient_ids = '{}' WHERE id = 1")
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        rows = cur.execute(f"SELECT {RECORD_COLUMNS} FROM api_access_log WHERE id <= 3"
                           " ORDER BY id").fetchall()
        root = records_root(rows)
        [previous] = conn.execute(
            "SELECT previous_hash FROM api_access_seals WHERE seal_id = 1").fetchone()
        forged = seal_hash(bytes(previous), 1, [1, 2, 3], root)
        conn.execute("UPDATE api_access_seals SET records_root = %s, seal_hash = %s"
                     " WHERE seal_id = 1", (root, forged))
        conn.execute("UPDATE api_access_seals SET previous_hash = %s,"
                     " seal_hash = %s WHERE seal_id = 2",
                     (forged, seal_hash(forged, 2, [4, 5], bytes(conn.execute(
                         "SELECT records_root FROM api_access_seals WHERE seal_id = 2"
                     ).fetchone()[0]))))
    assert kinds(sealed) == {"access_seal_anchor"}


def test_a_removed_seal_breaks_the_chain_and_leaves_its_records_unsealed(
    sealed: ConnectionParams,
) -> None:
    with superuser(sealed) as conn:
        conn.execute("DELETE FROM api_access_seals WHERE seal_id = 1")
    assert kinds(sealed) == {"access_seal_gap", "access_seal_chain", "access_record_unsealed"}


def test_the_newest_seal_may_wait_for_its_anchor_only_briefly(
    database: ConnectionParams, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_records(database, 2, "crash")
    with monkeypatch.context() as patched:
        patched.setattr(AuditSealer, "_anchor", lambda self, seal: None)  # crashed before it
        assert seal(database) == 2
    assert verify(database.conninfo).ok  # the sealer may be between the row and the event
    monkeypatch.setattr(verify_access_module, "ANCHOR_GRACE", verify_access_module.timedelta())
    assert kinds(database) == {"access_seal_unanchored"}
    seal(database)  # the next sealer anchors it
    assert verify(database.conninfo).ok


def test_records_sealed_before_seals_existed_are_checked_against_their_own_events(
    database: ConnectionParams,
) -> None:
    """Before 0050 each record was appended as its own access.recorded event."""
    [record_id] = write_records(database, 1, "legacy")
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        row = cur.execute(f"SELECT {RECORD_COLUMNS} FROM api_access_log").fetchone()
        conn.execute("UPDATE api_access_seal SET sealed_through = %s", (record_id,))
    with EventStore(database) as store:
        store.append([Incoming(access_event(row), Origin("internal", "api-sealer"))])
    assert verify(database.conninfo).ok
    with superuser(database) as conn:
        conn.execute("UPDATE api_access_log SET outcome = 'denied' WHERE id = %s", (record_id,))
    assert kinds(database) == {"access_record_mismatch"}
