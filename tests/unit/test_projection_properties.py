"""Properties of the infusion folds: batching and persistence never change the result."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.store.reader import StoredRecord
from projections.infusions.projection import InfusionsProjection
from projections.runtime.base import RowSink
from tests.support.records import channel, record

HEPARIN = {"code": "235473", "name": "heparin 25,000 units in 250 mL D5W"}
MORPHINE = {"code": "7052", "name": "morphine 1 mg/mL"}


def _builders() -> list[Any]:
    def q(value: str, unit: str = "mL/h") -> dict[str, str]:
        return {"value": value, "unit": unit}

    return [
        lambda m, s: record("program.confirmed", minute=m, subject=channel(),
                            data={"medication": HEPARIN, "infusate_source": s,
                                  "request_id": None}),
        lambda m, s: record("program.confirmed", minute=m, subject=channel(order="ORD-2"),
                            data={"medication": MORPHINE, "infusate_source": s,
                                  "request_id": None}),
        lambda m, s: record("infusion.started", minute=m, subject=channel(),
                            data={"rate": q("14.4"), "infusate_source": s}),
        lambda m, s: record("infusion.rate_changed", minute=m, subject=channel(),
                            data={"new_rate": q("16"), "infusate_source": s}),
        lambda m, s: record("infusion.paused", minute=m, subject=channel(),
                            data={"reason": "alarm", "infusate_source": s}),
        lambda m, s: record("infusion.resumed", minute=m, subject=channel(),
                            data={"infusate_source": s}),
        lambda m, s: record("infusion.status_reported", minute=m, subject=channel(),
                            data={"state": "infusing", "rate": q("14.4"),
                                  "infusate_source": s}),
        lambda m, s: record("infusion.stopped", minute=m, subject=channel(),
                            data={"infusate_source": s}),
        lambda m, s: record("infusion.vtbi_completed", minute=m, subject=channel(),
                            data={"next": "kvo", "infusate_source": s}),
        lambda m, s: record("pump.associated", minute=m, subject=channel(patient="MRN-2"),
                            data={"method": "scan"}),
        lambda m, s: record("program.cleared", minute=m, subject=channel(), data={}),
    ]


BUILDERS = _builders()
steps = st.lists(
    st.tuples(st.integers(0, len(BUILDERS) - 1), st.sampled_from(["primary", "secondary"])),
    min_size=1, max_size=25,
)


def _records(plan: list[tuple[int, str]]) -> list[StoredRecord]:
    return [BUILDERS[i](minute, source) for minute, (i, source) in enumerate(plan)]


def _run(records: list[StoredRecord], split: int | None) -> tuple[Any, list, dict]:
    """Fold in one batch, or in two with the state persisted as JSON in between."""
    projection = InfusionsProjection()
    state: dict[str, Any] = {}
    timeline: list[tuple] = []
    episodes: dict[Any, Any] = {}
    batches = [records] if split is None else [records[:split], records[split:]]
    for batch in batches:
        sink = RowSink()
        for r in batch:
            projection.apply(state, r, sink)
        timeline.extend(sink.appends.get("timeline", []))
        episodes.update(sink.upserts.get("episodes", {}))
        state = orjson.loads(orjson.dumps(state))  # what projection_stream_states keeps
    return state, timeline, episodes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps, data=st.data())
def test_folding_in_one_batch_equals_folding_in_two_with_the_state_persisted_between(
    plan: list[tuple[int, str]], data: st.DataObject
) -> None:
    records = _records(plan)
    split = data.draw(st.integers(0, len(records)))
    assert _run(records, None) == _run(records, split)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_every_event_of_an_episode_gets_one_timeline_row_in_order(
    plan: list[tuple[int, str]],
) -> None:
    _, timeline, _ = _run(_records(plan), None)
    per_episode: dict[Any, list[int]] = {}
    for row in timeline:
        per_episode.setdefault(row[0], []).append(row[1])
    for seqs in per_episode.values():
        assert seqs == list(range(1, len(seqs) + 1))
    # An event may belong to two episodes (a new bag replacing the running one), never
    # twice to the same one.
    pairs = [(row[0], row[2]) for row in timeline]
    assert len(pairs) == len(set(pairs))
