"""Documentation entries from pump events, folded in memory (Given events / Then entries).

This module is also the unit-level core the FHIR golden tests share: :func:`story` (a
titrated infusion with fixed event ids and positions, so entry ids are stable) and
:func:`fold` (the projection's own ``apply``, the way the runner calls it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ledger.store.reader import StoredRecord
from projections.documentation.model import parent_id
from projections.documentation.projection import DocumentationProjection
from projections.runtime.base import RowSink
from tests.support.records import channel, record

HEPARIN = {"code": "235473", "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
           "name": "heparin 25,000 units in 250 mL D5W"}
CONCENTRATION = {"amount": {"value": "25000", "unit": "[iU]"},
                 "volume": {"value": "250", "unit": "mL"}}


def q(value: str, unit: str = "mL/h") -> dict[str, str]:
    return {"value": value, "unit": unit}


def ev(n: int) -> str:
    """Fixed event ids: entry ids derive from them, and golden files from entry ids."""
    return f"0195f3a0-6c00-7000-9000-{n:012d}"


def story(*, subject: dict[str, Any] | None = None) -> list[StoredRecord]:
    """Heparin on PUMP-1/A from 13:30 UTC: 14.4 mL/h, 20 mL/h at 14:15, paused 14:30–14:45,
    a 10 mL bolus at 14:50, stopped at 15:10 — and the nurse charting it."""
    s = subject or channel()
    no_dose = {"dose_rate": None}
    return [
        record("program.confirmed", minute=0, position=1, event_id=ev(1), subject=s,
               data={"medication": HEPARIN, "concentration": CONCENTRATION,
                     "request_id": None, "infusate_source": "primary", "rate": q("14.4")}),
        record("infusion.started", minute=30, position=2, event_id=ev(2), subject=s,
               data={"rate": q("14.40"), "dose_rate": q("18", "[iU]/kg/h")}),
        record("infusion.rate_changed", minute=75, position=3, event_id=ev(3), subject=s,
               data={"new_rate": q("20"), "previous_rate": q("14.40"),
                     "new_dose_rate": q("25", "[iU]/kg/h"),
                     "previous_dose_rate": q("18", "[iU]/kg/h")}),
        record("infusion.paused", minute=90, position=4, event_id=ev(4), subject=s,
               data={"reason": "clinician", "volume_infused": q("17.2", "mL")}),
        record("infusion.resumed", minute=105, position=5, event_id=ev(5), subject=s, data={}),
        record("infusion.bolus_delivered", minute=110, position=6, event_id=ev(6), subject=s,
               data={"dose": q("2000", "[iU]"), "volume": q("20", "mL"), "rate": None,
                     **no_dose}),
        record("infusion.stopped", minute=130, position=7, event_id=ev(7), subject=s,
               data={"volume_infused": q("51.6", "mL"), "reason": "order completed"}),
    ]


def charting(*, order: str = "ORD-1") -> list[StoredRecord]:
    """The nurse validates the rate change, edits its rate, validates 14:00–15:00's volume,
    charts a volume by hand and retracts it."""
    s = {"facility_id": "north-campus", "patient_id": "MRN-1", "order_id": order,
         "pump_id": "PUMP-1", "channel": "A", "encounter_id": "ENC-1"}
    return [
        record("documentation.validated", minute=80, position=8, event_id=ev(8), subject=s,
               data={"observed_at": "2026-03-14T14:15:00Z", "rate": q("20"),
                     "dose_rate": None, "volume_infused": None, "source_event_ids": [ev(3)]}),
        record("documentation.edited", minute=81, position=9, event_id=ev(9), subject=s,
               data={"field": "rate", "device_value": q("20"), "charted_value": q("19.5"),
                     "reason": "pump rate rounded on the flowsheet"}),
        record("documentation.validated", minute=125, position=10, event_id=ev(10), subject=s,
               data={"observed_at": "2026-03-14T15:00:00Z", "volume_infused": q("22.5", "mL"),
                     "rate": None, "dose_rate": None, "source_event_ids": None}),
        record("documentation.entered_manually", minute=140, position=11, event_id=ev(11),
               subject={**s, "pump_id": None, "channel": None},
               data={"observed_at": "2026-03-14T15:20:00Z", "volume_infused": q("100", "mL"),
                     "rate": None, "dose_rate": None}),
        record("documentation.retracted", minute=141, position=12, event_id=ev(12),
               subject={**s, "pump_id": None, "channel": None}, corrects_event_id=ev(11),
               data={"reason": "charted on the wrong line"}),
    ]


@dataclass
class Folded:
    sink: RowSink
    states: dict[str, dict[str, Any]]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return sorted(self.sink.upserts["entries"].values(),
                      key=lambda e: (e["device_time"], e["kind"]))

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.entries]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["kind"] == kind]

    @property
    def actions(self) -> list[tuple[Any, ...]]:
        return self.sink.appends.get("actions", [])


def fold(records: list[StoredRecord], interval: timedelta = timedelta(hours=1)) -> Folded:
    """Fold as the runner does: one state per stream, every row into one sink."""
    projection = DocumentationProjection(volume_interval=interval)
    states: dict[str, dict[str, Any]] = {}
    sink = RowSink()
    for item in records:
        projection.apply(states.setdefault(item.stream, {}), item, sink)
    return Folded(sink, states)


def volumes(folded: Folded) -> list[tuple[str, str, str]]:
    return [(v["period_start"][11:16], v["period_end"][11:16], v["facts"]["volume"]["value"])
            for v in folded.of("volume")]


# -- tests ------------------------------------------------------------------------------
def test_every_charted_fact_of_an_infusion_becomes_one_entry_under_its_parent() -> None:
    folded = fold(story())
    assert folded.kinds() == ["infusion", "start", "volume", "rate_change", "pause", "resume",
                              "bolus", "volume", "stop", "volume"]
    (parent,) = folded.of("infusion")
    assert parent["entry_id"] == parent_id(parent["episode_id"])
    assert all(e["parent_entry_id"] == parent["entry_id"] for e in folded.entries
               if e is not parent)
    assert (parent["administration_status"], parent["reason"]) == ("stopped", "order completed")
    assert (parent["period_start"], parent["period_end"]) == ("2026-03-14T13:30:00Z",
                                                              "2026-03-14T15:10:00Z")
    (change,) = folded.of("rate_change")
    assert change["facts"]["rate"] == q("20") and change["facts"]["previous_rate"] == q("14.40")
    assert change["source_event_ids"][0].hex.endswith("3")
    (pause,) = folded.of("pause")
    assert (pause["administration_status"], pause["reason"]) == ("on-hold", "clinician")
    (start,) = folded.of("start")
    assert start["facts"]["rate"]["value"] == "14.40", "decimals keep the scale they came with"


def test_hourly_volumes_integrate_the_running_rate_and_boluses_by_device_time() -> None:
    folded = fold(story())
    # 13:30–14:00 at 14.4 mL/h; 14:00–15:00: 14.4 for 15 min, 20 for 15, paused 15, 20 for
    # 15, plus the 20 mL bolus; 15:00–15:10 at 20 mL/h, closed by the stop.
    assert volumes(folded) == [("13:30", "14:00", "7.20"), ("14:00", "15:00", "33.60"),
                               ("15:00", "15:10", "3.33")]
    (episode,) = folded.sink.upserts["episodes"].values()
    assert Decimal(episode["volume_calculated"]) == Decimal("44.133")
    assert (episode["device_volume"], episode["calculated_at_device"]) == ("51.6", "44.133")


def test_the_volume_interval_is_configurable() -> None:
    folded = fold(story(), interval=timedelta(minutes=30))
    assert [v[:2] for v in volumes(folded)] == [
        ("13:30", "14:00"), ("14:00", "14:30"), ("14:30", "15:00"), ("15:00", "15:10")]
    assert sum(Decimal(v[2]) for v in volumes(folded)) == Decimal("44.13")


def test_a_late_event_with_an_earlier_device_time_never_reopens_a_closed_interval() -> None:
    records = story()[:3]  # started 13:30, rate change 14:15 closes 13:30–14:00
    late = record("infusion.bolus_delivered", minute=50, position=20, subject=channel(),
                  data={"volume": q("5", "mL"), "dose": None, "rate": None})
    folded = fold([*records, late, story()[6]])
    # The bolus counts at the meter's cursor (14:15), inside the still open 14:00–15:00.
    assert volumes(folded)[:2] == [("13:30", "14:00", "7.20"), ("14:00", "15:00", "23.60")]


def test_an_infusion_programmed_then_cleared_before_it_ran_is_charted_not_done() -> None:
    folded = fold([story()[0], record("program.cleared", minute=5, position=30,
                                      subject=channel(), data={})])
    (entry,) = folded.entries
    assert (entry["kind"], entry["administration_status"], entry["reason"]) == (
        "not_started", "not-done", "cleared")


def test_a_second_start_in_one_episode_is_charted_as_a_resume_after_a_pause() -> None:
    records = story()[:4]
    restart = record("infusion.started", minute=100, position=40, subject=channel(),
                     data={"rate": q("20"), "dose_rate": None})
    assert fold([*records, restart]).kinds()[-1] == "resume"


def test_a_late_pump_association_names_the_patient_of_earlier_entries() -> None:
    anonymous = channel(patient=None)
    records = story(subject=anonymous)[:3]
    associate = record("pump.associated", minute=80, position=50,
                       subject=channel(patient="MRN-9"), data={"method": "scan"})
    folded = fold([*records, associate])
    (episode,) = folded.sink.upserts["episodes"].values()
    assert (episode["patient_id"], episode["patient_position"]) == ("MRN-9", 50)
    assert folded.sink.appends["patient_changes"] == [(episode["episode_id"],)]


def test_documentation_events_become_actions_and_a_manual_entry() -> None:
    folded = fold([*story(), *charting()])
    actions = {a[0]: a for a in folded.actions}
    edit = actions[ev(9)]
    assert (edit[1], str(edit[10])) == ("edited", ev(8)), "an edit naming nothing edits the" \
        " last validation of its order and channel"
    (manual,) = folded.of("manual")
    assert manual["facts"] == {"volume_infused": q("100", "mL")}
    assert manual["medication"] is None and manual["origin"] == "manual"
