"""The ``alarms`` projection: one row per alarm with its lifecycle times and response delays.

A pump stream's state keeps its open alarms (and a few recently closed ones, for late
acknowledgements); each alarm event rewrites that alarm's row, guarded by position. Which
infusion an alarm hit is answered by the ``alarms`` view at query time, from
``infusion_state`` (the episode on that pump and channel when the alarm was raised), so
the two projections stay independent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ledger.store.reader import StoredRecord
from projections.runtime.base import Projection, RowSink
from projections.runtime.sql import upsert_rows

_RECENTLY_CLOSED = 20

DDL = """
CREATE TABLE IF NOT EXISTS {alarms} (
    facility_id text NOT NULL, pump_id text NOT NULL, alarm_id text NOT NULL,
    channel text, code text NOT NULL, priority text NOT NULL, initial_priority text NOT NULL,
    text text, kind text, state text NOT NULL,
    raised_at timestamptz NOT NULL, silenced_at timestamptz, acknowledged_at timestamptz,
    cleared_at timestamptz, first_response_at timestamptz,
    seconds_to_acknowledge numeric, seconds_to_first_response numeric, seconds_to_clear numeric,
    updates int NOT NULL, raised_event_id uuid, raised_position bigint,
    last_position bigint NOT NULL,
    PRIMARY KEY (facility_id, pump_id, alarm_id)
);
CREATE INDEX IF NOT EXISTS {alarms}_raised ON {alarms} (raised_at);
CREATE INDEX IF NOT EXISTS {alarms}_open ON {alarms} (priority) WHERE cleared_at IS NULL;
"""

VIEW = """
CREATE OR REPLACE VIEW alarms AS
SELECT a.*, hit.episode_id, hit.patient_id, hit.medication_name, hit.high_alert, hit.unit
FROM {alarms} a
LEFT JOIN LATERAL (
    SELECT s.episode_id, s.patient_id, s.medication_name, s.high_alert, s.unit
    FROM infusion_state s
    WHERE s.facility_id = a.facility_id AND s.pump_id = a.pump_id
      AND (a.channel IS NULL OR s.channel = a.channel)
      AND COALESCE(s.started_at, s.programmed_at, s.last_occurred_at) <= a.raised_at
      AND (s.ended_at IS NULL OR s.ended_at >= a.raised_at)
    ORDER BY COALESCE(s.started_at, s.programmed_at) DESC NULLS LAST
    LIMIT 1
) hit ON true;
"""


def _seconds(start: str | None, end: str | None) -> str | None:
    if not start or not end:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return f"{delta.total_seconds():.3f}"


class AlarmsProjection(Projection):
    name = "alarms"
    tables = ("alarms",)
    handles = frozenset({
        "alarm.raised", "alarm.updated", "alarm.silenced", "alarm.acknowledged", "alarm.cleared",
    })

    def create_tables(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        cur.execute(DDL.format(alarms=self.table("alarms", generation)).encode())

    def create_views(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        cur.execute(VIEW.format(alarms=self.table("alarms", generation)).encode())

    def apply(self, state: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        subject = record.subject
        alarms = state.setdefault("alarms", {})
        alarm_id = subject["alarm_id"]
        at = record.event["occurred_at"]
        alarm = alarms.get(alarm_id)
        if alarm is None or (record.type == "alarm.raised" and alarm.get("raised_at") is None):
            alarm = alarms[alarm_id] = alarm or {
                "facility_id": subject.get("facility_id") or "default",
                "pump_id": subject["pump_id"], "alarm_id": alarm_id,
                "channel": subject.get("channel"), "code": "unknown", "priority": "unknown",
                "initial_priority": "unknown", "text": None, "kind": None, "state": "active",
                "raised_at": None, "silenced_at": None, "acknowledged_at": None,
                "cleared_at": None, "first_response_at": None, "updates": 0,
                "raised_event_id": None, "raised_position": None,
            }
        data = record.data
        kind = record.type
        if kind == "alarm.raised":
            alarm.update({
                "code": data["code"], "priority": data["priority"],
                "initial_priority": data["priority"], "text": data.get("text"),
                "kind": data.get("kind"), "raised_at": at, "state": "active",
                "raised_event_id": str(record.event_id),
                "raised_position": record.notification_id,
            })
        elif kind == "alarm.updated":
            alarm["updates"] += 1
            alarm["priority"] = data.get("priority") or alarm["priority"]
            alarm["state"] = data.get("state") or alarm["state"]
        elif kind == "alarm.silenced":
            alarm["silenced_at"] = alarm["silenced_at"] or at
        elif kind == "alarm.acknowledged":
            alarm["acknowledged_at"] = alarm["acknowledged_at"] or at
        elif kind == "alarm.cleared":
            alarm["cleared_at"] = alarm["cleared_at"] or at
            alarm["state"] = "inactive"
        responses = [t for t in (alarm["silenced_at"], alarm["acknowledged_at"],
                                 alarm["cleared_at"]) if t]
        alarm["first_response_at"] = min(responses, key=datetime.fromisoformat) if responses \
            else None
        alarm["last_position"] = record.notification_id
        if alarm["raised_at"] is not None:
            sink.upsert("alarms", (alarm["facility_id"], alarm["pump_id"], alarm_id), _row(alarm))
        if alarm["cleared_at"] and alarm["raised_at"]:
            # Keep a few closed alarms for late acknowledgements; forget the rest.
            closed = [k for k, a in alarms.items() if a["cleared_at"] and a["raised_at"]]
            for stale in closed[:-_RECENTLY_CLOSED]:
                del alarms[stale]

    def write(self, cur: psycopg.Cursor[Any], generation: int, sink: RowSink) -> None:
        rows = list(sink.upserts.get("alarms", {}).values())
        if rows:
            upsert_rows(cur, self.table("alarms", generation), rows,
                        ("facility_id", "pump_id", "alarm_id"))


def _row(alarm: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in alarm.items() if k != "last_position"}
    row["seconds_to_acknowledge"] = _seconds(alarm["raised_at"], alarm["acknowledged_at"])
    row["seconds_to_first_response"] = _seconds(alarm["raised_at"], alarm["first_response_at"])
    row["seconds_to_clear"] = _seconds(alarm["raised_at"], alarm["cleared_at"])
    row["last_position"] = alarm["last_position"]
    return row
