"""A chart entry as a FHIR R4 MedicationAdministration, in canonical (byte-stable) JSON.

Mapping (DOMAIN.md §3):

* ``id`` = the entry id, and ``identifier`` = ``urn:ietf:rfc:3986|urn:uuid:<entry id>``:
  the same on every rebuild, so the EHR can create-if-absent and update by it;
* ``partOf`` → the episode's parent administration (one per infusion) for every segment,
  bolus, volume interval and stop; ``status`` per DOMAIN.md §3 (running → in-progress,
  paused → on-hold, VTBI complete → completed, stopped → stopped, cleared before start →
  not-done, retracted → entered-in-error) with ``statusReason`` as text;
* ``medicationCodeableConcept``, or a contained Medication with the concentration as
  ingredient strength; ``subject``, ``request`` (the order), ``device`` (pump channel) and
  ``performer`` (the validating nurse) are logical references by identifier, because the
  EHR owns its Patient/MedicationRequest/Device ids;
* ``effectiveDateTime`` for point facts, ``effectivePeriod`` for intervals and the parent;
* ``dosage.rateQuantity`` (flow, else dose rate) or, for a volume interval,
  ``dosage.dose`` + ``dosage.rateRatio`` (volume per interval length), all UCUM; a dose rate
  beside a flow goes in the ``dose-rate`` extension; a charted value that differs from the
  device's carries the device value in the ``device-value`` extension;
* ``eventHistory`` → contained Provenance per documentation action (validation, edit,
  manual entry, retraction), each naming the documentation event it came from.

JSON numbers keep the exact decimal text of the source (``14.40`` stays ``14.40``), keys
keep the R4 element order, and nothing depends on the clock: the same entry always gives
the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson

from projections.documentation.model import dec, divide, parse_time, seconds, text

UCUM = "http://unitsofmeasure.org"
URI = "urn:ietf:rfc:3986"
EXT_DOSE_RATE = "urn:infusion-ledger:fhir:StructureDefinition:dose-rate"
EXT_DEVICE_VALUE = "urn:infusion-ledger:fhir:StructureDefinition:device-value"
_PERFORM_FUNCTION = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_OPERATION = {"entered_manually": "CREATE", "edited": "UPDATE", "retracted": "NULLIFY"}
_RATE_KINDS = frozenset({"start", "rate_change", "resume", "kvo", "infusion", "manual"})


@dataclass(frozen=True)
class Naming:
    """Identifier systems of the logical references (``<base>:<facility>:<what>``)."""

    base: str = "urn:infusion-ledger"

    def system(self, facility: str, what: str) -> str:
        return f"{self.base}:{quote(facility, safe='-._~')}:{what}"

    def identifier(self, facility: str, what: str, value: str) -> dict[str, Any]:
        return {"system": self.system(facility, what), "value": value}


def entry_identifier(entry_id: str) -> dict[str, str]:
    return {"system": URI, "value": f"urn:uuid:{entry_id}"}


def medication_administration(entry: dict[str, Any], naming: Naming = Naming()
                              ) -> dict[str, Any]:
    """The R4 MedicationAdministration of a chart-ready entry (``status.entry_document``)."""
    eid, facility = entry["entry_id"], entry["facility_id"]
    contained: list[dict[str, Any]] = []
    medication = _medication(entry, contained)
    history = _provenances(entry, naming, contained)
    resource: dict[str, Any] = {"resourceType": "MedicationAdministration", "id": eid}
    if contained:
        resource["contained"] = contained
    resource["identifier"] = [entry_identifier(eid)]
    if entry["parent_entry_id"]:
        resource["partOf"] = [{"reference": f"MedicationAdministration/{entry['parent_entry_id']}"}]
    resource["status"] = entry["administration_status"]
    reason = _status_reason(entry)
    if reason:
        resource["statusReason"] = [{"text": reason}]
    resource.update(medication)
    if entry["patient_id"]:
        resource["subject"] = {"type": "Patient", "identifier": naming.identifier(
            facility, "patient", entry["patient_id"])}
    else:
        resource["subject"] = {"display": "no patient associated with the pump channel"}
    resource.update(_effective(entry))
    if entry["validated_by"]:
        function = "performer" if entry["origin"] == "manual" else "verifier"
        resource["performer"] = [{
            "function": {"coding": [{"system": _PERFORM_FUNCTION, "code": function}]},
            "actor": {"type": "Practitioner", "identifier": naming.identifier(
                facility, "practitioner", entry["validated_by"])},
        }]
    if entry["order_id"]:
        resource["request"] = {"type": "MedicationRequest", "identifier": naming.identifier(
            facility, "order", entry["order_id"])}
    if entry["pump_id"]:
        resource["device"] = [_device(entry, naming)]
    notes = [_note(k, v) for k, v in entry["charted"].items() if v["source"] == "edited"]
    if notes:
        resource["note"] = [{"text": n} for n in notes]
    dosage = _dosage(entry)
    if dosage:
        resource["dosage"] = dosage
    if history:
        resource["eventHistory"] = [{"reference": f"#{p['id']}"} for p in history]
    return resource


# -- elements --------------------------------------------------------------------------
def _medication(entry: dict[str, Any], contained: list[dict[str, Any]]) -> dict[str, Any]:
    medication = entry["medication"] or {}
    concept: dict[str, Any]
    if medication.get("code"):
        coding = {"system": medication["system"]} if medication.get("system") else {}
        coding |= {"code": medication["code"], "display": medication["name"]}
        concept = {"coding": [coding], "text": medication["name"]}
    elif medication.get("name"):
        concept = {"text": medication["name"]}
    else:
        concept = {"coding": [{"system": _ABSENT, "code": "unknown"}],
                   "text": "medication not reported"}
    concentration = entry["concentration"]
    if not concentration:
        return {"medicationCodeableConcept": concept}
    contained.append({
        "resourceType": "Medication", "id": "med", "code": concept,
        "ingredient": [{"itemCodeableConcept": concept, "strength": {
            "numerator": _quantity(concentration["amount"]),
            "denominator": _quantity(concentration["volume"])}}],
    })
    return {"medicationReference": {"reference": "#med"}}


def _status_reason(entry: dict[str, Any]) -> str | None:
    if entry["status"] == "retracted":
        reasons = [h.get("reason") for h in entry["documentation"] if h["action"] == "retracted"]
        return next((r for r in reasons if r), "documented in error")
    if entry["kind"] in ("pause", "stop", "not_started", "infusion"):
        return entry["reason"]
    return None


def _effective(entry: dict[str, Any]) -> dict[str, Any]:
    if entry["kind"] in ("volume", "infusion"):
        period = entry["period"] or {}
        found = {"start": period.get("start") or entry["device_time"]}
        if period.get("end"):
            found["end"] = period["end"]
        return {"effectivePeriod": found}
    return {"effectiveDateTime": entry["device_time"]}


def _device(entry: dict[str, Any], naming: Naming) -> dict[str, Any]:
    channel = entry["channel"]
    value = f"{entry['pump_id']}:{channel}" if channel else entry["pump_id"]
    display = f"infusion pump {entry['pump_id']}" + (f" channel {channel}" if channel else "")
    return {"type": "Device", "identifier": naming.identifier(
        entry["facility_id"], "pump-channel", value), "display": display}


def _note(key: str, charted: dict[str, Any]) -> str:
    new, old = charted["charted"], charted["device"]
    was = f" (device {old['value']} {old['unit']})" if old else ""
    why = f": {charted['reason']}" if charted.get("reason") else ""
    return f"{key.replace('_', ' ')} charted as {new['value']} {new['unit']}{was}{why}"


def _value(entry: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A value as charted (edited or validated) or else as the device reported it."""
    charted = entry["charted"].get(key)
    device = entry["values"].get(key)
    if not charted:
        return _quantity(device) if device else None
    quantity = _quantity(charted["charted"])
    old = charted["device"]
    if old and (dec(old["value"]) != dec(charted["charted"]["value"])
                or old["unit"] != charted["charted"]["unit"]):
        quantity = {"extension": [{"url": EXT_DEVICE_VALUE, "valueQuantity": _quantity(old)}],
                    **quantity}
    return quantity


