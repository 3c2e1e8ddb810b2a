"""Benchmark: discrepancy findings against the simulator's ground truth, per rule.

Simulates a hospital (``simulator``: the events and a truth file listing every condition a
rule should fire on), imports the events into a throwaway database through the ledger's
import path, runs every projection until caught up (as ``ledger project --once``), reads
the ``discrepancies`` view and matches findings to truth conditions: same rule,
compatible subject (every id both sides name is equal: pump, channel, order, patient) and
an event time within the rule's window of the condition's time or deadline. Matching is
one-to-one, closest first. Findings matching a *don't care* condition or inside a
suppression window of the truth count neither way. Prints per-rule precision and recall,
the projections' throughput with and without the engine, and last a JSON line.

    python bench/discrepancy_quality.py [--seed 7] [--hours 24] [--error-multiplier 3]
        [--database-url URL] [--replay]   # --replay: engine in memory, no database
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, machine, throwaway_database

SUBJECT_IDS = ("pump_id", "channel", "order_id", "patient_id")
#: Rules judged only after waiting for late data although the truth gives no deadline:
#: seconds after the condition's time (R11: the late-data allowance; R08: grace + allowance).
WAIT_S = {"R08": 600, "R11": 300}
#: Seconds between a finding's event time and the truth's time or deadline that still match.
WINDOW_S: dict[str, int] = defaultdict(lambda: 300)


def instant(value: Any) -> int:
    """Microseconds since the epoch of an RFC 3339 string or an aware datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return int(moment.timestamp() * 1_000_000)


# -- matching ------------------------------------------------------------------------------
def _compatible(finding: dict[str, Any], condition: dict[str, Any]) -> bool:
    shared = 0
    for key in SUBJECT_IDS:
        a, b = finding.get(key), condition.get(key)
        if a is not None and b is not None:
            if a != b:
                return False
            shared += 1
    return shared > 0


def _distance(finding: dict[str, Any], condition: dict[str, Any]) -> int:
    times = [instant(condition["time"])]
    if condition.get("due_at"):
        times.append(instant(condition["due_at"]))
    mine = [finding["opened_at"], finding.get("triggered_at") or finding["opened_at"]]
    return min(abs(a - b) for a in mine for b in times)


def _pairs(findings: list[dict[str, Any]], conditions: list[dict[str, Any]]
           ) -> list[tuple[int, int, int]]:
    by_rule: dict[str, list[int]] = defaultdict(list)
    for index, condition in enumerate(conditions):
        by_rule[condition["rule"]].append(index)
    pairs = []
    for f_index, finding in enumerate(findings):
        window = WINDOW_S[finding["rule_id"]] * 1_000_000
        for c_index in by_rule.get(finding["rule_id"], ()):
            condition = conditions[c_index]
            if _compatible(finding, condition):
                distance = _distance(finding, condition)
                if distance <= window:
                    pairs.append((distance, f_index, c_index))
    return sorted(pairs)


def _suppressed(finding: dict[str, Any], windows: list[dict[str, Any]]) -> bool:
    at = finding.get("triggered_at") or finding["opened_at"]
    for window in windows:
        if finding.get("pump_id") != window["pump_id"] or finding["rule_id"] == "R30":
            continue
        if "*" not in window["rules"] and finding["rule_id"] not in window["rules"]:
            continue
        if instant(window["from"]) <= at <= instant(window["to"]):
            return True
    return False


def _undecided(condition: dict[str, Any], horizon: int | None, end: str | None) -> bool:
    if horizon is None or end is None:
        return False
    if condition.get("due_at"):
        return instant(condition["due_at"]) > horizon
    wait = WAIT_S.get(condition["rule"])
    return wait is not None and instant(condition["time"]) + wait * 1_000_000 > instant(end)


