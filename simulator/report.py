"""The truth file and the run summary, built from a finished :class:`Simulation`.

Truth file format (``infusion-ledger-simulator-truth/1``, documented in docs/simulator.md):
``conditions`` every rule should fire on; ``dont_care`` conditions a rule may or may not
report (deadline answered within the band, cut by the end of the run, or suppressed by
R30); ``suppression_windows`` (pump, rules, from, to) where findings are don't-care;
``injections`` with the condition ids each produced; ``malformed``, ``duplicates`` and
``out_of_order`` counts with their event ids; ``summary`` counts by rule and kind.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from simulator import clock
from simulator.errors import TARGETS, ErrorKind
from simulator.truth import FORMAT, RULE_PARAMS

if TYPE_CHECKING:
    from simulator.simulation import Simulation

DISCRETE_DELIVERY = (
    "infusion.started", "infusion.rate_changed", "infusion.paused", "infusion.resumed",
    "infusion.kvo_started", "infusion.bolus_delivered", "infusion.vtbi_completed",
    "infusion.stopped",
)


def _rule_key(rule: str) -> tuple[int, str]:
    return (int(rule[1:]) if rule[1:].isdigit() else 999, rule)


def _sorted_counts(counter: Counter[str], key: Any = None) -> dict[str, int]:
    return {k: counter[k] for k in sorted(counter, key=key)}


def truth_document(sim: Simulation, end_ms: int) -> dict[str, Any]:
    truth, config = sim.truth, sim.config
    conditions = sorted(truth.conditions, key=lambda c: (c.at_ms, c.seq))
    dont_care = sorted(truth.dont_care, key=lambda c: (c.at_ms, c.seq))
    malformed_kinds = Counter(m["kind"] for m in truth.malformed)
    return {
        "format": FORMAT,
        "seed": config.seed,
        "run_key": sim.run_key,
        "start": clock.fmt(config.start_ms),
        "end": clock.fmt(end_ms),
        "hours": (end_ms - config.start_ms) / clock.HOUR,
        "config": config.model_dump(mode="json"),
        "parameters": RULE_PARAMS,
        "kind_targets": {kind.value: list(TARGETS[kind]) for kind in ErrorKind},
        "conditions": [c.as_json() for c in conditions],
        "dont_care": [c.as_json() for c in dont_care],
        "suppression_windows": [
            {"pump_id": w["pump_id"], "rules": list(w["rules"]), "from": clock.fmt(w["from_ms"]),
             "to": clock.fmt(w["to_ms"]), "reason": w["reason"]}
            for w in truth.windows
        ],
        "injections": [
            {"kind": i.kind, "time": clock.fmt(i.at_ms), **i.subjects.as_json(),
             "detail": i.detail, "conditions": i.conditions}
            for i in truth.injections
        ],
        "malformed": {"count": len(truth.malformed),
                      "by_kind": _sorted_counts(malformed_kinds), "lines": truth.malformed},
        "duplicates": {"count": len(truth.duplicates), "event_ids": truth.duplicates},
        "out_of_order": {"count": len(truth.out_of_order), "event_ids": truth.out_of_order},
        "summary": truth_summary(sim),
    }


def truth_summary(sim: Simulation) -> dict[str, Any]:
    truth = sim.truth
    by_rule = Counter(c.rule for c in truth.conditions)
    injected = Counter(c.rule for c in truth.conditions if c.injection is not None)
    by_kind = Counter(i.kind for i in truth.injections)
    return {
        "conditions": len(truth.conditions),
        "injected_conditions": sum(injected.values()),
        "natural_conditions": len(truth.conditions) - sum(injected.values()),
        "dont_care": len(truth.dont_care),
        "by_rule": _sorted_counts(by_rule, _rule_key),
        "injected_by_rule": _sorted_counts(injected, _rule_key),
        "injections_by_kind": _sorted_counts(by_kind),
        "injections_without_condition": sum(1 for i in truth.injections if not i.conditions),
        "malformed": len(truth.malformed),
        "duplicates": len(truth.duplicates),
        "out_of_order": len(truth.out_of_order),
    }


def summary(sim: Simulation, end_ms: int) -> dict[str, Any]:
    days = max(end_ms - sim.config.start_ms, 1) / clock.DAY
    by_type = sim.emitter.by_type
    started = by_type.get("infusion.started", 0)
    pumps = len(sim.hospital.pumps)
    alarms = sum(sim.alarms.counts.values())
    delivery = sum(by_type.get(t, 0) for t in DISCRETE_DELIVERY)
    return {
        "seed": sim.config.seed,
        "start": clock.fmt(sim.config.start_ms),
        "end": clock.fmt(end_ms),
        "events": sum(by_type.values()) + sim.emitter.backfilled,
        "backfill_events": sim.emitter.backfilled,
        "events_by_type": _sorted_counts(by_type),
        "lines": sim.output.lines,
        "pumps": pumps,
        "infusions_started": sim.infusions_started,
        "infusions_per_day": round(sim.infusions_started / days, 1),
        "alarms": alarms,
        "alarms_per_pump_day": round(alarms / pumps / days, 3) if pumps else 0.0,
        "alarms_by_kind": dict(sim.alarms.counts),
        "delivery_events_per_infusion": round(delivery / started, 2) if started else 0.0,
        "truth": {k: v for k, v in truth_summary(sim).items()
                  if k in ("conditions", "injected_conditions", "natural_conditions",
                           "dont_care", "by_rule")},
        "malformed": len(sim.truth.malformed),
        "duplicates": len(sim.truth.duplicates),
    }
