"""The default hospital matches its published calibration figures (docs/simulator.md)."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import datetime
from itertools import pairwise

from simulator import MemorySink, SimulationConfig, simulate


def test_a_day_of_the_default_hospital_matches_the_published_figures() -> None:
    began = time.process_time()  # CPU time: a shared machine must not fail the test
    # Telemetry does not change the clinical world (tested elsewhere) and is most of the
    # cost, so it is left out to keep this test quick.
    result = simulate(SimulationConfig(seed=1, hours=24, telemetry=False), MemorySink())
    elapsed = time.process_time() - began
    summary = result.summary
    assert summary["pumps"] == 390
    assert 330 * 0.75 <= summary["infusions_per_day"] <= 330 * 1.25, summary["infusions_per_day"]
    per_pump = summary["alarms_per_pump_day"]
    assert 1.44 * 0.7 <= per_pump <= 1.44 * 1.3, per_pump
    kinds = Counter(summary["alarms_by_kind"])
    assert {k for k, _n in kinds.most_common(3)} == {"kvo", "hold", "occlusion"}
    # start, stop, VTBI complete + KVO, titrations, boluses and the pause/resume pairs the
    # alarm calibration implies (docs/simulator.md, "Events per infusion")
    assert 3 <= summary["delivery_events_per_infusion"] <= 8
    assert elapsed < 20


def test_running_channels_report_status_every_10_to_60_seconds() -> None:
    config = SimulationConfig(seed=2, hours=1, inject_errors=False).resized(
        units=2, beds=20, pumps=40)
    sink = MemorySink()
    simulate(config, sink)
    reports: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for _key, value in sink.messages:
        event = json.loads(value)
        if event["type"] == "infusion.status_reported":
            subject = event["subject"]
            reports[(subject["pump_id"], subject["channel"])].append(
                datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")))
    assert len(reports) >= 10
    for times in reports.values():
        gaps = Counter(round((b - a).total_seconds()) for a, b in pairwise(times))
        assert gaps, times
        assert 10 <= gaps.most_common(1)[0][0] <= 60


def test_the_hospital_can_be_resized() -> None:
    config = SimulationConfig().resized(units=9, beds=200, pumps=500)
    assert len(config.units) == 9
    assert sum(u.beds for u in config.units) == 200
    assert sum(u.pumps for u in config.units) == 500
    assert len({u.code for u in config.units}) == 9