def match(findings: list[dict[str, Any]], truth: dict[str, Any], *,
          undecided_s: int = 300, recorded: set[str] | None = None) -> dict[str, Any]:
    """Per-rule true positives, false positives and misses of ``findings`` vs ``truth``.

    Findings carry ``rule_id``, the subject ids, ``opened_at`` and ``triggered_at``
    (microseconds). Only rules the truth models (its ``parameters``) are scored. With
    ``recorded`` (the event ids the ledger holds), a condition whose triggering event the
    contract refused (the simulator wrote an invalid event) is set aside and counted.
    """
    scored = set(truth.get("parameters") or {c["rule"] for c in truth["conditions"]})
    # A deadline in the data's last `undecided_s` is not decidable yet: the engine waits
    # that long past a deadline for late data, and no event after the end moves its clock.
    horizon = instant(truth["end"]) - undecided_s * 1_000_000 if truth.get("end") else None
    conditions, dont_care, refused = [], list(truth.get("dont_care", [])), 0
    for condition in truth["conditions"]:
        if recorded is not None and condition["event_ids"] \
                and condition["event_ids"][0] not in recorded:
            refused += 1
        elif _undecided(condition, horizon, truth.get("end")):
            dont_care.append(condition)
        else:
            conditions.append(condition)
    mine = [f for f in findings if f["rule_id"] in scored]
    taken_f: set[int] = set()
    taken_c: set[int] = set()
    for _d, f_index, c_index in _pairs(mine, conditions):
        if f_index not in taken_f and c_index not in taken_c:
            taken_f.add(f_index)
            taken_c.add(c_index)
    excused = {f for _d, f, _c in _pairs(mine, dont_care)} - taken_f
    windows = truth.get("suppression_windows", [])
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    false_positives, misses = [], []
    for index, finding in enumerate(mine):
        if index in taken_f:
            tp[finding["rule_id"]] += 1
        elif index not in excused and not _suppressed(finding, windows):
            fp[finding["rule_id"]] += 1
            false_positives.append(finding)
    for index, condition in enumerate(conditions):
        if index not in taken_c and condition["rule"] in scored:
            fn[condition["rule"]] += 1
            misses.append(condition)
    per_rule = {}
    for rule in sorted(scored, key=lambda r: (len(r), r)):
        t, p, n = tp[rule], fp[rule], fn[rule]
        per_rule[rule] = {
            "precision": round(t / (t + p), 4) if t + p else None,
            "recall": round(t / (t + n), 4) if t + n else None,
            "tp": t, "fp": p, "fn": n,
        }
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    unscored = Counter(f["rule_id"] for f in findings if f["rule_id"] not in scored)
    return {
        "precision": round(total_tp / (total_tp + total_fp), 4) if total_tp + total_fp else None,
        "recall": round(total_tp / (total_tp + total_fn), 4) if total_tp + total_fn else None,
        "per_rule": per_rule, "tp": total_tp, "fp": total_fp, "fn": total_fn,
        "undecided_at_end": len(truth["conditions"]) - len(conditions) - refused,
        "trigger_refused_by_contract": refused,
        "unscored_findings": dict(sorted(unscored.items())),
        "false_positives": false_positives, "misses": misses,
    }


# -- running the pipeline -----------------------------------------------------------------
def simulate(seed: int, hours: float, multiplier: float, out: Path, truth: Path) -> dict:
    from simulator import SimulationConfig, write_ndjson

    config = SimulationConfig(seed=seed, hours=hours, error_multiplier=multiplier)
    result = write_ndjson(config, out, truth_path=truth)
    return dict(result.summary)


def _lines(path: Path) -> Iterable[dict[str, Any]]:
    """Valid, first-seen events of an NDJSON file in file order (what import keeps)."""
    from ledger.contract import parse_event
    from ledger.errors import ContractError

    seen: set[str] = set()
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                event = parse_event(raw)
            except ContractError:
                continue
            if str(event.event_id) in seen:
                continue
            seen.add(str(event.event_id))
            yield json.loads(raw)


def replay_findings(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any], set[str]]:
    from projections.discrepancies.replay import findings, replay

    started = time.perf_counter()
    events = list(_lines(path))
    engine = replay(events)
    seconds = time.perf_counter() - started
    return (findings(engine), {"replay_seconds": round(seconds, 1)},
            {e["event_id"] for e in events})


