"""Recomputing changed entries and enqueueing their new versions, in the batch's transaction.

For every entry a batch touched (its own rows, a new link, a late patient association)
the writer reads the entry and its linked actions, computes the documentation state
(``status``), renders the chart-ready document and the FHIR resource, stores the state on
the entry row, and offers the version to the outbox.

The outbox (``documentation_outbox``, not per generation) takes a version only if no
version of that entry at the same *or a later* revision is there yet. Content is a
function of ``(entry, revision)`` alone, so:

* the live runner enqueues each version once (a second runner is refused by the position's
  compare-and-set, and a retried batch rolled back with its outbox rows);
* a rebuild re-derives versions the live generation already enqueued: skipped; versions
  it sees at other batch boundaries are older than what is enqueued: skipped too — the
  EHR never receives a stale version after a newer one, and a replay never re-sends.

Writers take an advisory transaction lock before taking a ``seq``, so seqs become visible
in commit order (the feed's keyset never skips a row that commits late), and NOTIFY
``documentation_outbox`` so the publisher wakes at commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads

from projections.documentation.fhir import Naming, canonical_json, medication_administration
from projections.documentation.status import documentation_state, entry_document

NOTIFY_CHANNEL = "documentation_outbox"
_LOCK = "documentation_outbox"

_ENTRIES = (
    "SELECT e.*, COALESCE(ep.patient_id, e.patient_id) AS patient_id,"
    " ep.patient_position FROM {entries} e"
    " LEFT JOIN {episodes} ep ON ep.episode_id = e.episode_id"
    " WHERE e.entry_id = ANY(%s::uuid[]) ORDER BY e.first_position, e.entry_id"
)
_ACTIONS = (
    "SELECT l.entry_id AS linked_entry, a.* FROM {links} l"
    " JOIN {actions} a ON a.event_id = l.action_id WHERE l.entry_id = ANY(%s::uuid[])"
)
# Set-based, one statement per batch (not one round trip per entry): a rebuild touches
# every entry many times over.
_UPDATE = (
    "UPDATE {entries} e SET doc_status = v.doc_status, fhir_status = v.fhir_status,"
    " charted = v.charted, charted_rate = v.charted_rate,"
    " charted_dose_rate = v.charted_dose_rate, charted_volume = v.charted_volume,"
    " documentation = v.documentation, validated_at = v.validated_at,"
    " validated_by = v.validated_by, revision = v.revision"
    " FROM unnest(%b::text[], %b::text[], %b::jsonb[], %b::numeric[], %b::numeric[],"
    "  %b::numeric[], %b::jsonb[], %b::timestamptz[], %b::text[], %b::bigint[], %b::uuid[])"
    " AS v(doc_status, fhir_status, charted, charted_rate, charted_dose_rate, charted_volume,"
    "  documentation, validated_at, validated_by, revision, entry_id)"
    " WHERE e.entry_id = v.entry_id"
)
# Entry ids are unique within a batch, so every NOT EXISTS below sees the table as it was
# before the statement, as the one-row-at-a-time form did; ORDER BY keeps the seqs in the
# batch's entry order.
_ENQUEUE = """
INSERT INTO documentation_outbox (entry_id, revision, first_revision, facility_id,
    patient_id, episode_id, kind, doc_status, resource_type, resource_id, entry, resource,
    generation)
SELECT v.entry_id, v.revision,
       NOT EXISTS (SELECT 1 FROM documentation_outbox o WHERE o.entry_id = v.entry_id),
       v.facility_id, v.patient_id, v.episode_id, v.kind, v.doc_status,
       'MedicationAdministration', v.resource_id, v.entry, v.resource, %b::int
FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::text[], %b::uuid[], %b::text[],
            %b::text[], %b::text[], %b::text[], %b::text[]) WITH ORDINALITY
     AS v(entry_id, revision, facility_id, patient_id, episode_id, kind, doc_status,
          resource_id, entry, resource, n)
WHERE NOT EXISTS (SELECT 1 FROM documentation_outbox o
                  WHERE o.entry_id = v.entry_id AND o.revision >= v.revision)
ORDER BY v.n
"""


def as_jsonb(value: Any) -> Jsonb:
    """A jsonb parameter serialised by orjson."""
    return Jsonb(value, dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Row tuples as one list per column (for unnest)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def refresh(cur: psycopg.Cursor[Any], names: dict[str, str], generation: int,
            entry_ids: Iterable[Any], naming: Naming) -> int:
    """Recompute the touched entries and offer their versions to the outbox; return how
    many versions were enqueued."""
    ids = sorted({str(e) for e in entry_ids})
    if not ids:
        return 0
    reader = cur.connection.cursor(row_factory=dict_row)
    # orjson rather than the stdlib's json both ways: the same values (every number here is
    # a decimal string, and jsonb normalises the text), at a fraction of the cost for the
    # tens of thousands of entries a rebuild chunk recomputes.
    set_json_loads(orjson.loads, reader)
    reader.execute(_ENTRIES.format(**names).encode(), (ids,))
    entries = reader.fetchall()
    reader.execute(_ACTIONS.format(**names).encode(), (ids,))
    linked: dict[str, list[dict[str, Any]]] = {}
    for action in reader.fetchall():
        linked.setdefault(str(action["linked_entry"]), []).append(action)
    updates, versions = [], []
    for entry in entries:
        state = documentation_state(entry, linked.get(str(entry["entry_id"]), []))
        facts = entry["facts"]
        updates.append((
            state.status, state.fhir_status, as_jsonb(state.charted),
            state.charted_value("rate", facts), state.charted_value("dose_rate", facts),
            state.charted_value("volume" if entry["kind"] in ("volume", "bolus")
                                else "volume_infused", facts),
            as_jsonb(state.history), state.validated_at, state.validated_by, state.revision,
            entry["entry_id"],
        ))
        document = entry_document(entry, state)
        resource = medication_administration(document, naming)
        versions.append((
            entry["entry_id"], state.revision, entry["facility_id"], entry["patient_id"],
            entry["episode_id"], entry["kind"], state.status, resource["id"],
            canonical_json(document), canonical_json(resource),
        ))
    if updates:
        # %b (binary) parameters: psycopg escapes text-format array elements with a regex,
        # which costs more than the rest of the refresh for FHIR-sized texts.
        cur.execute(_UPDATE.format(**names).encode(), _columns(updates, 11))
    # Serialise outbox writers (live runner, rebuild) so seqs commit in order; taken last,
    # so the lock is held only for the end of the batch's transaction.
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
    enqueued = 0
    if versions:
        cur.execute(_ENQUEUE.encode(), [generation, *_columns(versions, 10)])
        enqueued = cur.rowcount
    if enqueued:
        cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(generation)))
    return enqueued
