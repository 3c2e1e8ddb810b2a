"""Instant rule checks on what a pump actually runs, against the active order.

These evaluate DOMAIN.md §7 conditions with the default parameters of
:data:`simulator.truth.RULE_PARAMS` on the simulator's own state, at the moment the
triggering event is emitted: a start (R01 R02 R04 R05 R06 R07 R08 R10 R11 R12 R14 R17
R27 R29), a rate change (R01 R02) and a bolus (R28). Rules are checked independently, so
one injected error may produce several conditions (a wrong concentration also makes the
rate wrong) and an injection inside tolerance produces none.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ledger import units
from simulator import clock
from simulator.truth import Subjects

if TYPE_CHECKING:
    from simulator.events import Ref
    from simulator.infusions import Program, Source
    from simulator.orders import Order
    from simulator.simulation import Simulation
    from simulator.truth import Injection

RATE_REL = Decimal("0.05")
RATE_FLOOR = Decimal("0.1")
WEIGHT_REL = Decimal("0.02")
WEIGHT_FLOOR = Decimal("0.5")
STALE_AUTO_PROGRAM_MS = 15 * clock.MINUTE
HARD_THEN_BASIC_MS = 15 * clock.MINUTE


def subjects_of(source: Source) -> Subjects:
    channel = source.channel
    return Subjects(
        patient_id=channel.patient.patient_id if channel.patient else None,
        order_id=source.order.order_id if source.order else None,
        pump_id=channel.pump.pump_id,
        channel=channel.label,
    )


def rate_off(order: Order, rate: Decimal) -> str | None:
    """Why ``rate`` (mL/h) breaks R01 for ``order``, or None when it is within tolerance."""
    if order.titration is not None and order.dose is not None:
        low, high = order.flow(order.titration[0]), order.flow(order.titration[1])
        if rate < low - units.tolerance(low, rel=RATE_REL, floor=RATE_FLOOR):
            return f"{rate} mL/h below the titration range {low:.2f}-{high:.2f}"
        if rate > high + units.tolerance(high, rel=RATE_REL, floor=RATE_FLOOR):
            return f"{rate} mL/h above the titration range {low:.2f}-{high:.2f}"
        return None
    expected = order.expected_rate()
    if units.within_tolerance(rate, expected, rel=RATE_REL, floor=RATE_FLOOR):
        return None
    return f"{rate} mL/h vs ordered {expected:.3f} mL/h"


def dose_off(order: Order, dose: Decimal | None, unit: str | None) -> str | None:
    """Why a dose rate breaks R02 (outside the order's titration range), or None."""
    if order.titration is None or dose is None or unit != order.dose_unit:
        return None
    low, high, _step = order.titration
    if dose < low or dose > high:
        return f"{dose} {unit} outside {low}-{high}"
    return None


def _same_concentration(program: Program, order: Order) -> bool:
    drug = order.drug
    if drug.amount is None or program.amount is None or program.amount_unit is None:
        return True
    try:
        amount = units.convert(program.amount, program.amount_unit, drug.amount_unit or "")
    except units.UnitError:
        return False
    return bool(amount * (drug.volume or 0) == drug.amount * (program.volume or 0))


def check_start(
    sim: Simulation, source: Source, confirmed: Ref, started: Ref, *,
    requested: Program | None, requested_ms: int | None, auto_attempted: bool,
    hard_alert: Ref | None, injection: Injection | None,
) -> None:
    truth, order, program = sim.truth, source.order, source.program
    who = subjects_of(source)
    ids = [confirmed.event_id, started.event_id]

    def add(rule: str, kind: str, trigger: Ref, detail: str = "") -> None:
        truth.add(rule, kind, trigger, who, event_ids=ids, injection=injection, detail=detail)

    if program.library_mode == "basic":
        add("R12", "library_bypass", confirmed, "started in basic mode")
        if hard_alert is not None and started.at_ms - hard_alert.at_ms <= HARD_THEN_BASIC_MS:
            truth.add("R14", "hard_limit_then_basic", confirmed, who,
                      event_ids=[*ids, hard_alert.event_id], injection=injection,
                      detail="hard limit, then the same drug in basic mode")
    if order is None:
        add("R08", "no_order", started, f"{program.drug.name} with no active order")
    else:
        if program.mode == "manual" and not auto_attempted:
            add("R11", "manual_program", confirmed, "order and interoperable pump existed")
        if program.mode == "auto" and requested is not None:
            diff = _edited(requested, program)
            if diff:
                add("R10", "manual_edit_after_auto", confirmed, f"edited {', '.join(diff)}")
            if requested_ms is not None and started.at_ms - requested_ms > STALE_AUTO_PROGRAM_MS:
                add("R29", "stale_auto_program", started)
        if program.drug.code != order.drug.code:
            add("R04", "wrong_drug", confirmed, f"{program.drug.name} for {order.drug.name}")
        if not _same_concentration(program, order):
            add("R05", "wrong_concentration", confirmed,
                f"{program.amount} {program.amount_unit}/{program.volume} mL")
        if program.dose_unit and order.dose_unit and program.dose_unit != order.dose_unit:
            add("R06", "wrong_dosing_unit", confirmed, f"{program.dose_unit} vs {order.dose_unit}")
        if program.weight is not None and order.weight is not None:
            tol = max(order.weight * WEIGHT_REL, WEIGHT_FLOOR)
            if abs(program.weight - order.weight) > tol:
                add("R17", "weight_discrepancy", confirmed,
                    f"{program.weight} vs {order.weight} kg")
        if source.channel.patient is not order.patient:
            add("R07", "wrong_patient", started, "channel associated with another patient")
        why = rate_off(order, program.rate)
        if why:
            add("R01", "rate_mismatch", started, why)
        why = dose_off(order, program.dose, program.dose_unit)
        if why:
            add("R02", "dose_outside_titration", started, why)
    twin = _duplicate(sim, source)
    if twin is not None:
        add("R27", "duplicate_therapy", started, f"also on {twin.channel.pump.pump_id}-"
            f"{twin.channel.label}")


def _edited(requested: Program, confirmed: Program) -> list[str]:
    fields = []
    for name in ("rate", "dose", "vtbi", "weight", "amount", "volume"):
        if getattr(requested, name) != getattr(confirmed, name):
            fields.append(name)
    if requested.drug.code != confirmed.drug.code:
        fields.append("medication")
    return fields


def _duplicate(sim: Simulation, source: Source) -> Source | None:
    """Another channel running the same drug for the same patient."""
    patient = source.channel.patient
    if patient is None:
        return None
    for other in sim.sources.values():
        if other is source or other.channel is source.channel:
            continue
        if other.channel.patient is patient and other.program.drug.code == source.program.drug.code:
            return other
    return None


def check_rate_change(sim: Simulation, source: Source, ref: Ref,
                      injection: Injection | None) -> None:
    order = source.order
    if order is None:
        return
    who = subjects_of(source)
    why = rate_off(order, source.rate)
    if why:
        sim.truth.add("R01", "rate_mismatch", ref, who, injection=injection, detail=why)
    why = dose_off(order, source.dose, source.program.dose_unit)
    if why:
        sim.truth.add("R02", "dose_outside_titration", ref, who, injection=injection, detail=why)


def check_bolus(sim: Simulation, source: Source, ref: Ref, dose: Decimal | None,
                unit: str | None, injection: Injection | None) -> None:
    order = source.order
    allowed = order.drug.bolus if order is not None else None
    why = None
    if allowed is None:
        why = "no bolus in the order"
    elif dose is None or unit != allowed[1] or dose > allowed[0]:
        why = f"bolus {dose} {unit} vs ordered {allowed[0]} {allowed[1]}"
    elif allowed[2] is not None:
        hour = [d for t, d in source.boluses if ref.at_ms - t < clock.HOUR]
        if sum(hour, Decimal(0)) > allowed[2]:
            why = f"{sum(hour, Decimal(0))} {unit} within an hour (max {allowed[2]})"
    if why:
        sim.truth.add("R28", "bolus_without_order", ref, subjects_of(source),
                      injection=injection, detail=why)
