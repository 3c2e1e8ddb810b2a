"""PCD-03 (PIV): ``RGV^O15`` requests, ``RRG^O16`` application replies, and accept ACKs.

* ``RGV^O15`` → ``program.auto_requested`` per ORC group: ``request_id`` = MSH-10 (what
  the replies' MSA-2 names), ``order_id`` = ORC-2, medication = RXG-4, VTBI = RXG-5/7,
  RXG-15/16 = ``rate`` when the unit is a flow else ``dose`` (a dose rate or a dose),
  concentration = RXG-17/18 in RXG-23/24, ``dosing_weight`` = OBX ``MDC_ATTR_PT_WEIGHT``,
  a rate in OBX ``MDC_FLOW_FLUID_PUMP`` (beside a dose in RXG-15) = ``rate``,
  pump = OBX-18 of the ``…_VMD`` OBX, time = ORC-9 (when the clinician initiated it), else
  MSH-7. Order ids repeat across messages (the two PIV examples share ORC-2 ``12345``), so
  the request, not the order, is what a reply links to.
* ``RRG^O16`` → MSA-1 ``AA`` ``program.auto_accepted``; ``AE``/``AR``
  ``program.auto_rejected`` with ERR-5 (application error, else ERR-3) as reason. The reply
  names only MSA-2; its pump and channel come from an echoed order group if sent, else
  from the request seen earlier in this session — otherwise it is dead-lettered.
* ``ACK^O15`` (and any ACK) → no event: it only confirms receipt (EVENTS.md).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from consumers.hl7.context import Context
from consumers.hl7.errors import Untranslatable
from consumers.hl7.groups import pump_id
from consumers.hl7.observations import Observation, read_observation
from consumers.hl7.units import exact_number, read_unit
from consumers.hl7.view import Segment
from ledger.units import DOSE, DOSE_RATE, UnitError, parse_unit


class RequestRegistry:
    """Subjects of the PCD-03 requests seen, by MSH-10 (bounded, oldest forgotten first)."""

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._subjects: OrderedDict[str, dict[str, str]] = OrderedDict()

    def remember(self, request_id: str, subject: dict[str, str]) -> None:
        self._subjects[request_id] = subject
        self._subjects.move_to_end(request_id)
        while len(self._subjects) > self.capacity:
            self._subjects.popitem(last=False)

    def subject(self, request_id: str) -> dict[str, str] | None:
        return self._subjects.get(request_id)


def _unit_triplets(seg: Segment, number: int) -> list[tuple[str, str, str]]:
    return [(seg.get(number, 1), seg.get(number, 2), seg.get(number, 3)),
            (seg.get(number, 4), seg.get(number, 5), seg.get(number, 6))]


def _quantity(ctx: Context, seg: Segment, value_field: int, unit_field: int) -> dict | None:
    raw = seg.get(value_field)
    if not raw:
        return None
    literal, note = exact_number(raw)
    unit = read_unit(_unit_triplets(seg, unit_field))
    if literal is None or unit.ucum is None:
        ctx.drop(seg.where(value_field), note or unit.problem or "unreadable")
        return None
    if note:
        ctx.note(f"{seg.where(value_field)}: {note}")
    return {"value": literal, "unit": unit.ucum}


class _Give:
    """One RXG (a step) with its TQ1, RXR and OBX segments."""

    def __init__(self, rxg: Segment):
        self.rxg = rxg
        self.others: list[Segment] = []
        self.obx: list[Observation] = []


def _orders(ctx: Context) -> list[tuple[Segment, list[_Give]]]:
    orders: list[tuple[Segment, list[_Give]]] = []
    for seg in ctx.view.segments():
        if seg.id == "ORC":
            orders.append((seg, []))
        elif seg.id == "RXG" and orders:
            orders[-1][1].append(_Give(seg))
        elif seg.id in ("TQ1", "RXR") and orders and orders[-1][1]:
            orders[-1][1][-1].others.append(seg)
        elif seg.id == "OBX" and orders and orders[-1][1]:
            orders[-1][1][-1].obx.append(read_observation(seg))
        else:
            continue
        ctx.used_segments.add(seg.id)
    return orders


def translate_request(ctx: Context) -> None:
    orders = _orders(ctx)
    if not orders:
        raise Untranslatable("RGV^O15 without an ORC/RXG order group")
    patient = ctx.patient()
    for number, (orc, gives) in enumerate(orders, start=1):
        if not gives:
            ctx.drop(orc.where(), "ORC without RXG: nothing to program")
            continue
        for extra in gives[1:]:
            ctx.drop(extra.rxg.where(), f"multistep order: step {extra.rxg.get(1) or '?'} is "
                     "not carried by program.auto_requested (contract v1 has one step)")
        _request(ctx, number, orc, gives[0], patient)


def _pump(ctx: Context, give: _Give) -> tuple[str | None, str]:
    for obs in give.obx:
        if obs.term.refid and obs.term.refid.endswith("_VMD"):
            obs.used = True
            pump = pump_id(obs.equipment())
            if obs.path and len(obs.path) > 1 and obs.path[1]:
                return pump, str(obs.path[1])
            ctx.note(f"{obs.where}: no channel named: default channel "
                     f"{ctx.config.default_channel!r} (LEDGER_HL7_DEFAULT_CHANNEL)")
            return pump, ctx.config.default_channel
    return None, ctx.config.default_channel


def _rate_or_dose(ctx: Context, rxg: Segment) -> dict[str, Any]:
    value = _quantity(ctx, rxg, 15, 16)
    if value is None:
        return {}
    try:
        unit = parse_unit(value["unit"])
    except UnitError:
        return {}
    if unit.dimension == "flow":
        return {"rate": value}
    if unit.dimension in DOSE | DOSE_RATE:
        return {"dose": value}
    ctx.drop(rxg.where(15), f"RXG-15/16 unit {value['unit']!r} is neither a rate nor a dose")
    return {}


def _request(ctx: Context, number: int, orc: Segment, give: _Give, patient: dict) -> None:
    rxg, msh = give.rxg, ctx.msh
    pump, channel = _pump(ctx, give)
    if pump is None:
        ctx.drop(orc.where(), "no pump id (OBX-18 of the MDC_DEV_PUMP_INFUS_VMD OBX)")
        return
    occurred = ctx.first_time((orc.get(9), "ORC-9"), (msh.get(7), "MSH-7"))
    if occurred is None:
        raise Untranslatable("no readable time (ORC-9, MSH-7)")
    if not orc.get(9):
        ctx.note("ORC-9 (time the clinician initiated the request) empty: MSH-7 used")
    name, code = rxg.get(4, 2), rxg.get(4, 1)
    medication = {"name": name or code, "code": code or None, "system": rxg.get(4, 3) or None}
    amount = _quantity(ctx, rxg, 17, 18)
    volume = _quantity(ctx, rxg, 23, 24)
    weight = rate = None
    for obs in give.obx:
        if obs.term.refid in ("MDC_ATTR_PT_WEIGHT", "MDC_FLOW_FLUID_PUMP"):
            obs.used = True
            value, note = obs.quantity()
            if value is None:
                ctx.drop(obs.where, note or "unreadable value")
            elif obs.term.refid == "MDC_ATTR_PT_WEIGHT":
                weight = value
            else:
                rate = value
    given = _rate_or_dose(ctx, rxg)
    if rate is not None and "rate" not in given:
        given["rate"] = rate
    for obs in give.obx:
        if not obs.used:
            ctx.drop(obs.where, "not carried by program.auto_requested")
    for seg in give.others:
        what = "route (RXR)" if seg.id == "RXR" else "timing (TQ1)"
        ctx.drop(seg.where(), f"{what} not carried by program.auto_requested (contract v1)")
    if orc.get(1):
        ctx.note(f"ORC-1 order control {orc.get(1)!r} (RE new, XO change, CH bolus) not carried")
    actor = None
    if orc.get(19, 1):
        actor = {"id": orc.get(19, 1), "role": "nurse"}
        ctx.note("ORC-19 (action by) recorded as actor with role 'nurse' (the caregiver)")
    subject = {"pump_id": pump, "channel": channel, "order_id": orc.get(2, 1), **patient}
    request_id = ctx.translation.control_id
    event = ctx.emit(
        "program.auto_requested", slot=f"orc{number}", occurred_at=occurred, subject=subject,
        actor=actor, data={
            "request_id": request_id or None,
            "medication": {k: v for k, v in medication.items() if v},
            "concentration": {"amount": amount, "volume": volume} if amount and volume else None,
            "vtbi": _quantity(ctx, rxg, 5, 7),
            "dosing_weight": weight,
            **given,
        })
    if event is not None and request_id and ctx.requests is not None:
        ctx.requests.remember(request_id, {k: v for k, v in subject.items() if v})


def _errors(ctx: Context) -> tuple[str | None, str | None]:
    for err in ctx.view.segments("ERR"):
        ctx.used_segments.add("ERR")
        code = err.get(5, 1) or err.get(3, 1)
        text = err.get(5, 2) or err.get(8) or err.get(3, 2)
        if code or text:
            return code or None, text or None
    return None, None


def translate_reply(ctx: Context) -> None:
    msa = ctx.view.first("MSA")
    if msa is None:
        raise Untranslatable("RRG^O16 without MSA: no acknowledgement code")
    ctx.used_segments.add("MSA")
    code, request_id = msa.get(1).upper(), msa.get(2)
    if not request_id:
        raise Untranslatable("RRG^O16 with an empty MSA-2: which request does it answer?")
    if code not in ("AA", "AE", "AR"):
        raise Untranslatable(f"RRG^O16 MSA-1 {code!r} is not AA, AE or AR")
    subject = None
    for _orc, gives in _orders(ctx):
        for give in gives:
            pump, channel = _pump(ctx, give)
            if pump:
                subject = {"pump_id": pump, "channel": channel, **ctx.patient()}
    if subject is None and ctx.requests is not None:
        subject = ctx.requests.subject(request_id)
    if subject is None:
        raise Untranslatable(
            f"RRG^O16 answers request {request_id!r}, which this session has not seen, and "
            "names no pump itself: pump and channel unknown"
        )
    occurred = ctx.first_time((ctx.msh.get(7), "MSH-7"))
    if occurred is None:
        raise Untranslatable("no readable time (MSH-7)")
    if code == "AA":
        ctx.emit("program.auto_accepted", slot="msa", occurred_at=occurred, subject=subject,
                 data={"request_id": request_id})
        return
    reason_code, reason_text = _errors(ctx)
    ctx.emit("program.auto_rejected", slot="msa", occurred_at=occurred, subject=subject,
             data={"request_id": request_id, "reason_code": reason_code,
                   "reason_text": reason_text})


def translate_ack(ctx: Context) -> None:
    msa = ctx.view.first("MSA")
    if msa is None:
        raise Untranslatable("ACK without MSA")
    ctx.used_segments.add("MSA")
    code, acked = msa.get(1).upper(), msa.get(2)
    if not acked:
        ctx.note("MSA-2 (acknowledged message control id) is empty")
    what = {"CA": "accepted", "AA": "accepted", "CE": "refused (error)", "AE": "refused (error)",
            "CR": "refused (reject)", "AR": "refused (reject)"}.get(code, f"code {code!r}")
    ctx.translation.no_event_reason = (
        f"acknowledgement {ctx.translation.message_type} (MSA-1 {code}: {what}) of message "
        f"{acked or '<unnamed>'}: it confirms receipt only, no ledger event"
    )
    _errors(ctx)
