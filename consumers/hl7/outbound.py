"""Outbound PCD-03: a ``program.auto_requested`` event rendered as an ``RGV^O15``.

For an EHR-side auto-programming bridge: the ledger's record of what was requested,
sent to an Infusion Order Consumer in the form TF-2 §3.3 describes. Field choices:

* MSH-10 = ``request_id`` (what the IOC's ACK/RRG will name in MSA-2), MSH-15 ``AL``,
  MSH-16 ``AL``, MSH-21 the PIV profile with its OID;
* ORC-2 = ``order_id``, ORC-9 = ``occurred_at`` (when the clinician initiated it), ORC-19 =
  the actor;
* RXG-4 = medication, RXG-5/7 VTBI, RXG-15/16 rate or dose, RXG-17/18 and RXG-23/24 the
  concentration; units dual-coded MDC + UCUM where the MDC code is known, else UCUM;
* RXR-1 = ``route`` (the contract does not carry one: the caller says, default ``IV``);
* OBX 1 = the pump (``69986^MDC_DEV_PUMP_INFUS_VMD``, id in OBX-18 EI-3, the channel as
  the VMD number in OBX-4 when it is numeric, else in EI-1), then the dosing weight, and
  the rate (``MDC_FLOW_FLUID_PUMP``) when RXG-15 already holds the dose.

Values are written exactly as stored (trailing zeros kept). Translating the output back
with :mod:`consumers.hl7.pcd03` yields the same request (tested).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import hl7

from consumers.hl7.units import MDC_UNIT_CODES, ucum_from_refid

PIV_PROFILE = "IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.1^ISO"
_BASE = hl7.parse("MSH|^~\\&|")
_MDC_BY_UCUM = {
    ucum: (code, refid)
    for code, refid in MDC_UNIT_CODES.items()
    if (ucum := ucum_from_refid(refid)) is not None
}


def _esc(value: object) -> str:
    return str(_BASE.escape(str(value))) if value not in (None, "") else ""


def _dtm(moment: datetime) -> str:
    text = moment.strftime("%Y%m%d%H%M%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"[:5]
    return text + moment.strftime("%z")


def _unit(ucum: str) -> str:
    mdc = _MDC_BY_UCUM.get(ucum)
    ucum_triplet = f"{_esc(ucum)}^{_esc(ucum)}^UCUM"
    return f"{mdc[0]}^{mdc[1]}^MDC^{ucum_triplet}" if mdc else ucum_triplet


def _quantity(value: Any | None) -> tuple[str, str]:
    if value is None:
        return "", ""
    return format(value.value, "f"), _unit(value.unit)


def render_rgv(
    event: Any,
    *,
    sending: str = "INFUSION_LEDGER",
    receiving: str = "PUMP_GATEWAY",
    sent_at: datetime | None = None,
    route: str = "IV",
) -> str:
    """The RGV^O15 (segments separated by CR) for a ``program.auto_requested`` event."""
    if event.type != "program.auto_requested":
        raise ValueError(f"only program.auto_requested renders as RGV^O15, not {event.type}")
    data, subject = event.data, event.subject
    moment = sent_at or event.occurred_at
    channel = subject.channel
    numeric = channel.isdigit() and channel != "0"
    vtbi, vtbi_unit = _quantity(data.vtbi)
    # RXG-15 holds one of dose (rate) and rate: the dose when both are known (the pump
    # computes the rate from its library entry); the rate then goes in an OBX.
    give, give_unit = _quantity(data.dose if data.dose is not None else data.rate)
    strength, strength_unit = _quantity(data.concentration.amount if data.concentration else None)
    diluent, diluent_unit = _quantity(data.concentration.volume if data.concentration else None)
    medication = data.medication
    drug = "^".join(_esc(x) for x in (medication.code, medication.name, medication.system))
    rxg = ["RXG", "1", "", "", drug.rstrip("^"), vtbi, "", vtbi_unit] + [""] * 7
    rxg += [give, give_unit, strength, strength_unit, "", "", "", "", diluent, diluent_unit]
    actor = _esc(event.actor.id) if event.actor else ""
    orc = ["ORC", "RE", _esc(subject.order_id)] + [""] * 6 + [_dtm(event.occurred_at)]
    orc += [""] * 9 + [actor]
    pump_ei = f"{'' if numeric else _esc(channel)}^^{_esc(subject.pump_id)}"
    vmd_path = f"1.{channel}.0.0" if numeric else ""
    segments = [
        "|".join(["MSH", "^~\\&", _esc(sending), "", _esc(receiving), "", _dtm(moment), "",
                  "RGV^O15^RGV_O15", _esc(data.request_id), "P", "2.6", "", "", "AL", "AL", "",
                  "UNICODE UTF-8", "", "", PIV_PROFILE]),
        "|".join(["PID", "", "", _esc(subject.patient_id)]),
        "|".join(orc).rstrip("|"),
        "|".join(rxg).rstrip("|"),
        f"RXR|^{_esc(route)}^HL70162",
        f"OBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC|{vmd_path}|||||||X|||||||{pump_ei}",
    ]
    extra = []
    if data.dosing_weight is not None:
        extra.append(("68063^MDC_ATTR_PT_WEIGHT^MDC", *_quantity(data.dosing_weight)))
    if data.dose is not None and data.rate is not None:
        extra.append(("157784^MDC_FLOW_FLUID_PUMP^MDC", *_quantity(data.rate)))
    for number, (code, value, unit) in enumerate(extra, start=2):
        path = f"1.{channel}.0.{number - 1}" if numeric else ""
        segments.append(f"OBX|{number}|NM|{code}|{path}|{value}|{unit}|||||F")
    return "\r".join(segments)
