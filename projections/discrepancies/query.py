"""Reading findings for people and tools: ``ledger discrepancies --json`` and the API.

One parameterised query over the ``discrepancies`` view, filtered by severity, rule,
unit, facility, patient, status and an ``opened_at`` interval, newest first; rows come
back JSON-ready (ids and instants as strings, numbers untouched inside the evidence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

_COLUMNS = (
    "finding_id, rule_id, rule_version, ruleset_version, severity, status, condition_status,"
    " review_outcome, review_note, reviewed_at, facility_id, patient_id, unit, care_area,"
    " order_id, pump_id, channel, episode_id, alarm_id, opened_at, triggered_at, detected_at,"
    " resolved_at, resolving_event_id, summary, evidence, evidence_event_ids, params,"
    " trigger_event_id, last_position"
)


@dataclass
class Filters:
    severities: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    facility: str | None = None
    patient: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None


def find(conn: psycopg.Connection[Any], filters: Filters | None = None) -> list[dict[str, Any]]:
    """Findings matching ``filters`` (all of them when None), newest first."""
    filters = filters or Filters()
    where: list[str] = []
    args: list[Any] = []
    for column, values in (("severity", filters.severities), ("rule_id", filters.rules),
                           ("unit", filters.units), ("status", filters.statuses)):
        if values:
            where.append(f"{column} = ANY(%s)")
            args.append(list(values))
    for column, value in (("facility_id", filters.facility), ("patient_id", filters.patient)):
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    if filters.since is not None:
        where.append("opened_at >= %s")
        args.append(filters.since)
    if filters.until is not None:
        where.append("opened_at < %s")
        args.append(filters.until)
    sql = f"SELECT {_COLUMNS} FROM discrepancies"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY opened_at DESC, finding_id"
    if filters.limit is not None:
        sql += " LIMIT %s"
        args.append(filters.limit)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.encode(), args)
        return [_json_ready(row) for row in cur.fetchall()]


def _json_ready(row: dict[str, Any]) -> dict[str, Any]:
    ready: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            ready[key] = value.isoformat()
        elif isinstance(value, list):
            ready[key] = [str(v) for v in value]
        elif value is not None and key.endswith("_id") and not isinstance(value, str):
            ready[key] = str(value)
        else:
            ready[key] = value
    return ready
