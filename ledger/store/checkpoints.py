"""Global checkpoints: anchoring ranges of the global order, and exporting them.

A checkpoint covers the notifications in ``(after_notification_id, last_notification_id]``:
its Merkle root over their hashes (in notification order), the stream heads the range
moved, and the hash of the previous checkpoint. It is written under the append lock, so no
in-flight append can later commit a notification id inside a range already anchored.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from ledger.store.chain import canonical_json
from ledger.store.merkle import merkle_root
from ledger.store.recorder import APPEND_LOCK_KEY

CHECKPOINT_GENESIS = hashlib.sha256(b"infusion-ledger/v1/checkpoint-genesis").digest()


@dataclass(frozen=True)
class Checkpoint:
    checkpoint_id: int
    after_notification_id: int
    last_notification_id: int
    event_count: int
    merkle_root: bytes
    heads: dict[str, dict[str, Any]]
    previous_hash: bytes
    created_at: datetime
    checkpoint_hash: bytes

    def body(self) -> dict[str, Any]:
        """What ``checkpoint_hash`` is the SHA-256 of (as canonical JSON)."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "after_notification_id": self.after_notification_id,
            "last_notification_id": self.last_notification_id,
            "event_count": self.event_count,
            "merkle_root": self.merkle_root.hex(),
            "heads": self.heads,
            "previous_hash": self.previous_hash.hex(),
            "created_at": self.created_at.astimezone(UTC).isoformat(),
        }

    def computed_hash(self) -> bytes:
        return hashlib.sha256(canonical_json(self.body())).digest()

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "checkpoint_hash": self.checkpoint_hash.hex()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            checkpoint_id=int(data["checkpoint_id"]),
            after_notification_id=int(data["after_notification_id"]),
            last_notification_id=int(data["last_notification_id"]),
            event_count=int(data["event_count"]),
            merkle_root=bytes.fromhex(data["merkle_root"]),
            heads=data["heads"],
            previous_hash=bytes.fromhex(data["previous_hash"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            checkpoint_hash=bytes.fromhex(data["checkpoint_hash"]),
        )


_SELECT = (
    "SELECT checkpoint_id, after_notification_id, last_notification_id, event_count,"
    " merkle_root, heads, previous_hash, created_at, checkpoint_hash FROM ledger_checkpoints"
)


def _from_row(row: tuple[Any, ...]) -> Checkpoint:
    return Checkpoint(
        row[0], row[1], row[2], row[3], bytes(row[4]), row[5], bytes(row[6]), row[7],
        bytes(row[8]),
    )


def load_checkpoints(conn: psycopg.Connection[Any]) -> list[Checkpoint]:
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(_SELECT + " ORDER BY checkpoint_id")
    return [_from_row(row) for row in cur.fetchall()]


def create_checkpoint(conninfo: str, *, min_events: int = 1) -> Checkpoint | None:
    """Anchor everything appended since the last checkpoint, if at least ``min_events``."""
    with psycopg.connect(conninfo) as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK_KEY,))
        cur.execute(_SELECT + " ORDER BY checkpoint_id DESC LIMIT 1")
        row = cur.fetchone()
        last = _from_row(row) if row else None
        after = last.last_notification_id if last else 0
        cur.execute(
            "SELECT notification_id, stream, originator_version, hash FROM ledger_events"
            " WHERE notification_id > %s ORDER BY notification_id",
            (after,),
        )
        rows = cur.fetchall()
        if len(rows) < min_events or not rows:
            return None
        heads: dict[str, dict[str, Any]] = {}
        for _, stream, version, digest in rows:
            heads[stream] = {"version": version, "hash": bytes(digest).hex()}
        cur.execute("SELECT clock_timestamp()")
        (created_at,) = cur.fetchone()  # type: ignore[misc]
        draft = Checkpoint(
            checkpoint_id=(last.checkpoint_id + 1) if last else 1,
            after_notification_id=after,
            last_notification_id=rows[-1][0],
            event_count=len(rows),
            merkle_root=merkle_root([bytes(r[3]) for r in rows]),
            heads=heads,
            previous_hash=last.checkpoint_hash if last else CHECKPOINT_GENESIS,
            created_at=created_at,
            checkpoint_hash=b"",
        )
        checkpoint = Checkpoint(**{**draft.__dict__, "checkpoint_hash": draft.computed_hash()})
        cur.execute(
            "INSERT INTO ledger_checkpoints (checkpoint_id, after_notification_id,"
            " last_notification_id, event_count, merkle_root, heads, previous_hash, created_at,"
            " checkpoint_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                checkpoint.checkpoint_id, checkpoint.after_notification_id,
                checkpoint.last_notification_id, checkpoint.event_count,
                checkpoint.merkle_root, json.dumps(checkpoint.heads), checkpoint.previous_hash,
                checkpoint.created_at, checkpoint.checkpoint_hash,
            ),
        )
        return checkpoint


def export_checkpoints(
    conninfo: str, path: Path, *, database_label: str, signing_key: Path | None = None
) -> dict[str, Any]:
    """Write every checkpoint to a JSON file an auditor keeps outside the system.

    With an Ed25519 private key (PEM), the canonical JSON of the document without its
    ``signature`` member is signed; ``verify_export_signature`` checks it.
    """
    with psycopg.connect(conninfo) as conn:
        checkpoints = load_checkpoints(conn)
    document: dict[str, Any] = {
        "format": "infusion-ledger-checkpoints/v1",
        "database": database_label,
        "checkpoints": [c.to_json() for c in checkpoints],
    }
    if signing_key is not None:
        document["signature"] = _sign(canonical_json(document), signing_key)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


def read_export(path: Path) -> list[Checkpoint]:
    document = json.loads(path.read_text())
    if document.get("format") != "infusion-ledger-checkpoints/v1":
        raise ValueError(f"{path}: not an infusion-ledger checkpoint export")
    return [Checkpoint.from_json(item) for item in document["checkpoints"]]


def _sign(payload: bytes, key_path: Path) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{key_path}: not an Ed25519 private key")
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return {
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(public).decode(),
        "value": base64.b64encode(key.sign(payload)).decode(),
    }


def verify_export_signature(path: Path) -> bool:
    """True when the export carries a valid Ed25519 signature over its content."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    document = json.loads(path.read_text())
    signature = document.pop("signature", None)
    if not signature:
        return False
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(signature["public_key"]))
    try:
        public.verify(base64.b64decode(signature["value"]), canonical_json(document))
    except InvalidSignature:
        return False
    return True
