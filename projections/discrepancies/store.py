"""Reading and writing the engine's state and findings, inside the batch's transaction.

``save`` writes what one batch changed — dirty entities and deadlines (deleted ones
removed), the event clock, changed findings (upserted, guarded by event position),
deferred operations on findings not in memory (late resolutions, reviews; a review of a
finding that does not exist yet is kept as pending), and S1 pages into the outbox (only
for the active generation, at most once per finding and severity). ``load`` rebuilds an
engine from one generation's tables: entities, deadlines, the clock and the findings it
still tracks. Statements are per batch (executemany), never per event.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from projections.discrepancies import clock
from projections.discrepancies.engine import Engine
from projections.discrepancies.findings import OUTBOX_NAMESPACE, Operation
from projections.discrepancies.schema import names
from projections.runtime.sql import upsert_tuples

FINDING_COLUMNS = (
    "finding_id", "rule_id", "rule_version", "ruleset_version", "severity", "status",
    "condition_status", "tracked", "condition_key", "review_outcome", "review_note",
    "reviewed_at", "review_event_id", "facility_id", "patient_id", "unit", "care_area",
    "order_id", "pump_id", "channel", "episode_id", "alarm_id", "opened_at", "triggered_at",
    "detected_at", "resolved_at", "resolving_event_id", "summary", "evidence",
    "evidence_event_ids", "params", "trigger_event_id", "last_position",
)
_TIMES = ("reviewed_at", "opened_at", "triggered_at", "detected_at", "resolved_at")
_UUIDS = ("review_event_id", "episode_id", "resolving_event_id", "trigger_event_id")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=_dumps)


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def finding_row(finding: dict[str, Any]) -> tuple[Any, ...]:
    row = []
    for column in FINDING_COLUMNS:
        value = finding.get(column)
        if column in _TIMES:
            value = clock.to_datetime(value) if value is not None else None
        elif column in _UUIDS or column == "finding_id":
            value = _uuid(value)
        elif column in ("evidence", "params"):
            value = _jsonb(value)
        elif column == "evidence_event_ids":
            value = [uuid.UUID(v) for v in value or ()]
        row.append(value)
    return tuple(row)


def finding_from_row(row: dict[str, Any]) -> dict[str, Any]:
    finding = {column: row[column] for column in FINDING_COLUMNS}
    for column in _TIMES:
        if finding[column] is not None:
            finding[column] = clock.us(finding[column])
    for column in (*_UUIDS, "finding_id"):
        if finding[column] is not None:
            finding[column] = str(finding[column])
    finding["evidence_event_ids"] = [str(v) for v in finding["evidence_event_ids"]]
    return finding


def dump(engine: Engine) -> list[tuple[str, str, Any]]:
    """Every state row of ``engine`` (kind, key, JSON state): what ``save`` keeps current."""
    engine.world.meta["engine"] = engine.meta()
    return [(table.kind, key, table[key])
            for table in (*engine.world.tables(), engine.timers.table) for key in sorted(table)]


def restore(engine: Engine, rows: list[tuple[str, str, Any]],
            live: list[dict[str, Any]]) -> None:
    """Fill a fresh ``engine`` from state rows and the findings it tracks."""
    world, timers = engine.world, []
    meta: dict[str, Any] = {}
    tables = {t.kind: t for t in world.tables()}
    for kind, key, state in rows:
        if kind == "timer":
            timers.append(state)
        elif kind == "meta" and key == "engine":
            meta = state
        else:
            tables[kind][key] = state
    engine.restore_meta(meta)
    engine.timers.load(timers, meta.get("seq", 0))
    world.rebuild_indexes()
    for finding in live:
        engine.book.live[finding["condition_key"]] = finding
    engine.clear_batch()


def load(cur: psycopg.Cursor[Any], generation: int, engine: Engine) -> None:
    """Fill a fresh ``engine`` from one generation's state and tracked findings."""
    table = names(generation)
    cur.execute(f"SELECT kind, key, state FROM {table['state']}".encode())
    rows = [tuple(row) for row in cur.fetchall()]
    columns = ", ".join(FINDING_COLUMNS)
    cur.execute(f"SELECT {columns} FROM {table['findings']} WHERE tracked"
                f" AND condition_status = 'open'".encode())
    headers = [d.name for d in cur.description or ()]
    live = [finding_from_row(dict(zip(headers, values, strict=True)))
            for values in cur.fetchall()]
    restore(engine, rows, live)  # type: ignore[arg-type]


