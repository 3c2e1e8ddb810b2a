"""A seeded hospital simulator with ground truth, producing v1 contract events.

One average hospital by default (about 390 pumps, 330 infusions and 560 pump alarms a
day, calibrated as docs/simulator.md explains), deterministic for a seed: the same seed
and arguments give byte-identical events and truth. Events go to an NDJSON file or a
Kafka topic; the truth lists every condition a discrepancy rule (DOMAIN.md §7) should
fire on.

Public API::

    from simulator import SimulationConfig, simulate, write_ndjson, stream_to_kafka

    config = SimulationConfig(seed=7, hours=8)
    result = stream_to_kafka(config, "127.0.0.1:9092", "infusion.events.v1",
                             speedup=60, truth_path="truth.json", stop=threading.Event())
    result.summary["truth"]["by_rule"]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from simulator.config import ActivityRates, ErrorRates, SimulationConfig, UnitSpec
from simulator.errors import TARGETS, ErrorKind, SimulatorError
from simulator.simulation import Simulation, SimulationResult
from simulator.sinks import KafkaSink, MemorySink, NdjsonSink, Sink

__all__ = [
    "TARGETS",
    "ActivityRates",
    "ErrorKind",
    "ErrorRates",
    "KafkaSink",
    "MemorySink",
    "NdjsonSink",
    "Simulation",
    "SimulationConfig",
    "SimulationResult",
    "SimulatorError",
    "Sink",
    "UnitSpec",
    "simulate",
    "stream_to_kafka",
    "write_ndjson",
    "write_truth",
]


def simulate(
    config: SimulationConfig, sink: Sink, *,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Run ``config`` into ``sink`` (which the caller closes). ``on_progress`` gets the
    simulated time reached (ms since the epoch) now and then."""
    return Simulation(config, sink).run(should_stop=should_stop, on_progress=on_progress)


def write_truth(result: SimulationResult, path: Path | str) -> None:
    """The ground-truth document as JSON (deterministic bytes for a seed)."""
    text = json.dumps(result.truth, indent=1, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def write_ndjson(
    config: SimulationConfig, path: Path | str, *, truth_path: Path | str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    sink = NdjsonSink(path)
    try:
        result = simulate(config, sink, on_progress=on_progress)
    finally:
        sink.close()
    if truth_path is not None:
        write_truth(result, truth_path)
    return result


def stream_to_kafka(
    config: SimulationConfig, bootstrap_servers: str | list[str], topic: str, *,
    speedup: float = 0.0, truth_path: Path | str | None = None,
    stop: threading.Event | None = None, on_progress: Callable[[int], None] | None = None,
    **producer_options: object,
) -> SimulationResult:
    """Produce the simulation to ``topic``, paced at ``speedup`` x simulated time (0: as
    fast as possible). Setting ``stop`` ends the run early: what was generated is still
    sent, and the truth (written even then) covers exactly the simulated time reached."""
    sink = KafkaSink(bootstrap_servers, topic, start_ms=config.start_ms, speedup=speedup,
                     stop=stop, **producer_options)
    try:
        result = simulate(config, sink, on_progress=on_progress,
                          should_stop=stop.is_set if stop is not None else None)
    finally:
        sink.close()
    result.end_offsets = dict(sink.end_offsets)
    if truth_path is not None:
        write_truth(result, truth_path)
    return result
