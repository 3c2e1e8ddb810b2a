"""The lean handler of hot list routes answers exactly as FastAPI's own handler would."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import pytest

from projections.api import fastpath
from projections.api.keys import Role
from tests.integration import test_api_fixtures as fixtures
from tests.integration.test_api_fixtures import FACILITY, World

pytestmark = pytest.mark.integration
client = fixtures.client  # the shared module-scoped fixture
world = fixtures.world  # the shared module-scoped fixture

QUERIES: list[dict[str, Any]] = [
    {}, {"limit": 2}, {"limit": "0"}, {"limit": "abc", "active": "maybe"}, {"active": "true"},
    {"format": "csv", "limit": 3}, {"format": "ndjson"}, {"format": "xml"},
    {"from": "2026-03-10"}, {"from": "2026-03-10T00:00:00Z", "to": "2026-03-09T00:00:00Z"},
    {"cursor": "!!"}, {"cursor": "abc"}, {"bogus": "1"}, {"facility": FACILITY},
    {"limit": ["2", "3"]}, {"facility": ""}, {"pump": "PUMP-001", "status": "stopped"},
    {"patient": "MRN-A1", "facility": FACILITY}, {"patient": f"pt_{'0' * 32}"},
    {"medication": "x", "unit": "y"}, {"status": "nonsense"}, {"to": "2026-03-10T00:00:00"},
]


def test_the_hot_lists_do_not_go_through_fastapis_dependency_solver(
    client: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(**_: Any) -> Any:
        raise AssertionError("FastAPI's solver ran")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", refuse)
    history = client.get("/v1/patients/MRN-A1/infusions", params={"facility": FACILITY},
                         headers=world.auth(Role.SAFETY_OFFICER))
    assert history.status_code == 200 and history.json()["items"]
    assert client.get("/v1/infusions", headers=world.auth(Role.AUDITOR)).status_code == 200
    fastpath.ENABLED = False
    try:
        with pytest.raises(AssertionError, match="solver ran"):
            client.get("/v1/infusions", headers=world.auth(Role.AUDITOR))
    finally:
        fastpath.ENABLED = True


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.SAFETY_OFFICER, Role.ADMIN])
def test_both_handlers_give_the_same_answers_valid_or_not(
    client: Any, world: World, role: Role
) -> None:
    token = client.get("/v1/infusions", params={"pump": "PUMP-001"},
                       headers=world.auth(Role.AUDITOR)).json()["items"][0]["patient_id"]
    paths = ["/v1/infusions", f"/v1/patients/{token}/infusions", "/v1/patients/MRN-A1/infusions",
             "/v1/patients/pt_0000/infusions", f"/v1/patients/pt_{'0' * 32}/infusions"]
    statuses = []
    for path in paths:
        for query in QUERIES:
            params = {**query, "facility": FACILITY} if "MRN" in path else query
            lean = client.get(path, params=params, headers=world.auth(role))
            fastpath.ENABLED = False
            try:
                stock = client.get(path, params=params, headers=world.auth(role))
            finally:
                fastpath.ENABLED = True
            assert (lean.status_code, lean.content) == (stock.status_code, stock.content), (
                path, query)
            assert lean.headers.get("content-type") == stock.headers.get("content-type")
            statuses.append(lean.status_code)
    if role == Role.ADMIN:  # the role is refused before any parameter is looked at
        assert set(statuses) == {403}
    else:
        assert statuses.count(422) > 10 and statuses.count(200) > 10