def pipeline_findings(path: Path, database_url: str | None
                      ) -> tuple[list[dict[str, Any]], dict[str, Any], set[str]]:
    import psycopg
    from psycopg.rows import dict_row

    from ledger.store.event_store import EventStore
    from ledger_cli.cmd_import import import_file
    from projections import registry
    from projections.runtime.runner import ProjectionRunner

    figures: dict[str, Any] = {}
    with throwaway_database(database_url) as params:
        started = time.perf_counter()
        with EventStore(params) as store:
            counts = import_file(store, path, 1000)
        figures["import_seconds"] = round(time.perf_counter() - started, 1)
        figures["imported"] = counts
        per_projection = {}
        for projection in registry.build():
            started = time.perf_counter()
            with ProjectionRunner(params.conninfo, projection, batch_size=2000) as runner:
                stats = runner.run_until_caught_up()
            seconds = time.perf_counter() - started
            per_projection[projection.name] = {
                "seconds": round(seconds, 2), "events": stats.events,
                "events_per_s": round(stats.events / seconds) if seconds else None,
            }
            print(f"  {projection.name}: {stats.events} events in {seconds:.1f} s",
                  file=sys.stderr, flush=True)
        figures["projections"] = per_projection
        with psycopg.connect(params.conninfo, row_factory=dict_row) as conn:
            rows = conn.execute("SELECT * FROM discrepancies").fetchall()
            recorded = {str(r["event_id"]) for r in conn.execute(
                "SELECT event_id FROM ledger_events").fetchall()}
    findings = []
    for row in rows:
        finding = dict(row)
        for key in ("opened_at", "triggered_at", "detected_at"):
            if finding.get(key) is not None:
                finding[key] = instant(finding[key])
        findings.append(finding)
    return findings, figures, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--error-multiplier", type=float, default=3.0,
                        help="scale every injected error rate (more conditions per rule)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--replay", action="store_true",
                        help="run the engine in memory instead of import + project")
    parser.add_argument("--show", type=int, default=0,
                        help="print up to N false positives and misses per rule")
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="dq-") as tmp:
        events, truth_path = Path(tmp) / "sim.ndjson", Path(tmp) / "truth.json"
        started = time.perf_counter()
        summary = simulate(args.seed, args.hours, args.error_multiplier, events, truth_path)
        print(f"simulated {summary['events']} events, {summary['infusions_started']} "
              f"infusions started in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        truth = json.loads(truth_path.read_text())
        if args.replay:
            findings, figures, recorded = replay_findings(events)
        else:
            findings, figures, recorded = pipeline_findings(events, args.database_url)
    result = match(findings, truth, recorded=recorded)
    for rule, figure in result["per_rule"].items():
        print(f"  {rule}: precision {figure['precision']} recall {figure['recall']} "
              f"(tp {figure['tp']}, fp {figure['fp']}, fn {figure['fn']})", file=sys.stderr)
    if args.show:
        for label in ("false_positives", "misses"):
            shown: Counter[str] = Counter()
            for item in result[label]:
                rule = item.get("rule_id") or item.get("rule")
                if shown[rule] < args.show:
                    shown[rule] += 1
                    print(f"{label[:-1]}: {json.dumps(item, default=str)[:600]}",
                          file=sys.stderr)
    emit({
        "bench": "discrepancy_quality", "precision": result["precision"],
        "recall": result["recall"], "per_rule": result["per_rule"],
        "tp": result["tp"], "fp": result["fp"], "fn": result["fn"],
        "unscored_findings": result["unscored_findings"],
        "undecided_at_end": result["undecided_at_end"],
        "trigger_refused_by_contract": result["trigger_refused_by_contract"], "seed": args.seed,
        "hours": args.hours, "error_multiplier": args.error_multiplier,
        "events": summary["events"], "infusions_started": summary["infusions_started"],
        "truth_conditions": len(truth["conditions"]), "mode": "replay" if args.replay
        else "pipeline", **figures,
    })


if __name__ == "__main__":
    main()
