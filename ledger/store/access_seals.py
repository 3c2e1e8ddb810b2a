"""Access-log seals: the read audit's own hash chain, anchored in the ledger once per seal.

Every audited API request writes one row to ``api_access_log`` (append-only) before its
response leaves. That row *is* the request's ``access.recorded`` event: :func:`access_event`
rebuilds the event from the row's columns, always to the same bytes. The sealer does not
append one ledger event per row — at an auditor's request rate that was most of the
ledger's volume and, on the API's two cores, the database work that raised every
request's tail latency. It seals the rows it has not sealed yet, a second's worth at a
time:

* ``records_root`` — the RFC 6962 Merkle root (``ledger.store.merkle``) over the rows'
  events as stored bytes (``stored_json``: canonical JSON), in ascending row id order;
* ``seal_hash = SHA-256(previous seal_hash ‖ canonical JSON of {records_root (hex),
  record_ids, seal_id})``, the first seal's previous hash being ``SHA-256(b"infusion-
  ledger/v1/access-seal-genesis")``;
* a row of ``api_access_seals`` (append-only) holding the ids it covers and those hashes,
  and one ``access.sealed`` event in the ledger (stream ``access:<UTC date>``) carrying the
  seal's root and hashes — so the ledger's chains and checkpoints, and an exported
  checkpoint file, pin every sealed record.

``ledger verify`` recomputes all of it from the rows (:func:`verify_access_log`): an access
record altered, deleted or slipped in after sealing breaks its seal's root; a seal altered,
removed or reordered breaks the seal chain or disagrees with its ledger anchor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from ledger.contract import parse_mapping
from ledger.contract.fast import stored_json
from ledger.store.chain import canonical_json
from ledger.store.merkle import merkle_root

API_SYSTEM = "infusion-ledger-api"
SEAL_GENESIS = hashlib.sha256(b"infusion-ledger/v1/access-seal-genesis").digest()

# The access-log columns an event is built from, in the order the queries select them.
RECORD_COLUMNS = (
    "id, event_id, occurred_at, request_id, key_id, role, method, endpoint, query, purpose,"
    " facility_ids, patient_ids, outcome, status_code"
)
SEAL_COLUMNS = (
    "seal_id, record_ids, records_root, previous_hash, seal_hash, event_id, sealed_at"
)
# Seal ``s`` holds access record ``a``. The id range first: it lets the index on
# ``last_record_id`` find the candidate seals, and a row that committed late sits in a
# later seal than its neighbours, whose range spans theirs.
SEAL_HOLDS_RECORD = (
    "s.last_record_id >= a.id AND s.first_record_id <= a.id AND a.id = ANY(s.record_ids)"
)


def access_event(row: dict[str, Any]) -> Any:
    """The ``access.recorded`` event of one access-log row (validated, as the ledger would)."""
    query = row["query"]
    if row["purpose"]:
        # The contract's access record has no purpose field; it travels as a query parameter.
        purpose = "purpose=" + quote(row["purpose"], safe="")
        query = f"{query}&{purpose}" if query else purpose
    facilities = row["facility_ids"]
    return parse_mapping({
        "event_id": str(row["event_id"]),
        "type": "access.recorded",
        "schema_version": 1,
        # In UTC whatever the session's time zone: the sealer and `ledger verify` must
        # build the same bytes from the same row.
        "occurred_at": row["occurred_at"].astimezone(UTC).isoformat(),
        "source": {"system": API_SYSTEM, "kind": "other", "message_id": row["request_id"]},
        "subject": {"facility_id": facilities[0]} if len(facilities) == 1 else {},
        "correlation_id": row["request_id"],
        "data": {
            "key_id": row["key_id"], "role": row["role"],
            "endpoint": f"{row['method']} {row['endpoint']}", "query": query or None,
            "patient_ids": list(row["patient_ids"]), "outcome": row["outcome"],
            "status_code": row["status_code"],
        },
    }, allow_internal=True)


def records_root(rows: Iterable[dict[str, Any]]) -> bytes:
    """The Merkle root over the rows' events as stored bytes (rows in ascending id order)."""
    return merkle_root([stored_json(access_event(row)) for row in rows])


def seal_hash(previous: bytes, seal_id: int, record_ids: Sequence[int], root: bytes) -> bytes:
    body = canonical_json({"record_ids": list(record_ids), "records_root": root.hex(),
                           "seal_id": seal_id})
    return hashlib.sha256(previous + body).digest()


@dataclass(frozen=True)
class Seal:
    seal_id: int
    record_ids: tuple[int, ...]
    records_root: bytes
    previous_hash: bytes
    seal_hash: bytes
    event_id: UUID
    sealed_at: datetime | None = None  # set by the database when the row is written

    @classmethod
    def of(cls, previous: Seal | None, rows: Sequence[dict[str, Any]], event_id: UUID) -> Seal:
        """The next seal after ``previous`` (None: the first) over ``rows`` (ascending ids)."""
        seal_id = previous.seal_id + 1 if previous else 1
        before = previous.seal_hash if previous else SEAL_GENESIS
        ids = tuple(int(row["id"]) for row in rows)
        root = records_root(rows)
        return cls(seal_id, ids, root, before, seal_hash(before, seal_id, ids, root), event_id)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Seal:
        return cls(int(row["seal_id"]), tuple(row["record_ids"]), bytes(row["records_root"]),
                   bytes(row["previous_hash"]), bytes(row["seal_hash"]), row["event_id"],
                   row["sealed_at"])

    def anchor_data(self) -> dict[str, Any]:
        return {"seal_id": self.seal_id, "first_record_id": self.record_ids[0],
                "last_record_id": self.record_ids[-1], "record_count": len(self.record_ids),
                "records_root": self.records_root.hex(),
                "previous_seal_hash": self.previous_hash.hex(),
                "seal_hash": self.seal_hash.hex()}

    def anchor_event(self) -> Any:
        """The ``access.sealed`` event that pins this seal in the ledger (same content
        every time it is built, so re-anchoring after a crash is an absorbed duplicate)."""
        assert self.sealed_at is not None, "anchor a seal once its row is written"
        return parse_mapping({
            "event_id": str(self.event_id), "type": "access.sealed", "schema_version": 1,
            "occurred_at": self.sealed_at.astimezone(UTC).isoformat(),
            "source": {"system": API_SYSTEM, "kind": "other"},
            "subject": {}, "data": self.anchor_data(),
        }, allow_internal=True)
