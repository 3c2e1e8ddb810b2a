"""The ground truth is precise: it references real events, and an independent reading of
the event stream finds exactly its conditions (don't-care entries excepted)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from simulator import MemorySink, SimulationConfig, SimulationResult, simulate

Event = dict[str, Any]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def run() -> tuple[list[Event], SimulationResult]:
    config = SimulationConfig(seed=8, hours=10, telemetry=False, error_multiplier=3.0)
    sink = MemorySink()
    result = simulate(config, sink)
    return readable(sink, result), result


def readable(sink: MemorySink, result: SimulationResult) -> list[Event]:
    """Each valid event once (duplicates and the malformed copies left out)."""
    malformed = {line["event_id"] for line in result.truth["malformed"]["lines"]}
    events: dict[str, Event] = {}
    for _key, value in sink.messages:
        try:
            event = json.loads(value)
        except json.JSONDecodeError:
            continue
        if event.get("event_id") not in malformed:
            events.setdefault(event["event_id"], event)
    return list(events.values())


def keys(result: SimulationResult, rule: str, *, dont_care: bool = False) -> set[str]:
    """The trigger event ids of ``rule``'s conditions (or don't-care entries)."""
    entries = result.truth["dont_care" if dont_care else "conditions"]
    return {c["event_ids"][0] for c in entries if c["rule"] == rule}


def compare(found: set[str], result: SimulationResult, rule: str) -> None:
    expected = keys(result, rule)
    maybe = keys(result, rule, dont_care=True)
    assert expected - found == set(), f"{rule}: in the truth but not in the stream"
    assert found - expected - maybe == set(), f"{rule}: in the stream but not in the truth"


def test_every_condition_references_emitted_events(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    ids = {e["event_id"] for e in events}
    conditions = result.truth["conditions"] + result.truth["dont_care"]
    assert len(result.truth["conditions"]) > 50
    for condition in conditions:
        assert condition["event_ids"], condition
        assert set(condition["event_ids"]) <= ids, condition
        assert condition["time"] == next(
            e["occurred_at"] for e in events if e["event_id"] == condition["event_ids"][0])


def test_conditions_carry_rule_kind_time_subjects_and_parameters(
    run: tuple[list[Event], SimulationResult],
) -> None:
    _events, result = run
    for condition in result.truth["conditions"]:
        assert condition["rule"].startswith("R") and condition["kind"]
        assert condition["params"] == result.truth["parameters"][condition["rule"]]
        assert condition["injected"] == (condition["injection"] is not None)
        assert {"patient_id", "order_id", "pump_id", "channel"} <= set(condition)
    summary = result.truth["summary"]
    assert sum(summary["by_rule"].values()) == len(result.truth["conditions"])


def test_basic_mode_starts_are_exactly_the_r12_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    found = {e["event_id"] for e in events
             if e["type"] == "program.confirmed" and e["data"]["library_mode"] == "basic"
             and "received_at" in e}
    assert found
    compare(found, result, "R12")


def test_manual_programs_with_an_order_are_exactly_the_r11_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    requests: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
    for e in events:
        if e["type"] == "program.auto_requested":
            s = e["subject"]
            requests[(s["pump_id"], s["channel"], s["order_id"])].append(at(e["occurred_at"]))
    found = set()
    for e in events:
        s = e["subject"]
        if (e["type"] != "program.confirmed" or e["data"]["mode"] != "manual"
                or "order_id" not in s or "received_at" not in e):
            continue
        when = at(e["occurred_at"])
        recent = [t for t in requests[(s["pump_id"], s["channel"], s["order_id"])]
                  if timedelta(0) <= when - t <= timedelta(minutes=15)]
        if not recent:
            found.add(e["event_id"])
    assert found
    compare(found, result, "R11")


def test_overrides_are_exactly_the_r13_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    found = {e["event_id"] for e in events if e["type"] == "ders.limit_alert_resolved"
             and e["data"]["outcome"] == "overridden"}
    compare(found, result, "R13")
    fast = [c for c in result.truth["conditions"] if c["rule"] == "R13"
            and c["kind"] == "fast_override"]
    for condition in fast:
        resolved = next(e for e in events if e["event_id"] == condition["event_ids"][0])
        assert float(resolved["data"]["seconds_to_resolve"]) < 2


def test_edited_auto_programs_are_exactly_the_r10_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    requested = {e["data"]["request_id"]: e["data"] for e in events
                 if e["type"] == "program.auto_requested" and "received_at" in e}
    found = set()
    for e in events:
        if e["type"] != "program.confirmed" or e["data"]["mode"] != "auto":
            continue
        asked = requested.get(e["data"].get("request_id"))
        if asked is None:
            continue
        for field in ("rate", "dose", "vtbi", "dosing_weight", "concentration"):
            if asked.get(field) != e["data"].get(field):
                found.add(e["event_id"])
        if asked["medication"]["code"] != e["data"]["medication"]["code"]:
            found.add(e["event_id"])
    assert found
    compare(found, result, "R10")


def test_unanswered_alarms_are_exactly_the_r22_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    end = at(result.truth["end"])
    answers: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for e in events:
        if e["type"] in ("alarm.silenced", "alarm.acknowledged", "alarm.cleared"):
            answers[(e["subject"]["pump_id"], e["subject"]["alarm_id"])].append(
                at(e["occurred_at"]))
    limit = {"high": timedelta(minutes=2), "medium": timedelta(minutes=10)}
    found = set()
    for e in events:
        if e["type"] != "alarm.raised" or e["data"]["priority"] not in limit:
            continue
        raised = at(e["occurred_at"])
        deadline = raised + limit[e["data"]["priority"]]
        first = min(answers[(e["subject"]["pump_id"], e["subject"]["alarm_id"])], default=None)
        if (first is None or first > deadline) and deadline <= end:
            found.add(e["event_id"])
    assert found
    compare(found, result, "R22")


def test_uncharted_starts_and_rate_changes_are_the_r20_and_r21_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    end = at(result.truth["end"])
    charted: dict[tuple[str, str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for e in events:
        if e["type"] == "documentation.validated" and "received_at" in e:
            s = e["subject"]
            charted[(s["order_id"], s["pump_id"], s["channel"])].append(
                (at(e["occurred_at"]), at(e["data"]["observed_at"])))
    for rule, kind in (("R20", "infusion.started"), ("R21", "infusion.rate_changed")):
        found = set()
        for e in events:
            if e["type"] != kind or "received_at" not in e:
                continue
            s, when = e["subject"], at(e["occurred_at"])
            deadline = when + timedelta(minutes=60)
            docs = charted.get((s.get("order_id", ""), s["pump_id"], s["channel"]), [])
            if deadline <= end and not any(
                    when <= made <= deadline and observed >= when for made, observed in docs):
                found.add(e["event_id"])
        compare(found, result, rule)


def test_each_injection_lists_the_conditions_it_produced(
    run: tuple[list[Event], SimulationResult],
) -> None:
    _events, result = run
    by_id = {c["id"]: c for c in result.truth["conditions"]}
    produced = 0
    for injection in result.truth["injections"]:
        for cid in injection["conditions"]:
            assert by_id[cid]["injection"] == injection["kind"]
            produced += 1
    assert produced == sum(1 for c in result.truth["conditions"] if c["injected"])


VASOACTIVE = ("NOREPI-4-250", "EPI-4-250", "DOPA-400-250")


def by_source(events: list[Event]) -> dict[tuple[str, str, str], list[Event]]:
    """Pump-side events per (pump, channel, infusate source), in occurred order."""
    streams: dict[tuple[str, str, str], list[Event]] = defaultdict(list)
    for e in events:
        s = e["subject"]
        if e["type"].startswith(("infusion.", "program.confirmed")) and "channel" in s:
            source = e["data"].get("infusate_source", "primary")
            if source in ("bolus", "pca", "loading"):
                source = "primary"  # a bolus is given from the primary bag
            streams[(s["pump_id"], s["channel"], source)].append(e)
    for stream in streams.values():
        stream.sort(key=lambda e: at(e["occurred_at"]))
    return streams


def order_ends(events: list[Event]) -> dict[str, datetime]:
    return {e["subject"]["order_id"]: at(e["occurred_at"]) for e in events
            if e["type"] in ("order.discontinued", "order.completed")}


def test_long_pauses_and_kvo_are_exactly_the_r24_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    end, ended = at(result.truth["end"]), order_ends(events)
    found = set()
    for stream in by_source(events).values():
        for i, e in enumerate(stream):
            held = (e["type"] == "infusion.paused" and e["data"]["reason"] == "clinician") or (
                e["type"] == "infusion.kvo_started")
            order = e["subject"].get("order_id")
            if not held or order is None or "received_at" not in e:
                continue
            start = at(e["occurred_at"])
            if ended.get(order, end + timedelta(days=1)) <= start:
                continue
            exits = [at(x["occurred_at"]) for x in stream[i + 1:]
                     if x["type"] in ("infusion.resumed", "infusion.stopped")]
            leave = min([*exits[:1], ended.get(order, end + timedelta(days=1))])
            if leave > start + timedelta(minutes=30) and start + timedelta(minutes=30) <= end:
                found.add(e["event_id"])
    assert found
    compare(found, result, "R24")


def test_alarm_stops_left_too_long_are_exactly_the_r23_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    end = at(result.truth["end"])
    found = set()
    for stream in by_source(events).values():
        drug = None
        for i, e in enumerate(stream):
            if e["type"] == "program.confirmed":
                drug = e["data"]["medication"]["code"]
            if e["type"] != "infusion.paused" or e["data"]["reason"] != "alarm":
                continue
            limit = timedelta(minutes=5 if drug in VASOACTIVE else 30)
            start = at(e["occurred_at"])
            exits = [at(x["occurred_at"]) for x in stream[i + 1:]
                     if x["type"] in ("infusion.resumed", "infusion.stopped")]
            if (not exits or exits[0] > start + limit) and start + limit <= end:
                found.add(e["event_id"])
    compare(found, result, "R23")


def test_orders_never_started_are_exactly_the_r25_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    end, ended = at(result.truth["end"]), order_ends(events)
    started: dict[str, datetime] = {}
    for e in events:
        if e["type"] == "infusion.started" and "order_id" in e["subject"]:
            started.setdefault(e["subject"]["order_id"], at(e["occurred_at"]))
    found = set()
    for e in events:
        if e["type"] != "order.placed" or not e["data"].get("continuous", True):
            continue
        if "received_at" not in e:
            continue
        order = e["subject"]["order_id"]
        deadline = at(e["data"]["start_at"]) + timedelta(minutes=60)
        answered = min(started.get(order, end + timedelta(days=1)),
                       ended.get(order, end + timedelta(days=1)))
        if answered > deadline and deadline <= end:
            found.add(e["event_id"])
    compare(found, result, "R25")


def test_infusions_running_after_discontinue_are_exactly_the_r09_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    end = at(result.truth["end"])
    streams = by_source(events)
    found = set()
    for e in events:
        if e["type"] != "order.discontinued":
            continue
        order, when = e["subject"]["order_id"], at(e["occurred_at"])
        deadline = when + timedelta(minutes=15)
        if deadline > end:
            continue
        for stream in streams.values():
            mine = [x for x in stream if x["subject"].get("order_id") == order]
            before = [x for x in mine if at(x["occurred_at"]) <= when
                      and x["type"] != "infusion.status_reported"]
            last = before[-1] if before else None
            if last is None or last["type"] in ("infusion.stopped", "infusion.paused",
                                                "program.confirmed") or (
                    last["type"] == "infusion.vtbi_completed" and last["data"]["next"] == "stop"):
                continue
            stops = [at(x["occurred_at"]) for x in mine
                     if x["type"] == "infusion.stopped" and at(x["occurred_at"]) > when]
            if not stops or stops[0] > deadline:
                found.add(e["event_id"])
    compare(found, result, "R09")


def suppressed(result: SimulationResult, rule: str, pump: str, when: datetime) -> bool:
    return any(
        w["pump_id"] == pump and (rule in w["rules"] or w["rules"] == ["*"])
        and at(w["from"]) <= when <= at(w["to"])
        for w in result.truth["suppression_windows"]
    )


def test_rates_off_the_order_are_exactly_the_r01_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    from decimal import Decimal

    from ledger import units

    events, result = run
    orders: dict[str, dict[str, Any]] = {}

    def flow(order: dict[str, Any], dose: str) -> Decimal:
        conc = order["concentration"]
        weight = order.get("dosing_weight", {}).get("value")
        return units.flow_from_dose_rate(
            dose, order["dose"]["unit"], conc["amount"]["value"], conc["amount"]["unit"],
            conc["volume"]["value"], conc["volume"]["unit"], weight)

    found = set()
    for e in sorted(events, key=lambda e: at(e["occurred_at"])):
        if e["type"] == "order.placed":
            orders[e["subject"]["order_id"]] = dict(e["data"])
        elif e["type"] == "order.modified":
            orders[e["subject"]["order_id"]].update(
                {k: v for k, v in e["data"].items() if k != "reason"})
        elif e["type"] in ("infusion.started", "infusion.rate_changed") and "received_at" in e:
            order = orders.get(e["subject"].get("order_id", ""))
            if order is None or e["data"].get("infusate_source") in ("bolus", "pca"):
                continue
            rate = Decimal((e["data"].get("rate") or e["data"]["new_rate"])["value"])
            rel, floor = Decimal("0.05"), Decimal("0.1")
            if "rate" in order:
                ok = units.within_tolerance(rate, order["rate"]["value"], rel=rel, floor=floor)
            elif "titration" in order:
                low = flow(order, order["titration"]["min"]["value"])
                high = flow(order, order["titration"]["max"]["value"])
                ok = (low - units.tolerance(low, rel=rel, floor=floor) <= rate
                      <= high + units.tolerance(high, rel=rel, floor=floor))
            else:
                expected = flow(order, order["dose"]["value"])
                ok = units.within_tolerance(rate, expected, rel=rel, floor=floor)
            if not ok and not suppressed(result, "R01", e["subject"]["pump_id"],
                                         at(e["occurred_at"])):
                found.add(e["event_id"])
    assert found
    compare(found, result, "R01")


def test_boluses_beyond_the_order_are_exactly_the_r28_conditions(
    run: tuple[list[Event], SimulationResult],
) -> None:
    events, result = run
    orders = {e["subject"]["order_id"]: e["data"] for e in events if e["type"] == "order.placed"}
    given: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    found = set()
    for e in sorted(events, key=lambda e: at(e["occurred_at"])):
        if e["type"] != "infusion.bolus_delivered":
            continue
        order = orders.get(e["subject"].get("order_id", ""), {})
        allowed, dose = order.get("bolus"), e["data"].get("dose")
        when = at(e["occurred_at"])
        key = e["subject"]["pump_id"] + e["subject"]["channel"]
        if dose is not None:
            given[key].append((when, float(dose["value"])))
        if allowed is None or dose is None or dose["unit"] != allowed["dose"]["unit"] or (
                float(dose["value"]) > float(allowed["dose"]["value"])):
            found.add(e["event_id"])
        elif "max_per_hour" in allowed:
            hour = sum(d for t, d in given[key] if when - t < timedelta(hours=1))
            if hour > float(allowed["max_per_hour"]["value"]):
                found.add(e["event_id"])
    compare(found, result, "R28")


def _nomogram_windows(events: list[Event], result: SimulationResult) -> None:
    """Every aPTT nomogram change has an R01 don't-care window on the order's pump, from
    the change until the nurse follows — or until the end of the run if it ends first."""
    pump_of: dict[str, str] = {}
    changes = []
    for e in sorted(events, key=lambda e: at(e["occurred_at"])):
        if e["type"] == "infusion.started" and e["subject"].get("order_id"):
            pump_of[e["subject"]["order_id"]] = e["subject"]["pump_id"]
        elif e["type"] == "order.modified" and e["data"].get("reason") == "aPTT nomogram":
            changes.append((pump_of[e["subject"]["order_id"]], at(e["occurred_at"])))
    assert changes
    end = at(result.truth["end"])
    windows = {(w["pump_id"], at(w["from"])): at(w["to"])
               for w in result.truth["suppression_windows"] if w["rules"] == ["R01"]}
    for pump, when in changes:
        assert when <= windows[(pump, when)] <= end


def test_every_nomogram_change_opens_an_r01_window_from_the_change_on_the_order_s_pump(
    run: tuple[list[Event], SimulationResult],
) -> None:
    _nomogram_windows(*run)


def test_a_nomogram_change_the_run_ends_before_the_nurse_follows_is_still_covered() -> None:
    # Seed 5 changes a heparin dose 3.4 minutes before this run ends; the nurse follows
    # 2-12 minutes after a change. The pump runs the old dose till the end: R01 fires.
    config = SimulationConfig(seed=5, hours=4, telemetry=False, error_multiplier=3.0)
    sink = MemorySink()
    result = simulate(config, sink)
    events = readable(sink, result)
    end = at(result.truth["end"])
    assert any(e["type"] == "order.modified" and end - at(e["occurred_at"]) < timedelta(
        minutes=5) for e in events)
    _nomogram_windows(events, result)


def test_a_window_the_run_ends_before_closing_lasts_until_the_end() -> None:
    from simulator import clock
    from simulator.engine import Engine
    from simulator.events import Ref
    from simulator.truth import Subjects, Truth

    start = 1_772_323_200_000
    truth = Truth(Engine(start))
    truth.suppress("PUMP-1", start + clock.MINUTE, start + 5 * clock.MINUTE, ("R01",), "closed")
    still_open = truth.suppress("PUMP-2", start + clock.MINUTE, None, ("R01",), "open")
    for pump in ("PUMP-1", "PUMP-2"):
        truth.add("R01", "rate_mismatch", Ref(f"ev-{pump}", "t", start + 50 * clock.MINUTE,
                                              "infusion.rate_changed"), Subjects(pump_id=pump))
    truth.finalize(start + clock.HOUR)
    assert still_open["to_ms"] == start + clock.HOUR
    assert [c.subjects.pump_id for c in truth.conditions] == ["PUMP-1"]
    assert [c.subjects.pump_id for c in truth.dont_care] == ["PUMP-2"]
