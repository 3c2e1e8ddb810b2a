"""Who may call what: bearer keys, roles, and refusals that come before any validation."""

from __future__ import annotations

from typing import Any

import pytest

from projections.api.app import create_app
from projections.api.keys import Role, create_key, revoke_key
from tests.integration import test_api_fixtures as fixtures
from tests.integration.test_api_fixtures import (
    TestClient,
    World,
)

pytestmark = pytest.mark.integration
client = fixtures.client  # the shared module-scoped fixture
world = fixtures.world  # the shared module-scoped fixture

PATIENT_LEVEL = ["/v1/infusions", "/v1/alarms", "/v1/discrepancies", "/v1/patients/MRN-A1"]


@pytest.mark.parametrize("authorization", [
    None, "Bearer", "Bearer ilk_0123456789abcdef_" + "x" * 43, "Basic dXNlcjpwYXNz",
    "Bearer not-a-key",
])
def test_a_missing_or_unknown_key_is_401_with_a_bearer_challenge(
    client: Any, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/v1/infusions", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_tampered_secret_of_a_real_key_is_401(client: Any, world: World) -> None:
    token = world.tokens[Role.SAFETY_OFFICER]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.get("/v1/infusions", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401


@pytest.mark.parametrize("role", [Role.PRODUCER, Role.INTEGRATION, Role.ADMIN])
def test_roles_without_patient_level_read_access_get_403(
    client: Any, world: World, role: Role
) -> None:
    for path in PATIENT_LEVEL:
        response = client.get(path, headers=world.auth(role))
        assert response.status_code == 403, (path, response.text)


def test_the_producer_role_reads_nothing_at_all(client: Any, world: World) -> None:
    for path in [*PATIENT_LEVEL, "/v1/ders/compliance", "/v1/events", "/v1/access-records"]:
        assert client.get(path, headers=world.auth(Role.PRODUCER)).status_code == 403, path


def test_auth_is_checked_before_the_body_and_parameters_are_validated(
    client: Any, world: World
) -> None:
    review = "/v1/discrepancies/R12:x/review"
    garbage, json_type = b"{not json", {"Content-Type": "application/json"}
    assert client.post(review, content=garbage, headers=json_type).status_code == 401
    auditor = {**json_type, **world.auth(Role.AUDITOR)}
    assert client.post(review, content=garbage, headers=auditor).status_code == 403
    bad_params = {"limit": "many", "from": "yesterday"}
    assert client.get("/v1/infusions", params=bad_params).status_code == 401
    assert client.get("/v1/infusions", params=bad_params,
                      headers=world.auth(Role.PRODUCER)).status_code == 403


def test_each_role_reaches_exactly_its_routes(client: Any, world: World) -> None:
    allowed = {
        Role.AUDITOR: {"/v1/infusions", "/v1/alarms", "/v1/ders/compliance"},
        Role.SAFETY_OFFICER: {"/v1/infusions", "/v1/alarms", "/v1/ders/compliance",
                              "/v1/events", "/v1/access-records", "/v1/break-glass"},
        Role.ADMIN: {"/v1/ders/compliance", "/v1/access-records", "/v1/break-glass"},
    }
    every = set().union(*allowed.values())
    for role, paths in allowed.items():
        for path in every:
            status = client.get(path, headers=world.auth(role)).status_code
            assert status == (200 if path in paths else 403), (role, path, status)


def test_health_and_readiness_need_no_key(client: Any) -> None:
    assert client.get("/v1/health").json() == {"status": "ok"}
    ready = client.get("/v1/ready").json()
    assert ready["database"] == "ok"
    assert {p["projection"] for p in ready["projections"]} >= {"infusions", "alarms", "ders"}


def test_a_revoked_key_stops_working(client: Any, world: World) -> None:
    with world.connect() as conn:
        key_id, token = create_key(conn, Role.AUDITOR, label="to revoke")
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/infusions", headers=headers).status_code == 200
        assert revoke_key(conn, key_id)
    assert client.get("/v1/infusions", headers=headers).status_code == 401


def test_an_api_started_while_the_database_is_down_reports_unavailable(world: World) -> None:
    settings = world.settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as offline:
        response = offline.get("/v1/ready")
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"
        assert offline.get("/v1/health").status_code == 200
