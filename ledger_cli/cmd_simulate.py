"""``ledger simulate``: a seeded hospital's v1 events to an NDJSON file or Kafka, plus truth."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.errors import ConfigurationError
from ledger.settings import LedgerSettings
from ledger_cli.progress import Progress, say

if TYPE_CHECKING:
    from simulator import SimulationConfig, SimulationResult

DEFAULT_START = "2026-03-01T06:00:00Z"


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {text!r}") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or ±hh:mm)")
    return moment


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="generate a seeded hospital's events (NDJSON file or Kafka) and their ground truth",
        description="Deterministic for a seed: the same arguments give the same bytes.",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument("--start", type=_instant, default=_instant(DEFAULT_START),
                        help=f"simulated start, RFC 3339 with offset (default {DEFAULT_START})")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the events to this NDJSON file")
    target.add_argument("--kafka", action="store_true",
                        help="produce to LEDGER_KAFKA_BOOTSTRAP_SERVERS, the first topic")
    parser.add_argument("--truth", type=Path, help="write the ground truth to this JSON file")
    parser.add_argument("--speedup", type=float, default=0.0,
                        help="Kafka: pace at X times simulated time (0: as fast as possible)")
    parser.add_argument("--units", type=int, help="number of care units (templates repeat)")
    parser.add_argument("--beds", type=int, help="total beds")
    parser.add_argument("--pumps", type=int, help="total pumps")
    parser.add_argument("--error-rate", type=float, default=1.0,
                        help="multiply every injected-error rate (default 1)")
    parser.add_argument("--no-errors", action="store_true", help="inject no errors at all")
    parser.add_argument("--no-telemetry", action="store_true",
                        help="omit the periodic infusion.status_reported events")
    parser.set_defaults(handler=run)


def build_config(args: argparse.Namespace) -> SimulationConfig:
    SimulationConfig = _import_simulator().SimulationConfig

    if args.hours <= 0:
        raise ConfigurationError("--hours must be positive")
    if args.error_rate < 0:
        raise ConfigurationError("--error-rate must not be negative")
    config = SimulationConfig(
        seed=args.seed, start=args.start, hours=args.hours, error_multiplier=args.error_rate,
        inject_errors=not args.no_errors, telemetry=not args.no_telemetry,
    )
    if args.units or args.beds or args.pumps:
        config = config.resized(units=args.units, beds=args.beds, pumps=args.pumps)
    return config


def _progress(config: SimulationConfig) -> tuple[Progress, Any]:
    progress = Progress("simulate (simulated minutes)")
    total = round(config.hours * 60)
    start_ms = config.start_ms

    def update(reached_ms: int) -> None:
        progress.update((reached_ms - start_ms) // 60_000, total)

    return progress, update


def _import_simulator() -> Any:
    # Imported when the command runs, not at CLI start-up: the simulator is large.
    import simulator

    return simulator


def run(args: argparse.Namespace, settings: LedgerSettings) -> int:
    simulator = _import_simulator()
    config = build_config(args)
    progress, update = _progress(config)
    try:
        if args.kafka:
            result = _to_kafka(simulator, config, args, settings, update)
        else:
            result = simulator.write_ndjson(config, args.out, truth_path=args.truth,
                                            on_progress=update)
    except simulator.SimulatorError as exc:
        progress.finish()
        raise ConfigurationError(str(exc)) from exc
    progress.finish()
    _report(result, args)
    print(json.dumps(result.summary, separators=(",", ":")), file=sys.stdout, flush=True)
    return 0


def _to_kafka(simulator: Any, config: SimulationConfig, args: argparse.Namespace,
              settings: LedgerSettings, update: Any) -> SimulationResult:
    if not settings.kafka_topics:
        raise ConfigurationError("no Kafka topic configured (LEDGER_KAFKA_TOPICS)")
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    try:
        result: SimulationResult = simulator.stream_to_kafka(
            config, settings.kafka_bootstrap_servers, settings.kafka_topics[0],
            speedup=args.speedup, truth_path=args.truth, stop=stop, on_progress=update)
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        say("ledger simulate: interrupted; the truth covers the simulated time reached")
    return result


def _report(result: SimulationResult, args: argparse.Namespace) -> None:
    summary = result.summary
    where = "Kafka" if args.kafka else str(args.out)
    say(f"simulated {summary['start']} .. {summary['end']}: {summary['events']:,} events "
        f"({result.lines:,} lines with duplicates and malformed) to {where}")
    say(f"  {summary['infusions_per_day']} infusions/day, "
        f"{summary['alarms_per_pump_day']} alarms per pump per day over {summary['pumps']} pumps")
    truth = summary["truth"]
    rules = ", ".join(f"{rule} {count}" for rule, count in truth["by_rule"].items())
    say(f"  truth: {truth['conditions']} conditions ({truth['injected_conditions']} injected, "
        f"{truth['natural_conditions']} natural; {truth['dont_care']} don't care): {rules}")
    say(f"  {summary['malformed']} malformed lines (dead-letter), "
        f"{summary['duplicates']} duplicate deliveries")
    if args.truth:
        say(f"  truth written to {args.truth}")