def stored_position(cur: psycopg.Cursor[Any], generation: int) -> int:
    """The engine position the generation's committed state reflects (0: none yet)."""
    cur.execute(f"SELECT state->>'position' FROM {names(generation)['state']}"
                " WHERE kind = 'meta' AND key = 'engine'".encode())
    row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def save(cur: psycopg.Cursor[Any], generation: int, engine: Engine, projection: str) -> None:
    table = names(generation)
    _apply_operations(cur, table["findings"], engine)
    world = engine.world
    world.meta["engine"] = engine.meta()
    world.meta.mark("engine")
    upserts: list[tuple[str, str, Jsonb]] = []
    deletes: list[tuple[str, list[str]]] = []
    for entities in (*world.tables(), engine.timers.table):
        upserts.extend((entities.kind, key, _jsonb(entities[key]))
                       for key in sorted(entities.dirty) if key in entities)
        if entities.deleted:
            deletes.append((entities.kind, sorted(entities.deleted)))
    for kind, keys in deletes:
        cur.execute(f"DELETE FROM {table['state']} WHERE kind = %s AND key = ANY(%s)".encode(),
                    (kind, keys))
    if upserts:
        # One statement with binary array parameters rather than a pipelined row each: a
        # rebuild's batch dirties thousands of entities. (kind, key) pairs are unique here.
        kinds, keys, states = (list(column) for column in zip(*upserts, strict=True))
        cur.execute(
            f"INSERT INTO {table['state']} (kind, key, state)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::jsonb[])"
            " ON CONFLICT (kind, key) DO UPDATE SET state = EXCLUDED.state".encode(),
            (kinds, keys, states))
    changed = sorted(engine.book.changed.values(), key=lambda f: f["finding_id"])
    if changed:
        # Finding ids are unique here; a rebuild's chunk changes tens of thousands (COPY).
        upsert_tuples(cur, table["findings"], FINDING_COLUMNS, [finding_row(f) for f in changed],
                      ("finding_id",),
                      f"{table['findings']}.last_position <= EXCLUDED.last_position")
    _page(cur, generation, engine, projection)


def _apply_operations(cur: psycopg.Cursor[Any], findings: str, engine: Engine) -> None:
    """Late resolutions and reviews of findings that are no longer in memory."""
    for op in engine.book.operations:
        if op.kind == "resolve":
            cur.execute(
                f"UPDATE {findings} SET condition_status = 'resolved', resolved_at ="
                " greatest(%s, opened_at), resolving_event_id = %s, last_position = %s,"
                " status = CASE WHEN review_outcome IS NULL THEN 'resolved' ELSE status END"
                " WHERE finding_id = %s AND condition_status = 'open'".encode(),
                (clock.to_datetime(op.at), _uuid(op.event_id), op.position,
                 _uuid(op.finding_id)))
        elif not _review(cur, findings, op):
            engine.world.reviews[op.finding_id] = {
                "outcome": op.outcome, "note": op.note, "at": op.at, "event_id": op.event_id}
            engine.world.reviews.mark(op.finding_id)


def _review(cur: psycopg.Cursor[Any], findings: str, op: Operation) -> bool:
    try:
        finding_id = uuid.UUID(op.finding_id)
    except ValueError:
        return False  # not an id this engine could have issued: kept as pending
    cur.execute(
        f"UPDATE {findings} SET review_outcome = %s, review_note = %s, reviewed_at = %s,"
        " review_event_id = %s, status = %s, last_position = %s WHERE finding_id = %s".encode(),
        (op.outcome, op.note, clock.to_datetime(op.at), _uuid(op.event_id), op.outcome,
         op.position, finding_id))
    return cur.rowcount == 1


def _page(cur: psycopg.Cursor[Any], generation: int, engine: Engine, projection: str) -> None:
    """Enqueue S1 pages; only the active generation does (a rebuild never pages)."""
    pages = sorted(engine.book.outbox.items())
    if not pages:
        return
    cur.execute("SELECT state FROM projection_generations WHERE projection = %s"
                " AND generation = %s", (projection, generation))
    row = cur.fetchone()
    if row is None or row[0] != "active":
        return
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('discrepancy_outbox'))")
    cur.executemany(
        "INSERT INTO discrepancy_outbox (outbox_id, finding_id, rule_id, severity, facility_id,"
        " patient_id, unit, opened_at, payload, position, generation)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (outbox_id) DO NOTHING",
        [(uuid.UUID(outbox_id), uuid.UUID(f["finding_id"]), f["rule_id"], "S1",
          f["facility_id"], f.get("patient_id"), f.get("unit"), clock.to_datetime(f["opened_at"]),
          orjson.dumps(_public(f), option=orjson.OPT_SORT_KEYS).decode(), f["last_position"],
          generation) for outbox_id, f in pages])
    # Delivered at commit (and only then): wakes `ledger publish-findings` at once.
    cur.execute("SELECT pg_notify('discrepancy_outbox', %s)", (str(generation),))


def _public(finding: dict[str, Any]) -> dict[str, Any]:
    """The finding as the outbox carries it: public columns, instants in RFC 3339."""
    public = {k: v for k, v in finding.items() if k not in ("tracked", "condition_key")}
    for key in _TIMES:
        public[key] = clock.iso(finding.get(key))
    return public


__all__ = ["OUTBOX_NAMESPACE", "finding_from_row", "finding_row", "load", "save"]