def _dosage(entry: dict[str, Any]) -> dict[str, Any]:
    kind = entry["kind"]
    rate, dose_rate = _value(entry, "rate"), _value(entry, "dose_rate")
    dosage: dict[str, Any] = {}
    if kind == "volume":
        volume = _value(entry, "volume")
        period = entry["period"] or {}
        if volume:
            dosage["dose"] = volume
            minutes = _minutes(period.get("start"), period.get("end"))
            if minutes:
                numerator = {k: v for k, v in volume.items() if k != "extension"}
                dosage["rateRatio"] = {"numerator": numerator, "denominator": {
                    "value": minutes, "unit": "min", "system": UCUM, "code": "min"}}
        return dosage
    if kind == "bolus":
        dose = _value(entry, "dose") or _value(entry, "volume")
        if dose:
            dosage["dose"] = dose
    elif kind in ("stop", "completion", "infusion", "manual"):
        volume = _value(entry, "volume_infused")
        if volume:
            dosage["dose"] = volume
    if kind in _RATE_KINDS or kind == "bolus":
        if rate:
            dosage["rateQuantity"] = rate
            if dose_rate:
                dosage = {"extension": [{"url": EXT_DOSE_RATE, "valueQuantity": dose_rate}],
                          **dosage}
        elif dose_rate:
            dosage["rateQuantity"] = dose_rate
    return dosage


