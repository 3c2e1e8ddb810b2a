"""Turning "patient X", "episode Y", "pump P channel C" or "order O" into the streams to read.

An incident touches several streams: the pump channel (program, delivery, DERS), the pump
(alarms), the order (order lifecycle, nurse documentation) and the patient (location, BCMA
scans). The selection finds them from the read models and from the events themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger.store.streams import DEFAULT_FACILITY


class SelectionError(ValueError):
    """The selection names nothing the ledger knows."""


@dataclass
class Selection:
    label: str
    streams: set[str] = field(default_factory=set)
    episode_ids: set[str] = field(default_factory=set)
    facility: str = DEFAULT_FACILITY


def _key(value: str | None) -> str:
    return (value or "").replace("%", "%25").replace(":", "%3A")


def _add_episode_streams(selection: Selection, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        facility = _key(row["facility_id"])
        selection.episode_ids.add(str(row["episode_id"]))
        selection.streams.add(f"channel:{facility}:{_key(row['pump_id'])}:{_key(row['channel'])}")
        selection.streams.add(f"pump:{facility}:{_key(row['pump_id'])}")
        if row.get("linked_order_id"):
            selection.streams.add(f"order:{facility}:{_key(row['linked_order_id'])}")
        if row.get("patient_id"):
            selection.streams.add(f"patient:{facility}:{_key(row['patient_id'])}")


def select(
    conn: psycopg.Connection[Any],
    *,
    patient: str | None = None,
    episode: str | None = None,
    pump: str | None = None,
    channel: str | None = None,
    order: str | None = None,
    facility: str | None = None,
) -> Selection:
    cur = conn.cursor(row_factory=dict_row)
    where, params, label = [], [], []
    if facility:
        where.append("facility_id = %s")
        params.append(facility)
    if patient:
        where.append("patient_id = %s")
        params.append(patient)
        label.append(f"patient {patient}")
    if episode:
        where.append("episode_id::text = %s")
        params.append(episode)
        label.append(f"episode {episode}")
    if pump:
        where.append("pump_id = %s")
        params.append(pump)
        label.append(f"pump {pump}" + (f" channel {channel}" if channel else ""))
        if channel:
            where.append("channel = %s")
            params.append(channel)
    if order:
        where.append("linked_order_id = %s")
        params.append(order)
        label.append(f"order {order}")
    if not label:
        raise SelectionError("choose --patient, --episode, --pump [--channel] or --order")
    cur.execute(
        "SELECT episode_id, facility_id, pump_id, channel, patient_id, linked_order_id"
        f" FROM infusion_state WHERE {' AND '.join(where)}".encode(), params)
    selection = Selection(", ".join(label), facility=facility or DEFAULT_FACILITY)
    _add_episode_streams(selection, list(cur.fetchall()))
    # The subject's own streams even when no episode mentions them (an order never started,
    # a patient with only scans): found from the events' stream keys.
    patterns = []
    if patient:
        patterns.append(f"patient:%:{_key(patient)}")
    if order:
        patterns.append(f"order:%:{_key(order)}")
    if pump:
        patterns.append(f"pump:%:{_key(pump)}")
        patterns.append(f"channel:%:{_key(pump)}:{_key(channel) if channel else '%'}")
    for pattern in patterns:
        cur.execute("SELECT stream FROM ledger_streams WHERE stream LIKE %s", (pattern,))
        selection.streams.update(row["stream"] for row in cur.fetchall())
    if not selection.streams:
        raise SelectionError(f"nothing recorded for {selection.label}")
    return selection
