"""The simulator is deterministic for a seed: same seed and arguments, same bytes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from simulator import SimulationConfig, write_ndjson

ROOT = Path(__file__).resolve().parents[2]


def small(seed: int, hours: float = 3.0) -> SimulationConfig:
    return SimulationConfig(seed=seed, hours=hours).resized(units=3, beds=30, pumps=70)


def run(tmp: Path, name: str, config: SimulationConfig) -> tuple[bytes, bytes]:
    events, truth = tmp / f"{name}.ndjson", tmp / f"{name}.json"
    write_ndjson(config, events, truth_path=truth)
    return events.read_bytes(), truth.read_bytes()


def test_the_same_seed_gives_byte_identical_events_and_truth(tmp_path: Path) -> None:
    first = run(tmp_path, "a", small(11))
    second = run(tmp_path, "b", small(11))
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert first[0].count(b"\n") > 1_000


def test_a_different_seed_gives_different_events(tmp_path: Path) -> None:
    first = run(tmp_path, "a", small(11))
    other = run(tmp_path, "c", small(12))
    assert first[0] != other[0]
    assert first[1] != other[1]


def test_the_default_start_is_a_fixed_instant_not_the_wall_clock() -> None:
    assert SimulationConfig().start.isoformat() == "2026-03-01T06:00:00+00:00"


def test_telemetry_does_not_change_the_clinical_world() -> None:
    from simulator import MemorySink, simulate

    with_telemetry = simulate(small(5, 2).model_copy(update={"telemetry": True}), MemorySink())
    without = simulate(small(5, 2).model_copy(update={"telemetry": False}), MemorySink())
    assert with_telemetry.summary["infusions_started"] == without.summary["infusions_started"]
    assert with_telemetry.summary["alarms_by_kind"] == without.summary["alarms_by_kind"]


_SCRIPT = """
import hashlib, sys
from simulator import MemorySink, SimulationConfig, simulate
config = SimulationConfig(seed=3, hours=1.5).resized(units=2, beds=16, pumps=30)
sink = MemorySink()
result = simulate(config, sink)
digest = hashlib.sha256()
for key, value in sink.messages:
    digest.update(key.encode() + b"\\0" + value + b"\\n")
import json
digest.update(json.dumps(result.truth).encode())
print(digest.hexdigest())
"""


def test_another_start_day_never_reuses_an_event_id(tmp_path: Path) -> None:
    from datetime import timedelta

    first = small(11, 0.5)
    next_day = first.model_copy(update={"start": first.start + timedelta(days=1)})
    ids = [{json.loads(line)["event_id"] for line in run(tmp_path, name, config)[0].splitlines()
            if line.startswith(b"{") and line.endswith(b"}")}
           for name, config in (("d1", first), ("d2", next_day))]
    assert not ids[0] & ids[1]


def test_output_does_not_depend_on_pythonhashseed() -> None:
    digests = set()
    for hash_seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, cwd=ROOT, check=True,
                             capture_output=True, text=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_event_ids_are_uuid5_of_the_seed_and_a_counter(tmp_path: Path) -> None:
    import uuid

    events, truth = run(tmp_path, "ids", small(2, 0.5))
    first = json.loads(events.splitlines()[0])
    key = json.loads(truth)["run_key"]
    assert key.startswith("2:")
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"infusion-ledger-simulator:{key}")
    expected = {str(uuid.uuid5(namespace, str(n))) for n in range(1, 5_000)}
    assert first["event_id"] in expected
    assert uuid.UUID(first["event_id"]).version == 5
    assert hashlib.sha256(events).hexdigest()  # the bytes hash stably (used by the demo)
