"""The incident package: everything needed to re-verify a finding outside the system.

``report.html`` / ``timeline.json``, ``events.ndjson`` (every stored record of the selected
streams with its hash and the previous hash, so each chain link can be recomputed from
genesis), ``proofs.json`` (for each stream's last event, its RFC 6962 inclusion proof in the
checkpoint that anchors it, when one does) and ``ruleset.json`` (the rules in force).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from ledger.store.chain import GENESIS_HASH
from ledger.store.checkpoints import load_checkpoints
from ledger.store.merkle import inclusion_proof
from ledger.store.streams import stream_id


def export_package(conn: psycopg.Connection[Any], directory: Path, streams: set[str],
                   documents: dict[str, str], ruleset: dict[str, Any] | None) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (directory / name).write_text(text)
    cur = conn.cursor(row_factory=tuple_row)
    proofs = {}
    checkpoints = load_checkpoints(conn)
    with (directory / "events.ndjson").open("w") as out:
        for stream in sorted(streams):
            cur.execute("SELECT notification_id, originator_version, hash, state FROM"
                        " ledger_events WHERE originator_id = %s ORDER BY originator_version",
                        (stream_id(stream),))
            previous = GENESIS_HASH
            last = None
            for position, version, digest, state in cur.fetchall():
                out.write(json.dumps({
                    "notification_id": position, "stream": stream, "version": version,
                    "previous_hash": previous.hex(), "hash": bytes(digest).hex(),
                    "state": bytes(state).decode(),
                }, sort_keys=True) + "\n")
                previous = bytes(digest)
                last = (position, bytes(digest))
            if last is not None:
                proofs[stream] = _proof(conn, checkpoints, *last)
    (directory / "proofs.json").write_text(json.dumps(proofs, indent=1, sort_keys=True) + "\n")
    (directory / "ruleset.json").write_text(json.dumps(ruleset or {}, indent=1, sort_keys=True)
                                            + "\n")
    return {"directory": str(directory), "streams": len(streams), "anchored": sum(
        1 for p in proofs.values() if p.get("checkpoint_id"))}


def _proof(conn: psycopg.Connection[Any], checkpoints: list[Any], position: int,
           leaf: bytes) -> dict[str, Any]:
    for checkpoint in checkpoints:
        if checkpoint.after_notification_id < position <= checkpoint.last_notification_id:
            hashes = [bytes(r[0]) for r in conn.execute(
                "SELECT hash FROM ledger_events WHERE notification_id > %s AND"
                " notification_id <= %s ORDER BY notification_id",
                (checkpoint.after_notification_id, checkpoint.last_notification_id))]
            index = hashes.index(leaf)
            return {"checkpoint_id": checkpoint.checkpoint_id, "leaf_index": index,
                    "tree_size": len(hashes), "merkle_root": checkpoint.merkle_root.hex(),
                    "audit_path": [h.hex() for h in inclusion_proof(hashes, index)]}
    return {"checkpoint_id": None, "note": "not yet anchored by a checkpoint"}