def _minutes(start: str | None, end: str | None) -> Decimal | None:
    if not start or not end:
        return None
    span = seconds(parse_time(end) - parse_time(start))
    return divide(span, Decimal(60)).normalize() if span > 0 else None


def _quantity(q: dict[str, str]) -> dict[str, Any]:
    return {"value": dec(q["value"]), "unit": q["unit"], "system": UCUM, "code": q["unit"]}


def _provenances(entry: dict[str, Any], naming: Naming,
                 contained: list[dict[str, Any]]) -> list[dict[str, Any]]:
    made = []
    for n, item in enumerate(entry["documentation"], start=1):
        actor = item["actor"]["id"]
        who = ({"type": "Practitioner", "identifier": naming.identifier(
            entry["facility_id"], "practitioner", actor)} if actor else {"display": "unknown"})
        activity: dict[str, Any] = {"text": item["action"].replace("_", " ")}
        if item["action"] in _OPERATION:
            activity = {"coding": [{"system": _DATA_OPERATION,
                                    "code": _OPERATION[item["action"]]}], **activity}
        role = "verifier" if item["action"] == "validated" else "author"
        provenance = {
            "resourceType": "Provenance", "id": f"doc{n}",
            "target": [{"reference": f"MedicationAdministration/{entry['entry_id']}"}],
            "recorded": item["at"], "activity": activity,
            "agent": [{"type": {"coding": [{"system": _PARTICIPANT, "code": role}]},
                       "who": who}],
            "entity": [{"role": "source", "what": {"identifier": {
                "system": URI, "value": f"urn:uuid:{item['event_id']}"}}}],
        }
        contained.append(provenance)
        made.append(provenance)
    return made


# -- canonical JSON ----------------------------------------------------------------------
def _decimal_fragment(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(text(value))
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: Any) -> str:
    """Compact JSON, keys in the order given, decimals as exact JSON numbers.

    Byte-identical to :func:`reference_canonical_json` for what the builders here produce
    (tests hold every golden resource to that, which also proves no binary float slips
    in: the reference refuses them); orjson with decimals passed through as pre-rendered
    fragments is ~10x faster, and every chart entry is re-rendered on each change.
    """
    return orjson.dumps(value, default=_decimal_fragment).decode()


def reference_canonical_json(value: Any) -> str:
    """The definition, in plain Python: what an outside party reproduces."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value: Any, out: Callable[[str], Any]) -> None:
    if value is None or isinstance(value, bool):
        out({None: "null", True: "true", False: "false"}[value])
    elif isinstance(value, int):
        out(str(value))
    elif isinstance(value, Decimal):
        out(text(value))
    elif isinstance(value, str):
        out(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, dict):
        out("{")
        for n, (key, item) in enumerate(value.items()):
            out(("," if n else "") + json.dumps(str(key), ensure_ascii=False) + ":")
            _write(item, out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for n, item in enumerate(value):
            if n:
                out(",")
            _write(item, out)
        out("]")
    else:
        raise TypeError(f"{type(value).__name__} has no canonical JSON form (floats never do)")
