"""The query API's read routes on real PostgreSQL: filters, pages, positions, exports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import orjson
import psycopg
import pytest

from ledger.store.chain import GENESIS_HASH
from projections.api.audit import AccessContext
from projections.api.deid import Disclosure, Pseudonyms
from projections.api.export import JSON_OPTIONS
from projections.api.keys import Principal, Role
from projections.api.models import Page
from projections.api.routes.infusion_models import (
    SUMMARY_COLUMNS,
    InfusionSummary,
    summary_json,
    summary_of,
)
from tests.integration import test_api_fixtures as fixtures
from tests.integration.test_api_fixtures import (
    EPISODES,
    FACILITY,
    World,
)

pytestmark = pytest.mark.integration
client = fixtures.client  # the shared module-scoped fixture
world = fixtures.world  # the shared module-scoped fixture

SAFETY = Role.SAFETY_OFFICER
EXAMPLE_PATIENT = "MRN-100234"


def episode_count(world: World) -> int:
    count = world.scalar("SELECT count(*) FROM infusion_state")
    assert count > EPISODES  # the ward's, and the contract example's
    return int(count)


def get(client: Any, world: World, path: str, role: Role = SAFETY, **params: Any) -> Any:
    return get_with(client, world, path, params, role)


def get_with(
    client: Any, world: World, path: str, params: dict[str, Any], role: Role = SAFETY
) -> Any:
    response = client.get(path, headers=world.auth(role), params=params)
    assert response.status_code == 200, response.text
    return response


def test_infusion_lists_filter_by_patient_unit_status_medication_and_pump(
    client: Any, world: World
) -> None:
    everything = get(client, world, "/v1/infusions", limit=1000).json()["items"]
    assert len(everything) == episode_count(world)
    by_patient = get(client, world, "/v1/infusions", patient="MRN-A1", facility=FACILITY)
    assert {i["patient_id"] for i in by_patient.json()["items"]} == {"MRN-A1"}
    assert len(by_patient.json()["items"]) == 9
    in_micu = get(client, world, "/v1/infusions", unit="MICU").json()["items"]
    assert {i["unit"] for i in in_micu} == {"MICU"} and in_micu
    stopped = get(client, world, "/v1/infusions", status="stopped").json()["items"]
    assert "PUMP-003" in {i["pump_id"] for i in stopped}
    assert {i["status"] for i in stopped} == {"stopped"}
    propofol = get(client, world, "/v1/infusions", medication="PROPOFOL 10 mg/mL").json()
    assert {i["medication_code"] for i in propofol["items"]} == {"MED-1"}
    assert len(propofol["items"]) == 12
    pump = get(client, world, "/v1/infusions", pump="PUMP-007").json()["items"]
    assert [i["pump_id"] for i in pump] == ["PUMP-007"]


def test_the_period_filter_keeps_episodes_that_overlap_it(client: Any, world: World) -> None:
    window = {"from": "2026-03-10T08:00:00Z", "to": "2026-03-10T09:10:00+00:00"}
    items = get_with(client, world, "/v1/infusions", window).json()["items"]
    assert sorted(i["pump_id"] for i in items) == ["PUMP-000", "PUMP-001", "PUMP-002"]


def test_pages_follow_the_cursor_in_a_stable_newest_first_order_without_gaps(
    client: Any, world: World
) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = get(client, world, "/v1/infusions", **params).json()
        seen += [i["episode_id"] for i in page["items"]]
        positions = [i["first_position"] for i in page["items"]]
        assert positions == sorted(positions, reverse=True)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == episode_count(world)


def test_every_list_states_the_event_position_it_is_current_to(client: Any, world: World) -> None:
    expected = world.scalar(
        "SELECT notification_id FROM projection_generations WHERE projection = 'infusions'"
        " AND state = 'active'")
    assert expected > 0
    page = get(client, world, "/v1/infusions", limit=1).json()
    assert page["position"] == expected
    empty = get(client, world, "/v1/infusions", pump="NO-SUCH-PUMP").json()
    assert empty["items"] == [] and empty["position"] == expected


def test_decimals_leave_the_api_as_strings_with_their_scale(client: Any, world: World) -> None:
    item = get(client, world, "/v1/infusions", pump="PUMP-010").json()["items"][0]
    assert item["current_rate"] == {"value": "12.50", "unit": "mL/h"}


def test_one_infusion_shows_its_full_state_and_timeline(client: Any, world: World) -> None:
    # The example patient's first episode (the oldest: lists are newest first).
    summary = get(client, world, "/v1/infusions", patient=EXAMPLE_PATIENT,
                  facility=FACILITY).json()["items"][-1]
    detail = get(client, world, f"/v1/infusions/{summary['episode_id']}").json()
    assert detail["state"]["episode_id"] == summary["episode_id"]
    assert detail["state"]["bed"] == "12"
    assert detail["state"]["ordered_rate"] is not None
    types = [entry["type"] for entry in detail["timeline"]]
    assert "infusion.started" in types and "infusion.rate_changed" in types
    assert [e["seq"] for e in detail["timeline"]] == sorted(e["seq"] for e in detail["timeline"])
    timeline = get(client, world, f"/v1/infusions/{summary['episode_id']}/timeline", limit=3)
    assert [e["seq"] for e in timeline.json()["items"]] == [1, 2, 3]
    assert timeline.json()["next_cursor"] is not None


def test_an_unknown_episode_is_a_404(client: Any, world: World) -> None:
    response = client.get("/v1/infusions/00000000-0000-0000-0000-000000000000",
                          headers=world.auth(SAFETY))
    assert response.status_code == 404


def test_a_patient_overview_shows_location_running_infusions_and_active_orders(
    client: Any, world: World
) -> None:
    overview = get(client, world, "/v1/patients/MRN-A1", facility=FACILITY).json()
    assert overview["location"]["unit"] == "4W"
    assert len(overview["active_infusions"]) == 8  # of 9: PUMP-003's was stopped
    assert all(i["active"] for i in overview["active_infusions"])
    history = get(client, world, "/v1/patients/MRN-A1/infusions", facility=FACILITY,
                  active="false").json()
    assert [i["pump_id"] for i in history["items"]] == ["PUMP-003"]
    missing = client.get("/v1/patients/NOBODY", headers=world.auth(SAFETY))
    assert missing.status_code == 404


def test_alarms_show_response_times_and_the_infusion_they_hit(client: Any, world: World) -> None:
    alarms = get(client, world, "/v1/alarms", facility=FACILITY).json()["items"]
    example = next(a for a in alarms if a["alarm_id"] == "ALM-9001")
    assert example["seconds_to_acknowledge"] == "33.000"
    assert example["patient_id"] == EXAMPLE_PATIENT
    assert example["episode_id"] is not None
    open_ones = get(client, world, "/v1/alarms", open="true").json()["items"]
    assert {a["alarm_id"] for a in open_ones} == {"ALM-0", "ALM-1"}
    raised = [a["raised_at"] for a in alarms]
    assert raised == sorted(raised, reverse=True)


def test_ders_compliance_sums_days_into_periods_against_the_95_percent_target(
    client: Any, world: World
) -> None:
    rows = get(client, world, "/v1/ders/compliance", role=Role.AUDITOR, period="month",
               care_area="MEDSURG").json()["items"]
    heparin = next(r for r in rows if r["medication_name"].startswith("heparin"))
    # 13 heparin starts, every 5th episode (n = 0, 10, 20) in basic mode: 10 of 13 in library.
    assert heparin["programs_started"] == 13 and heparin["library_starts"] == 10
    assert heparin["library_use_share"] == "0.7692"
    assert heparin["library_use_target"] == "0.95"
    assert heparin["meets_target"] is False
    assert heparin["period_start"] == "2026-03-01" and heparin["period_end"] == "2026-03-31"
    failing = get(client, world, "/v1/ders/compliance", role=Role.ADMIN,
                  meets_target="false").json()["items"]
    assert all(r["meets_target"] is not True for r in failing)


def test_raw_events_of_a_stream_carry_positions_and_hashes_that_chain(
    client: Any, world: World
) -> None:
    page = get(client, world, "/v1/events", stream="channel:north-campus:PUMP-0042:A").json()
    events = page["items"]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    previous = GENESIS_HASH
    for event in events:
        digest = hashlib.sha256(previous + event["record"].encode()).digest()
        assert digest.hex() == event["hash"]
        previous = digest
    assert page["position"] >= events[-1]["notification_id"]


def test_raw_events_are_for_identified_roles_only(client: Any, world: World) -> None:
    response = client.get("/v1/events", headers=world.auth(Role.AUDITOR))
    assert response.status_code == 403


def test_any_list_exports_as_csv_and_ndjson_with_the_next_cursor_in_headers(
    client: Any, world: World
) -> None:
    exported = get(client, world, "/v1/infusions", format="csv", limit=5)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 5 and rows[0]["current_rate.unit"] == "mL/h"
    assert "X-Next-Cursor" in exported.headers and "rel=\"next\"" in exported.headers["Link"]
    assert int(exported.headers["X-Ledger-Position"]) > 0
    following = get(client, world, "/v1/infusions", format="csv", limit=5,
                    cursor=exported.headers["X-Next-Cursor"])
    assert not {r["episode_id"] for r in rows} & {
        r["episode_id"] for r in csv.DictReader(io.StringIO(following.text))}
    ndjson = get(client, world, "/v1/alarms", format="ndjson")
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert {line["alarm_id"] for line in lines} >= {"ALM-9001", "ALM-0"}


def test_unknown_query_parameters_are_rejected(client: Any, world: World) -> None:
    response = client.get("/v1/infusions", headers=world.auth(SAFETY),
                          params={"patinet": "MRN-A1"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "patinet"]


@pytest.mark.parametrize("params", [
    {"limit": 1001}, {"limit": 0},
    {"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    {"from": "2026-03-11T00:00:00Z", "to": "2026-03-10T00:00:00Z"},
    {"from": "2026-03-10T08:00:00"},
    {"cursor": "bm90LWEtY3Vyc29y"},
])
def test_page_sizes_periods_naive_times_and_foreign_cursors_are_refused(
    client: Any, world: World, params: dict[str, Any]
) -> None:
    response = client.get("/v1/infusions", headers=world.auth(SAFETY), params=params)
    assert response.status_code == 422, response.text


def test_discrepancies_filter_by_rule_severity_status_unit_and_time(
    client: Any, world: World
) -> None:
    if not world.standin_findings:
        pytest.skip("the real discrepancy engine's view is present; its findings are its own")
    findings = get(client, world, "/v1/discrepancies").json()["items"]
    assert len(findings) == 3
    assert [f["detected_at"] for f in findings] == sorted(
        (f["detected_at"] for f in findings), reverse=True)
    assert {f["severity"] for f in get(client, world, "/v1/discrepancies",
                                       severity="S2").json()["items"]} == {"S2"}
    assert len(get(client, world, "/v1/discrepancies", rule="R12", status="open").json()[
        "items"]) == 3
    assert get(client, world, "/v1/discrepancies", unit="nowhere").json()["items"] == []
    early = get_with(client, world, "/v1/discrepancies", {"to": "2026-03-10T08:30:00Z"})
    assert len(early.json()["items"]) == 1
    one = get(client, world, f"/v1/discrepancies/{findings[0]['finding_id']}").json()
    assert one["finding_id"] == findings[0]["finding_id"] and one["evidence_event_ids"]


def test_hot_lists_serialise_rows_exactly_as_the_documented_model_would(
    client: Any, world: World
) -> None:
    # /v1/infusions and a patient's history dump rows straight to JSON (summary_json); the
    # bytes must be the InfusionSummary model's own, for both disclosure modes.
    with world.connect() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        rows = cur.execute(f"SELECT {SUMMARY_COLUMNS} FROM infusion_state".encode()).fetchall()
    assert any(row["volume_infused"] is not None for row in rows)
    pseudonyms = Pseudonyms(fixtures.PSEUDONYM_KEY.encode(), "fingerprint")
    principal = Principal("k", Role.AUDITOR)
    for identified in (True, False):
        access = AccessContext(principal=principal, method="GET", endpoint="/", path="/",
                               query="")
        disclosure = Disclosure(access, pseudonyms, identified)
        for row in rows:
            fast = orjson.dumps(summary_json(row, disclosure), option=JSON_OPTIONS)
            assert fast == summary_of(row, disclosure).model_dump_json().encode()
    page = get(client, world, "/v1/infusions", Role.AUDITOR, limit=3).json()
    assert list(page) == list(Page[InfusionSummary].model_fields)
    assert list(page["items"][0]) == list(InfusionSummary.model_fields)
