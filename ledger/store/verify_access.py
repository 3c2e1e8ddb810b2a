"""``ledger verify``, access log part: recompute every seal from the access records it names.

Runs inside ``verify``'s read-only REPEATABLE READ transaction, after the ledger walk, so
the records, the seals and their ledger anchors are one snapshot. Findings
(docs/tamper-evidence.md §6):

* ``access_seal_gap`` / ``access_seal_chain`` / ``access_seal_hash`` — the seals are not
  numbered 1, 2, 3 …, a seal's previous hash is not the seal before it, or its own hash
  does not recompute;
* ``access_record_missing`` / ``access_records_root`` — a record a seal names is gone, or
  the records' events no longer give the seal's Merkle root (a record was altered);
* ``access_seal_unanchored`` / ``access_seal_anchor`` — a seal has no ``access.sealed``
  event in the ledger (the newest one gets a grace period: the sealer writes the seal row
  first and its event right after), or the event disagrees with the seal;
* ``access_record_unsealed`` / ``access_record_mismatch`` — a record at or below the
  sealer's mark is in no seal and has no ``access.recorded`` event of its own (records
  sealed before seals existed have one), or differs from that event.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from ledger.contract import content_digest, parse_event
from ledger.contract.fast import contract_event
from ledger.store.access_seals import (
    RECORD_COLUMNS,
    SEAL_GENESIS,
    Seal,
    access_event,
    records_root,
    seal_hash,
)
from ledger.store.verify_report import Problem, VerifyReport

#: How long the newest seal may wait for its ledger event before that is a finding.
ANCHOR_GRACE = timedelta(minutes=1)
_FETCH = 5_000

_RECORD_COLUMNS = ", ".join(f"a.{c.strip()}" for c in RECORD_COLUMNS.split(","))
# Each seal's records in the order the seal lists them, with the seal's own columns on its
# first row only (a seal lists up to a few hundred ids), and its anchor's stored record.
_SEALED_RECORDS = f"""
SELECT s.seal_id, u.n, u.id AS listed_id, a.id IS NOT NULL AS present,
       CASE WHEN u.n = 1 THEN s.previous_hash END AS previous_hash,
       CASE WHEN u.n = 1 THEN s.seal_hash END AS seal_hash,
       CASE WHEN u.n = 1 THEN s.records_root END AS records_root,
       CASE WHEN u.n = 1 THEN s.event_id END AS anchor_id,
       CASE WHEN u.n = 1 THEN s.sealed_at < now() - %s END AS overdue,
       CASE WHEN u.n = 1 THEN (SELECT e.state FROM ledger_events e
                               WHERE e.event_id = s.event_id) END AS anchor_state,
       {_RECORD_COLUMNS}
FROM api_access_seals s
CROSS JOIN LATERAL unnest(s.record_ids) WITH ORDINALITY AS u(id, n)
LEFT JOIN api_access_log a ON a.id = u.id
ORDER BY s.seal_id, u.n
"""
# Records at or below the mark that no seal lists, with their own ledger event if any.
_UNSEALED_RECORDS = f"""
SELECT {_RECORD_COLUMNS}, e.state AS own_state
FROM api_access_log a
LEFT JOIN (SELECT unnest(record_ids) AS id FROM api_access_seals) sealed ON sealed.id = a.id
LEFT JOIN ledger_events e ON e.event_id = a.event_id
WHERE sealed.id IS NULL AND a.id <= (SELECT sealed_through FROM api_access_seal)
ORDER BY a.id
"""


def verify_access_log(conn: psycopg.Connection[Any], report: VerifyReport) -> None:
    problems = report.problems
    previous: tuple[int, bytes] = (0, SEAL_GENESIS)
    for first, rows in _seals(conn):
        seal_id = int(first["seal_id"])
        where = f"access seal {seal_id}"
        if seal_id != previous[0] + 1:
            problems.append(Problem("access_seal_gap",
                                    f"{where} follows seal {previous[0]}: seals missing"))
        if bytes(first["previous_hash"]) != previous[1]:
            problems.append(Problem("access_seal_chain",
                                    f"{where}: previous hash is not seal {previous[0]}'s hash"))
        ids = [int(row["listed_id"]) for row in rows]
        stored_root, stored_hash = bytes(first["records_root"]), bytes(first["seal_hash"])
        if seal_hash(bytes(first["previous_hash"]), seal_id, ids, stored_root) != stored_hash:
            problems.append(Problem("access_seal_hash", f"{where}: seal hash does not recompute"))
        missing = [row["listed_id"] for row in rows if not row["present"]]
        if missing:
            problems.append(Problem("access_record_missing",
                                    f"{where} names access records that are gone: {missing[:10]}"))
        elif records_root(rows) != stored_root:
            problems.append(Problem("access_records_root",
                                    f"{where}: its records no longer give its Merkle root"
                                    " (a record was altered)"))
        _check_anchor(first, ids, where, problems)
        report.access_seals += 1
        report.access_records += len(ids)
        previous = (seal_id, stored_hash)
    with conn.cursor("access_unsealed", row_factory=dict_row) as cur:
        cur.itersize = _FETCH
        for row in cur.execute(_UNSEALED_RECORDS):
            where = f"access record {row['id']} ({row['event_id']})"
            if row["own_state"] is None:
                problems.append(Problem("access_record_unsealed",
                                        f"{where} is below the sealer's mark but in no seal"))
                continue
            stored = parse_event(orjson.loads(bytes(row["own_state"]))["event"],
                                 allow_internal=True)
            if content_digest(contract_event(access_event(row))) != content_digest(stored):
                problems.append(Problem("access_record_mismatch",
                                        f"{where} differs from its access.recorded event"))
            report.access_records += 1


def _seals(conn: psycopg.Connection[Any]) -> Iterator[tuple[dict[str, Any],
                                                            list[dict[str, Any]]]]:
    """(first row, rows) of each seal, streamed in seal order."""
    with conn.cursor("access_seals", row_factory=dict_row) as cur:
        cur.itersize = _FETCH
        first: dict[str, Any] | None = None
        rows: list[dict[str, Any]] = []
        for row in cur.execute(_SEALED_RECORDS, (ANCHOR_GRACE,)):
            if row["n"] == 1:
                if first is not None:
                    yield first, rows
                first, rows = row, []
            rows.append(row)
        if first is not None:
            yield first, rows


def _check_anchor(first: dict[str, Any], ids: list[int], where: str,
                  problems: list[Problem]) -> None:
    state = first["anchor_state"]
    if state is None:
        if first["overdue"]:
            problems.append(Problem("access_seal_unanchored",
                                    f"{where} has no access.sealed event in the ledger"))
        return
    event = orjson.loads(bytes(state))["event"]
    seal = Seal(int(first["seal_id"]), tuple(ids), bytes(first["records_root"]),
                bytes(first["previous_hash"]), bytes(first["seal_hash"]), first["anchor_id"])
    if event.get("type") != "access.sealed" or event.get("data") != seal.anchor_data():
        problems.append(Problem("access_seal_anchor",
                                f"{where} disagrees with its access.sealed event"))
