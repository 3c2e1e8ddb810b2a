"""Response models of infusion episodes (summary, full state, timeline) and row mapping.

Rows come from the ``infusion_state`` and ``infusion_timeline`` views; each mapping goes
through a :class:`~projections.api.deid.Disclosure`, which decides what the caller may see
and records the patients shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from projections.api.deid import Disclosure
from projections.api.models import DecimalStr, Out, Quantity, decimal_text, quantity

Status = Literal["programmed", "infusing", "paused", "kvo", "alarming", "stopped", "completed"]
# End reasons the fold writes itself; any other value is the pump's free text.
_CODED_END_REASONS = frozenset({"cleared", "vtbi_completed", "stopped", "replaced"})

SUMMARY_COLUMNS = (
    "episode_id, facility_id, patient_id, pump_id, channel, source, order_id, linked_order_id,"
    " order_link_resolved, medication_code, medication_name, status, active, program_mode,"
    " library_mode, program_care_area, programmed_rate, programmed_rate_unit, current_rate,"
    " current_rate_unit, current_dose_rate, current_dose_rate_unit, volume_infused,"
    " volume_infused_unit, programmed_at, started_at, ended_at, unit, patient_care_area,"
    " high_alert, boluses, soft_alerts, hard_alerts, overrides, first_position, last_position,"
    " last_occurred_at"
)


class InfusionSummary(Out):
    """One infusion episode as a list shows it."""

    episode_id: UUID
    facility_id: str
    patient_id: str | None
    pump_id: str | None
    channel: str | None
    source: str
    order_id: str | None
    linked_order_id: str | None
    order_link_resolved: str
    medication_code: str | None
    medication_name: str | None
    status: str
    active: bool
    program_mode: str | None
    library_mode: str | None
    program_care_area: str | None
    programmed_rate: Quantity | None
    current_rate: Quantity | None
    current_dose_rate: Quantity | None
    volume_infused: Quantity | None
    programmed_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    unit: str | None
    patient_care_area: str | None
    high_alert: bool | None
    boluses: int
    soft_alerts: int
    hard_alerts: int
    overrides: int
    first_position: int
    last_position: int
    last_occurred_at: datetime


class InfusionState(InfusionSummary):
    """Everything the projection knows about one episode, with its order and location."""

    patient_from: str | None
    order_link: str | None
    request_id: str | None
    medication_system: str | None
    concentration_amount: Quantity | None
    concentration_volume: Quantity | None
    library_version: str | None
    library_entry_id: str | None
    programmed_dose: Quantity | None
    programmed_vtbi: DecimalStr | None
    dosing_weight: Quantity | None
    paused_reason: str | None
    vtbi_remaining: DecimalStr | None
    end_reason: str | None
    first_event_id: UUID
    last_recorded_at: datetime
    order_status: str | None
    order_verified: bool | None
    ordered_medication_code: str | None
    ordered_medication_name: str | None
    ordered_dose: Quantity | None
    ordered_rate: Quantity | None
    ordered_titration: dict[str, Any] | None
    ordered_concentration_amount: Quantity | None
    ordered_concentration_volume: Quantity | None
    ordered_dosing_weight: DecimalStr | None
    bed: str | None


class TimelineEntry(Out):
    """One event of an episode, with the episode's state after it."""

    seq: int
    notification_id: int
    event_id: UUID
    type: str
    occurred_at: datetime
    received_at: datetime | None
    recorded_at: datetime
    data: dict[str, Any]
    state_after: dict[str, Any]


class InfusionDetail(Out):
    state: InfusionState
    timeline: list[TimelineEntry]
    timeline_next_cursor: str | None
    position: int | None
    deidentified: bool


def _summary_fields(row: dict[str, Any], disclosure: Disclosure) -> dict[str, Any]:
    fields = {name: row[name] for name in InfusionSummary.model_fields if name in row}
    fields["patient_id"] = disclosure.patient(row["facility_id"], row["patient_id"])
    for name in ("programmed_rate", "current_rate", "current_dose_rate", "volume_infused"):
        fields[name] = quantity(row, name)
    return fields


def summary_of(row: dict[str, Any], disclosure: Disclosure) -> InfusionSummary:
    return InfusionSummary(**_summary_fields(row, disclosure))


_SUMMARY_FIELDS = tuple(InfusionSummary.model_fields)
_SUMMARY_QUANTITIES = tuple(
    (name, f"{name}_unit")
    for name in ("programmed_rate", "current_rate", "current_dose_rate", "volume_infused")
)


def summary_json(row: dict[str, Any], disclosure: Disclosure) -> dict[str, Any]:
    """:func:`summary_of` as a dict for orjson, for :func:`~projections.api.export.render`.

    The hot lists (a patient's history, ``/v1/infusions``) skip building and dumping a
    model per row, which cost more than the query. The output is the model's own JSON,
    byte for byte (same keys in the same order, decimals as exact strings, datetimes in
    UTC with ``Z``; tests/integration/test_api_reads.py compares them): the model stays
    the documented schema.
    """
    out = {name: row[name] for name in _SUMMARY_FIELDS}
    out["patient_id"] = disclosure.patient(row["facility_id"], row["patient_id"])
    for name, unit in _SUMMARY_QUANTITIES:
        value = out[name]
        if value is not None:
            out[name] = {"value": decimal_text(value), "unit": row.get(unit)}
    return out


def state_of(row: dict[str, Any], disclosure: Disclosure) -> InfusionState:
    fields: dict[str, Any] = {name: row.get(name) for name in InfusionState.model_fields}
    fields.update(_summary_fields(row, disclosure))
    end_reason = row.get("end_reason")
    fields.update(
        concentration_amount=quantity(row, "conc_amount"),
        concentration_volume=quantity(row, "conc_volume"),
        programmed_dose=quantity(row, "programmed_dose"),
        dosing_weight=quantity(row, "dosing_weight"),
        ordered_dose=quantity(row, "ordered_dose"),
        ordered_rate=quantity(row, "ordered_rate"),
        ordered_concentration_amount=quantity(row, "ordered_conc_amount"),
        ordered_concentration_volume=quantity(row, "ordered_conc_volume"),
        ordered_titration=disclosure.scrub(row.get("ordered_titration"), row["facility_id"]),
        end_reason=end_reason if end_reason in _CODED_END_REASONS
        else disclosure.text(end_reason),
        bed=disclosure.text(row.get("bed")),
    )
    return InfusionState(**fields)


def timeline_of(
    row: dict[str, Any], disclosure: Disclosure, facility_id: str, patient_id: str | None
) -> TimelineEntry:
    return TimelineEntry(
        seq=row["seq"], notification_id=row["notification_id"], event_id=row["event_id"],
        type=row["type"], occurred_at=row["occurred_at"], received_at=row["received_at"],
        recorded_at=row["recorded_at"],
        data=disclosure.scrub(row["data"], facility_id, patient_id),
        state_after=disclosure.scrub(row["state_after"], facility_id, patient_id),
    )
