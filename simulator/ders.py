"""DERS (dose error reduction): library limit checks and the alert -> outcome flow.

A program in library mode is checked against its entry's soft and hard limits: on the
dose for dose-rate drugs (in the entry's dosing unit), on the flow for plain fluids and
intermittent drugs. Basic mode checks nothing (it "bypasses all safety features except
VTBI"). An alert is resolved by override (soft only), reprogram or cancel after some
seconds; an override is an R13 condition, flagged S2 when it took under 2 s.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from simulator.events import GATEWAY, Ref, qty
from simulator.medications import ALT_UNIT_LIMITS, Limits

if TYPE_CHECKING:
    from simulator.hospital import Pump
    from simulator.infusions import Program
    from simulator.simulation import Simulation
    from simulator.truth import Injection, Subjects

OVERRIDE_REASONS = (("ORDER_CONFIRMED", "dose confirmed with prescriber"),
                    ("CLIN_JUSTIFIED", "clinically justified"), ("OTHER", ""))


@dataclass(frozen=True)
class Verdict:
    limit_kind: str  # soft | hard
    bound: str  # upper | lower
    parameter: str  # dose | rate
    limit: Decimal
    value: Decimal
    unit: str


def limits_for(program: Program) -> tuple[Limits | None, str, Decimal, str]:
    """The limits that apply to ``program``, the parameter, its value and unit."""
    drug = program.drug
    if drug.dose_unit is not None and program.dose is not None and program.dose_unit:
        if program.dose_unit == drug.dose_unit:
            return drug.limits, "dose", program.dose, program.dose_unit
        return (ALT_UNIT_LIMITS.get((drug.key, program.dose_unit)), "dose", program.dose,
                program.dose_unit)
    return drug.limits, "rate", program.rate, "mL/h"


def check(program: Program) -> Verdict | None:
    if program.library_mode == "basic":
        return None
    limits, parameter, value, unit = limits_for(program)
    if limits is None:
        return None
    if limits.hard_max is not None and value > limits.hard_max:
        return Verdict("hard", "upper", parameter, limits.hard_max, value, unit)
    if limits.soft_max is not None and value > limits.soft_max:
        return Verdict("soft", "upper", parameter, limits.soft_max, value, unit)
    if limits.soft_min is not None and value < limits.soft_min:
        return Verdict("soft", "lower", parameter, limits.soft_min, value, unit)
    return None


def alert(
    sim: Simulation, subject: dict[str, str], subjects: Subjects, pump: Pump, program: Program,
    verdict: Verdict, outcome: str, seconds: Decimal, injection: Injection | None,
) -> Generator[int, None, tuple[Ref, Ref]]:
    """Raise the alert, wait ``seconds``, resolve it with ``outcome``; record overrides."""
    alert_id = sim.ids.next("DERS")
    raised = sim.emitter.emit("ders.limit_alert_raised", sim.engine.now, subject, {
        "alert_id": alert_id, "limit_kind": verdict.limit_kind, "parameter": verdict.parameter,
        "bound": verdict.bound, "limit": qty(verdict.limit, verdict.unit),
        "programmed": qty(verdict.value, verdict.unit),
        "library_entry_id": program.drug.entry, "care_area": program.care_area,
        "library_version": sim.config.library_version,
    }, GATEWAY, pump=pump)
    yield int(seconds * 1000)
    code, text = ("", "")
    if outcome == "overridden":
        code, text = OVERRIDE_REASONS[sim.rng.randrange(len(OVERRIDE_REASONS))]
    data: dict[str, object] = {"alert_id": alert_id, "outcome": outcome, "reason_text": text,
                               "seconds_to_resolve": format(seconds, "f")}
    if code:
        data["reason_code"] = code
    resolved = sim.emitter.emit("ders.limit_alert_resolved", sim.engine.now, subject, data,
                                GATEWAY, pump=pump)
    if outcome == "overridden":
        kind = "fast_override" if seconds < 2 else "soft_limit_override"
        sim.truth.add("R13", kind, resolved, subjects, event_ids=[raised.event_id],
                      injection=injection,
                      detail=f"{verdict.parameter} {verdict.value} {verdict.unit} over "
                             f"{verdict.bound} soft limit {verdict.limit} in {seconds} s")
    return raised, resolved


def override_seconds(sim: Simulation, fast: bool) -> Decimal:
    if fast:
        return Decimal(sim.rng.randint(6, 19)) / 10
    return Decimal(min(1200, max(25, round(sim.rng.lognormvariate(2.1, 0.7) * 10)))) / 10
