"""Minimum necessary: auditors get stable patient tokens and no free text; break-glass is
one patient, with a reason, audited and listed for review."""

from __future__ import annotations

import json
from typing import Any

import pytest

from projections.api.app import create_app
from projections.api.keys import Role
from tests.integration import test_api_fixtures as fixtures
from tests.integration.test_api_fixtures import (
    FACILITY,
    PATIENTS,
    TestClient,
    World,
    access_rows,
)

pytestmark = pytest.mark.integration
client = fixtures.client  # the shared module-scoped fixture
world = fixtures.world  # the shared module-scoped fixture

AUDITOR = Role.AUDITOR
IDENTIFIERS = (*PATIENTS, "MRN-100234", "ENC-55012", "E-0", "B-0", "B-1")


def auditor_get(client: Any, world: World, path: str, **params: Any) -> Any:
    response = client.get(path, headers=world.auth(AUDITOR), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def assert_no_identifiers(document: Any) -> None:
    text = json.dumps(document)
    for identifier in IDENTIFIERS:
        assert identifier not in text, identifier


def test_auditors_see_tokens_in_place_of_patient_ids_everywhere(
    client: Any, world: World
) -> None:
    page = auditor_get(client, world, "/v1/infusions", limit=1000)
    assert page["deidentified"] is True
    assert all(i["patient_id"].startswith("pt_") for i in page["items"] if i["patient_id"])
    assert_no_identifiers(page)
    episode = next(i for i in page["items"] if i["pump_id"] == "PUMP-0042")
    detail = auditor_get(client, world, f"/v1/infusions/{episode['episode_id']}")
    assert_no_identifiers(detail)
    assert detail["state"]["bed"] is None
    assert all(e["state_after"].get("patient_id", "pt_").startswith("pt_")
               for e in detail["timeline"])
    assert_no_identifiers(auditor_get(client, world, "/v1/alarms"))
    assert_no_identifiers(auditor_get(client, world, "/v1/discrepancies"))


def test_free_text_is_withheld_from_auditors_and_shown_to_safety_officers(
    client: Any, world: World
) -> None:
    audited = auditor_get(client, world, "/v1/alarms", pump="PUMP-000")["items"][0]
    assert audited["text"] is None
    identified = client.get("/v1/alarms", params={"pump": "PUMP-000"},
                            headers=world.auth(Role.SAFETY_OFFICER)).json()["items"][0]
    assert identified["text"].startswith("Air in line")
    stopped = auditor_get(client, world, "/v1/infusions", pump="PUMP-003")["items"][0]
    state = auditor_get(client, world, f"/v1/infusions/{stopped['episode_id']}")["state"]
    assert state["end_reason"] is None  # the pump's free-text reason named the patient


def test_a_patient_has_the_same_token_in_every_response_and_across_restarts(
    client: Any, world: World
) -> None:
    first = auditor_get(client, world, "/v1/infusions", pump="PUMP-001")["items"][0]
    second = auditor_get(client, world, "/v1/infusions", pump="PUMP-004")["items"][0]
    assert first["patient_id"] == second["patient_id"]  # both MRN-B2
    with TestClient(create_app(world.settings(), world.database)) as restarted:
        again = restarted.get("/v1/infusions", params={"pump": "PUMP-001"},
                              headers=world.auth(AUDITOR)).json()["items"][0]
    assert again["patient_id"] == first["patient_id"]


def test_an_auditor_follows_a_token_to_the_patients_history(client: Any, world: World) -> None:
    token = auditor_get(client, world, "/v1/infusions", pump="PUMP-002")["items"][0]["patient_id"]
    history = auditor_get(client, world, f"/v1/patients/{token}/infusions", limit=100)
    assert len(history["items"]) == 8 and {i["patient_id"] for i in history["items"]} == {token}
    overview = auditor_get(client, world, f"/v1/patients/{token}")
    assert overview["patient_id"] == token and overview["location"]["unit"] == "MICU"
    assert overview["location"]["bed"] is None
    by_filter = auditor_get(client, world, "/v1/infusions", patient=token)
    assert len(by_filter["items"]) == 8


def test_an_auditor_cannot_probe_raw_patient_ids_or_invented_tokens(
    client: Any, world: World
) -> None:
    raw = client.get("/v1/patients/MRN-A1", params={"facility": FACILITY},
                     headers=world.auth(AUDITOR))
    assert raw.status_code == 403
    assert client.get("/v1/infusions", params={"patient": "MRN-A1"},
                      headers=world.auth(AUDITOR)).status_code == 403
    invented = client.get("/v1/patients/pt_" + "0" * 32, headers=world.auth(AUDITOR))
    assert invented.status_code == 404


def test_break_glass_reidentifies_one_patient_with_a_reason_and_is_listed_for_review(
    client: Any, world: World
) -> None:
    token = auditor_get(client, world, "/v1/infusions", pump="PUMP-000")["items"][0]["patient_id"]
    reason = "CQI case 2026-114: confirm identity for the pharmacy review board"
    response = client.post(f"/v1/patients/{token}/reidentify", json={"reason": reason},
                           headers={**world.auth(AUDITOR), "X-Request-ID": "req-glass"})
    assert response.status_code == 200, response.text
    assert response.json()["patient_id"] == "MRN-A1"
    [record] = access_rows(world, request_id="req-glass")
    assert record["purpose"] == reason and record["patient_ids"] == ["MRN-A1"]
    listed = client.get("/v1/break-glass", headers=world.auth(Role.SAFETY_OFFICER)).json()
    entry = next(r for r in listed["items"] if r["request_id"] == "req-glass")
    assert entry["purpose"] == reason and entry["key_id"] == world.key_ids[AUDITOR]
    for_admin = client.get("/v1/break-glass", headers=world.auth(Role.ADMIN)).json()
    assert "MRN-A1" not in json.dumps(for_admin)


@pytest.mark.parametrize("body", [{}, {"reason": "short"}, {"reason": "x" * 20, "extra": 1}])
def test_break_glass_without_a_proper_reason_is_refused(
    client: Any, world: World, body: dict[str, Any]
) -> None:
    token = auditor_get(client, world, "/v1/infusions", pump="PUMP-000")["items"][0]["patient_id"]
    response = client.post(f"/v1/patients/{token}/reidentify", json=body,
                           headers=world.auth(AUDITOR))
    assert response.status_code == 422


def test_only_auditors_use_break_glass(client: Any, world: World) -> None:
    token = auditor_get(client, world, "/v1/infusions", pump="PUMP-000")["items"][0]["patient_id"]
    response = client.post(f"/v1/patients/{token}/reidentify", json={"reason": "x" * 20},
                           headers=world.auth(Role.ADMIN))
    assert response.status_code == 403
