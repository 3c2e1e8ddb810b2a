"""Reconciliation: what the pumps did vs what reached the chart, and the gaps in between.

Per episode the ``documentation_reconciliation`` view gives the funnel — events received
→ entries produced → validated / edited / retracted → enqueued → acknowledged — and the
volumes (calculated from the rates, reported by the pump, charted). :func:`open_gaps`
lists what is open at a moment ``at`` (a parameter, so a report is reproducible; the CLI
passes now):

=========================  =====  ==============================================================
gap                        rule   open when
=========================  =====  ==============================================================
undocumented_start         R20    a start still proposed ``grace`` after it happened
undocumented_rate_change   R21    a rate change still proposed ``grace`` after it happened
unvalidated                —      any other device entry still proposed after ``grace``
charted_differs            R03    a charted value (validated or edited) differs from the device
volume_mismatch            R19    pump volume vs volume calculated from rates, beyond 2 mL / 5 %
missing_start_event        —      an episode delivered but no ``infusion.started`` was received
unmatched_documentation    —      a documentation event documents no entry after ``grace``
not_acknowledged           —      the latest version of an entry not delivered ``ack_grace`` on
rejected                   —      the latest version of an entry refused by the target
not_enqueued               —      an entry's current version missing from the outbox (integrity)
=========================  =====  ==============================================================

The discrepancy engine owns R03/R19/R20/R21 findings; this list is the documentation
side's own view of the same gaps (for interface analysts, ``ledger docs-gaps``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.documentation.model import utc_text

VOLUME_ABS_ML = Decimal(2)
VOLUME_FRACTION = Decimal("0.05")
_ENTRY = ("e.entry_id, e.episode_id, e.facility_id, e.patient_id, e.order_id, e.pump_id,"
          " e.channel, e.kind")

_GAPS: dict[str, str] = {
    "unvalidated": f"""
        SELECT CASE e.kind WHEN 'start' THEN 'undocumented_start'
                           WHEN 'rate_change' THEN 'undocumented_rate_change'
                           ELSE 'unvalidated' END AS gap,
               CASE e.kind WHEN 'start' THEN 'R20' WHEN 'rate_change' THEN 'R21' END AS rule,
               {_ENTRY}, e.device_time AS since, jsonb_build_object('values', e.facts) AS detail
        FROM documentation_entries e
        WHERE e.doc_status = 'proposed' AND e.origin = 'device' AND e.kind <> 'infusion'
          AND e.device_time + %(grace)s < %(at)s""",
    "charted_differs": f"""
        SELECT 'charted_differs' AS gap, 'R03' AS rule, {_ENTRY}, e.validated_at AS since,
               jsonb_build_object('field', f.key, 'device', f.value->'device',
                                  'charted', f.value->'charted') AS detail
        FROM documentation_entries e, jsonb_each(e.charted) f
        WHERE e.doc_status IN ('validated', 'edited') AND e.validated_at <= %(at)s
          AND jsonb_typeof(f.value->'device') = 'object'
          AND ((f.value->'device'->>'value')::numeric <> (f.value->'charted'->>'value')::numeric
               OR f.value->'device'->>'unit' <> f.value->'charted'->>'unit')""",
    "volume_mismatch": """
        SELECT 'volume_mismatch' AS gap, 'R19' AS rule, NULL::uuid AS entry_id, r.episode_id,
               r.facility_id, r.patient_id, r.order_id, r.pump_id, r.channel,
               NULL AS kind, r.device_volume_at AS since,
               jsonb_build_object('device_volume', r.device_volume::text,
                                  'calculated_volume', r.calculated_at_device::text) AS detail
        FROM documentation_reconciliation r
        WHERE r.device_volume_at <= %(at)s
          AND abs(r.device_volume - r.calculated_at_device)
              > greatest(%(abs_ml)s, %(fraction)s * r.device_volume)""",
    "missing_start_event": """
        SELECT 'missing_start_event' AS gap, NULL AS rule, NULL::uuid AS entry_id, r.episode_id,
               r.facility_id, r.patient_id, r.order_id, r.pump_id, r.channel, NULL AS kind,
               COALESCE(r.started_at, r.ended_at) AS since, '{}'::jsonb AS detail
        FROM documentation_reconciliation r
        WHERE NOT r.has_start AND r.events_received + r.telemetry_received > 0
          AND COALESCE(r.started_at, r.ended_at) + %(grace)s < %(at)s""",
    "unmatched_documentation": """
        SELECT 'unmatched_documentation' AS gap, NULL AS rule, NULL::uuid AS entry_id,
               NULL::uuid AS episode_id, a.facility_id, a.patient_id, a.order_id, a.pump_id,
               a.channel, a.action AS kind, a.occurred_at AS since,
               jsonb_build_object('event_id', a.event_id, 'observed_at', a.observed_at)
                   AS detail
        FROM documentation_actions a
        WHERE NOT EXISTS (SELECT 1 FROM documentation_links l WHERE l.action_id = a.event_id)
          AND a.occurred_at + %(grace)s < %(at)s""",
    "delivery": f"""
        SELECT CASE WHEN d.outcome = 'rejected' THEN 'rejected' ELSE 'not_acknowledged' END
                   AS gap, NULL AS rule, {_ENTRY}, o.enqueued_at AS since,
               jsonb_build_object('position', o.seq, 'revision', o.revision,
                                  'detail', d.detail) AS detail
        FROM (SELECT DISTINCT ON (x.entry_id) x.* FROM documentation_outbox x
              ORDER BY x.entry_id, x.seq DESC) o
        JOIN documentation_entries e ON e.entry_id = o.entry_id
        LEFT JOIN LATERAL (SELECT y.outcome, y.detail FROM documentation_deliveries y
                           WHERE y.seq = o.seq ORDER BY y.outcome LIMIT 1) d ON true
        WHERE (d.outcome = 'rejected' OR (d.outcome IS NULL
                                          AND o.enqueued_at + %(ack_grace)s < %(at)s))""",
    "not_enqueued": f"""
        SELECT 'not_enqueued' AS gap, NULL AS rule, {_ENTRY}, e.ledger_time AS since,
               jsonb_build_object('revision', e.revision) AS detail
        FROM documentation_entries e
        WHERE NOT EXISTS (SELECT 1 FROM documentation_outbox o
                          WHERE o.entry_id = e.entry_id AND o.revision >= e.revision)""",
}


def open_gaps(
    conn: psycopg.Connection[Any], at: datetime, *, grace: timedelta = timedelta(minutes=60),
    ack_grace: timedelta = timedelta(minutes=15), facility: str | None = None,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """Every open gap at ``at``, oldest first (see the module docstring)."""
    if at.tzinfo is None:
        raise ValueError("'at' must be an aware datetime")
    params = {"at": at, "grace": grace, "ack_grace": ack_grace, "abs_ml": VOLUME_ABS_ML,
              "fraction": VOLUME_FRACTION, "facility": facility, "limit": limit}
    union = " UNION ALL ".join(f"({sql})" for sql in _GAPS.values())
    statement = (
        f"SELECT * FROM ({union}) g WHERE (%(facility)s::text IS NULL"
        " OR g.facility_id = %(facility)s) ORDER BY g.since, g.gap, g.entry_id, g.episode_id"
        " LIMIT %(limit)s"
    )
    cur = conn.cursor(row_factory=dict_row)
    cur.execute(statement.encode(), params)
    return [_plain(row) for row in cur.fetchall()]


def reconciliation(conn: psycopg.Connection[Any], *, facility: str | None = None
                   ) -> list[dict[str, Any]]:
    """The per-episode funnel (the ``documentation_reconciliation`` view)."""
    cur = conn.cursor(row_factory=dict_row)
    cur.execute(
        "SELECT * FROM documentation_reconciliation WHERE (%(f)s::text IS NULL"
        " OR facility_id = %(f)s) ORDER BY started_at NULLS LAST, episode_id", {"f": facility})
    return [_plain(row) for row in cur.fetchall()]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: UUIDs and decimals as strings, times as UTC text."""
    plain: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            plain[key] = utc_text(value)
        elif isinstance(value, Decimal):
            plain[key] = format(value, "f")
        elif value is not None and not isinstance(value, str | int | bool | dict | list):
            plain[key] = str(value)
        else:
            plain[key] = value
    return plain
