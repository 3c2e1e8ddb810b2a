"""The ``ders`` projection: program starts and limit alerts as facts; compliance as a view.

Every ``program.confirmed`` becomes a program-start fact (care area, medication, library or
basic mode, auto-programmed or manual, and for auto-programs whether the nurse changed the
request on the pump: ``manual_edit`` with the fields edited); every DERS alert becomes an
alert fact with its outcome and time to resolve, attributed to the running program when it
names the same library entry, otherwise to the next program confirmed on that channel
(alerts fire while the nurse is programming). ``ders_compliance`` aggregates them per
care area × medication × day (UTC), with the ISMP target of ≥ 95 % library use.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from ledger.store.reader import StoredRecord
from projections.runtime.base import Projection, RowSink
from projections.runtime.sql import upsert_rows

LIBRARY_USE_TARGET = Decimal("0.95")
_MAX_REQUESTS = 20
_COMPARED = ("medication", "concentration", "rate", "dose", "vtbi", "dosing_weight")

DDL = """
CREATE TABLE IF NOT EXISTS {starts} (
    event_id uuid PRIMARY KEY, facility_id text NOT NULL, pump_id text, channel text,
    patient_id text, order_id text, occurred_at timestamptz NOT NULL, day date NOT NULL,
    care_area text NOT NULL, medication_code text, medication_name text NOT NULL,
    mode text NOT NULL, library_mode text NOT NULL, library_version text, request_id text,
    auto_requested boolean NOT NULL, manual_edit boolean NOT NULL, edited_fields text[],
    last_position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {starts}_day ON {starts} (day, care_area);
CREATE TABLE IF NOT EXISTS {alerts} (
    facility_id text NOT NULL, pump_id text NOT NULL, alert_id text NOT NULL,
    channel text, patient_id text, care_area text NOT NULL, medication_name text NOT NULL,
    limit_kind text NOT NULL, parameter text NOT NULL, bound text,
    limit_value numeric, limit_unit text, programmed_value numeric, programmed_unit text,
    raised_at timestamptz, day date, outcome text, reason_code text, reason_text text,
    seconds_to_resolve numeric, resolved_at timestamptz, raised_event_id uuid,
    last_position bigint NOT NULL,
    PRIMARY KEY (facility_id, pump_id, alert_id)
);
CREATE INDEX IF NOT EXISTS {alerts}_day ON {alerts} (day, care_area);
"""

VIEWS = """
CREATE OR REPLACE VIEW program_starts AS SELECT * FROM {starts};
CREATE OR REPLACE VIEW ders_alerts AS SELECT * FROM {alerts};
CREATE OR REPLACE VIEW ders_compliance AS
WITH s AS (
    SELECT care_area, medication_name, day,
           count(*) AS programs_started,
           count(*) FILTER (WHERE library_mode = 'library') AS library_starts,
           count(*) FILTER (WHERE mode = 'auto') AS auto_programmed,
           count(*) FILTER (WHERE manual_edit) AS manual_edits_after_auto
    FROM {starts} GROUP BY 1, 2, 3
), a AS (
    SELECT care_area, medication_name, day,
           count(*) FILTER (WHERE limit_kind = 'soft') AS soft_alerts,
           count(*) FILTER (WHERE limit_kind = 'hard') AS hard_alerts,
           count(*) FILTER (WHERE outcome = 'overridden') AS overrides,
           count(*) FILTER (WHERE outcome = 'overridden' AND seconds_to_resolve < 2)
               AS overrides_under_2s,
           count(*) FILTER (WHERE outcome = 'reprogrammed') AS reprogrammed,
           count(*) FILTER (WHERE outcome = 'cancelled') AS cancelled
    FROM {alerts} WHERE day IS NOT NULL GROUP BY 1, 2, 3
)
SELECT COALESCE(s.care_area, a.care_area) AS care_area,
       COALESCE(s.medication_name, a.medication_name) AS medication_name,
       COALESCE(s.day, a.day) AS day,
       COALESCE(programs_started, 0) AS programs_started,
       COALESCE(library_starts, 0) AS library_starts,
       round(library_starts::numeric / NULLIF(programs_started, 0), 4) AS library_use_share,
       {target} AS library_use_target,
       (library_starts::numeric / NULLIF(programs_started, 0)) >= {target} AS meets_target,
       COALESCE(auto_programmed, 0) AS auto_programmed,
       round(auto_programmed::numeric / NULLIF(programs_started, 0), 4) AS auto_programmed_share,
       COALESCE(manual_edits_after_auto, 0) AS manual_edits_after_auto,
       COALESCE(soft_alerts, 0) AS soft_alerts, COALESCE(hard_alerts, 0) AS hard_alerts,
       COALESCE(overrides, 0) AS overrides, COALESCE(overrides_under_2s, 0) AS overrides_under_2s,
       COALESCE(reprogrammed, 0) AS reprogrammed, COALESCE(cancelled, 0) AS cancelled
FROM s FULL JOIN a ON s.care_area = a.care_area AND s.medication_name = a.medication_name
                   AND s.day = a.day;
"""


def _canonical(value: Any) -> Any:
    """Compare quantities by value (14.4 = 14.40) and everything else as given."""
    if isinstance(value, dict):
        if set(value) == {"value", "unit"}:
            return (Decimal(value["value"]).normalize(), value["unit"])
        if "code" in value or "name" in value:  # a medication: its code, else its name
            return value.get("code") or str(value.get("name", "")).casefold()
        return {k: _canonical(v) for k, v in sorted(value.items())}
    return value


def edited_fields(request: dict[str, Any], confirmed: dict[str, Any]) -> list[str]:
    """Fields where the program confirmed on the pump differs from the auto-program request."""
    return [
        name for name in _COMPARED
        if request.get(name) is not None
        and _canonical(request.get(name)) != _canonical(confirmed.get(name))
    ]


def _day(timestamp: str) -> str:
    from datetime import UTC, datetime

    return datetime.fromisoformat(timestamp).astimezone(UTC).date().isoformat()


class DersProjection(Projection):
    name = "ders"
    tables = ("program_starts", "ders_alerts")
    handles = frozenset({
        "program.auto_requested", "program.confirmed", "ders.limit_alert_raised",
        "ders.limit_alert_resolved",
    })

    def create_tables(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        cur.execute(DDL.format(starts=self.table("program_starts", generation),
                               alerts=self.table("ders_alerts", generation)).encode())

    def create_views(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        cur.execute(VIEWS.format(starts=self.table("program_starts", generation),
                                 alerts=self.table("ders_alerts", generation),
                                 target=LIBRARY_USE_TARGET).encode())

    def apply(self, state: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        getattr(self, "_" + record.type.replace(".", "_"))(state, record, sink)

    def _program_auto_requested(self, state: dict, record: StoredRecord, sink: RowSink) -> None:
        requests = state.setdefault("requests", {})
        requests[record.data["request_id"]] = record.data
        for stale in list(requests)[:-_MAX_REQUESTS]:
            del requests[stale]

    def _program_confirmed(self, state: dict, record: StoredRecord, sink: RowSink) -> None:
        data = record.data
        subject = record.subject
        request = state.get("requests", {}).get(data.get("request_id") or "")
        edits = edited_fields(request, data) if request and data["mode"] == "auto" else []
        care_area = data.get("care_area") or "unknown"
        medication = data["medication"]
        state["program"] = {"care_area": care_area, "medication_name": medication["name"],
                            "library_entry_id": data.get("library_entry_id")}
        # Alerts fire while the nurse programs, before this confirmation: they belong to it.
        for alert_id in state.pop("unattributed", []):
            alert = state.get("alerts", {}).get(alert_id)
            if alert is not None:
                alert["medication_name"] = medication["name"]
                if alert["care_area"] == "unknown":
                    alert["care_area"] = care_area
                alert["last_position"] = record.notification_id
                sink.upsert("alerts", (alert["facility_id"], alert["pump_id"], alert_id),
                            dict(alert))
        sink.upsert("starts", str(record.event_id), {
            "event_id": str(record.event_id),
            "facility_id": subject.get("facility_id") or "default",
            "pump_id": subject.get("pump_id"), "channel": subject.get("channel"),
            "patient_id": subject.get("patient_id"), "order_id": subject.get("order_id"),
            "occurred_at": record.event["occurred_at"], "day": _day(record.event["occurred_at"]),
            "care_area": care_area, "medication_code": medication.get("code"),
            "medication_name": medication["name"], "mode": data["mode"],
            "library_mode": data["library_mode"], "library_version": data.get("library_version"),
            "request_id": data.get("request_id"), "auto_requested": request is not None,
            "manual_edit": bool(edits), "edited_fields": edits,
            "last_position": record.notification_id,
        })

    def _alert(self, state: dict, record: StoredRecord) -> dict[str, Any]:
        subject = record.subject
        alerts = state.setdefault("alerts", {})
        alert_id = record.data["alert_id"]
        program = state.get("program", {})
        entry = record.data.get("library_entry_id")
        if not entry or entry != program.get("library_entry_id"):
            # Not the running program's library entry: the alert belongs to the program
            # being entered, attributed when it is confirmed.
            program = {}
        if alert_id not in alerts:
            alerts[alert_id] = {
                "facility_id": subject.get("facility_id") or "default",
                "pump_id": subject["pump_id"], "alert_id": alert_id,
                "channel": subject.get("channel"), "patient_id": subject.get("patient_id"),
                "care_area": program.get("care_area", "unknown"),
                "medication_name": program.get("medication_name", "unknown"),
                "limit_kind": "unknown", "parameter": "unknown", "bound": None,
                "limit_value": None, "limit_unit": None, "programmed_value": None,
                "programmed_unit": None, "raised_at": None, "day": None, "outcome": None,
                "reason_code": None, "reason_text": None, "seconds_to_resolve": None,
                "resolved_at": None, "raised_event_id": None,
            }
            for stale in list(alerts)[:-_MAX_REQUESTS]:
                del alerts[stale]
            if not program:
                state.setdefault("unattributed", []).append(alert_id)
                del state["unattributed"][:-_MAX_REQUESTS]
        alert: dict[str, Any] = alerts[alert_id]
        alert["last_position"] = record.notification_id
        return alert

    def _ders_limit_alert_raised(self, state: dict, record: StoredRecord, sink: RowSink) -> None:
        alert = self._alert(state, record)
        data = record.data
        limit, programmed = data.get("limit") or {}, data.get("programmed") or {}
        alert.update({
            "care_area": data.get("care_area") or alert["care_area"],
            "limit_kind": data["limit_kind"], "parameter": data["parameter"],
            "bound": data.get("bound"), "limit_value": limit.get("value"),
            "limit_unit": limit.get("unit"), "programmed_value": programmed.get("value"),
            "programmed_unit": programmed.get("unit"), "raised_at": record.event["occurred_at"],
            "day": _day(record.event["occurred_at"]), "raised_event_id": str(record.event_id),
        })
        sink.upsert("alerts", (alert["facility_id"], alert["pump_id"], alert["alert_id"]),
                    dict(alert))

    def _ders_limit_alert_resolved(self, state: dict, record: StoredRecord, sink: RowSink) -> None:
        alert = self._alert(state, record)
        data = record.data
        alert.update({
            "outcome": data["outcome"], "reason_code": data.get("reason_code"),
            "reason_text": data.get("reason_text"),
            "seconds_to_resolve": data.get("seconds_to_resolve"),
            "resolved_at": record.event["occurred_at"],
        })
        sink.upsert("alerts", (alert["facility_id"], alert["pump_id"], alert["alert_id"]),
                    dict(alert))

    def write(self, cur: psycopg.Cursor[Any], generation: int, sink: RowSink) -> None:
        starts = list(sink.upserts.get("starts", {}).values())
        if starts:
            upsert_rows(cur, self.table("program_starts", generation), starts, ("event_id",))
        alerts = list(sink.upserts.get("alerts", {}).values())
        if alerts:
            upsert_rows(cur, self.table("ders_alerts", generation), alerts,
                        ("facility_id", "pump_id", "alert_id"))
