"""``/v1/replay/...``: the CLI's timeline byte for byte, for safety officers only, audited."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.store.database import ConnectionParams
from projections.api.keys import Role
from tests.integration.test_api_fixtures import World, access_rows, build_world
from tests.support.cli import ledger
from tests.support.postgres import drop_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration
WINDOW = {"from": "2026-03-14T09:00:00-05:00", "to": "2026-03-14T10:00:00-05:00"}


@pytest.fixture(scope="module")
def world(pg_server: ConnectionParams, migrated_template: str) -> Iterator[World]:
    # The real discrepancy engine (not the stand-in view): `ledger replay` runs beside it.
    result = build_world(pg_server, migrated_template, with_engine=True)
    try:
        yield result
    finally:
        drop_database(pg_server, result.database.dbname)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    from projections.api import create_app

    with TestClient(create_app(world.settings(), world.database)) as test_client:
        yield test_client


def cli_json(world: World, *selection: str) -> bytes:
    result = ledger("replay", *selection, "--format", "json", database=world.database)
    assert result.code == 0, result.stderr
    return result.stdout.encode()


def episode_of(world: World) -> str:
    return str(world.scalar("SELECT episode_id FROM infusion_state WHERE pump_id = 'PUMP-0042'"
                            " ORDER BY first_position LIMIT 1"))


@pytest.mark.parametrize(("path", "params", "selection"), [
    ("/v1/replay/patients/MRN-100234", {}, ("--patient", "MRN-100234")),
    ("/v1/replay/patients/MRN-100234", WINDOW,
     ("--patient", "MRN-100234", "--from", WINDOW["from"], "--to", WINDOW["to"])),
    ("/v1/replay/patients/MRN-100234", {"at": "2026-03-14T09:41:00-05:00"},
     ("--patient", "MRN-100234", "--at", "2026-03-14T09:41:00-05:00")),
    ("/v1/replay/pumps/PUMP-0042/channels/A", {}, ("--pump", "PUMP-0042", "--channel", "A")),
    ("/v1/replay/pumps/PUMP-0042", {}, ("--pump", "PUMP-0042")),
    ("/v1/replay/orders/ORD-7781", {}, ("--order", "ORD-7781")),
], ids=["patient", "window", "at", "channel", "pump", "order"])
def test_a_safety_officer_gets_the_clis_json_byte_for_byte(
    client: Any, world: World, path: str, params: dict[str, str], selection: tuple[str, ...]
) -> None:
    response = client.get(path, params=params, headers=world.auth(Role.SAFETY_OFFICER))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == cli_json(world, *selection)
    document = json.loads(response.content)
    assert document["events"] == len(document["timeline"]) > 0


def test_an_episode_replay_matches_the_cli_and_covers_its_streams(
    client: Any, world: World
) -> None:
    episode = episode_of(world)
    response = client.get(f"/v1/replay/episodes/{episode}",
                          headers=world.auth(Role.SAFETY_OFFICER))
    assert response.status_code == 200
    assert response.content == cli_json(world, "--episode", episode)
    streams = {frame["stream"].split(":")[0] for frame in json.loads(response.content)["timeline"]}
    assert {"channel", "pump", "order"} <= streams


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN, Role.INTEGRATION])
def test_other_roles_are_refused_and_the_refusal_is_recorded(
    client: Any, world: World, role: Role
) -> None:
    request_id = f"replay-denied-{role.value}"
    response = client.get("/v1/replay/patients/MRN-100234",
                          headers={**world.auth(role), "X-Request-ID": request_id})
    assert response.status_code == 403
    assert "timeline" not in response.text
    [record] = access_rows(world, request_id=request_id)
    assert (record["outcome"], record["status_code"]) == ("denied", 403)


def test_each_replay_leaves_an_access_record_naming_the_patients_it_showed(
    client: Any, world: World
) -> None:
    for n, path in enumerate(("/v1/replay/patients/MRN-100234", "/v1/replay/orders/ORD-7781",
                              "/v1/replay/pumps/PUMP-0042/channels/A")):
        request_id = f"replay-{n}"
        response = client.get(path, headers={**world.auth(Role.SAFETY_OFFICER),
                                             "X-Request-ID": request_id})
        assert response.status_code == 200
        [record] = access_rows(world, request_id=request_id)
        assert record["key_id"] == world.key_ids[Role.SAFETY_OFFICER]
        assert record["path"] == path and record["endpoint"].startswith("/v1/replay/")
        assert record["patient_ids"] == ["MRN-100234"]
        assert (record["outcome"], record["status_code"]) == ("allowed", 200)


def test_an_unknown_selection_is_404_and_audited(client: Any, world: World) -> None:
    response = client.get("/v1/replay/orders/NO-SUCH-ORDER",
                          headers={**world.auth(Role.SAFETY_OFFICER),
                                   "X-Request-ID": "replay-unknown"})
    assert response.status_code == 404
    assert "nothing recorded" in response.json()["detail"]
    [record] = access_rows(world, request_id="replay-unknown")
    assert record["status_code"] == 404


def test_a_naive_instant_or_a_reversed_window_is_refused(client: Any, world: World) -> None:
    headers = world.auth(Role.SAFETY_OFFICER)
    naive = client.get("/v1/replay/patients/MRN-100234", params={"at": "2026-03-14T09:41:00"},
                       headers=headers)
    assert naive.status_code == 422
    reversed_window = client.get("/v1/replay/patients/MRN-100234",
                                 params={"from": WINDOW["to"], "to": WINDOW["from"]},
                                 headers=headers)
    assert reversed_window.status_code == 422
