"""Reviewing a finding appends ``discrepancy.reviewed`` to the ledger, once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from ledger.store.streams import stream_id
from projections.api.keys import Role
from tests.integration import test_api_fixtures as fixtures
from tests.integration.test_api_fixtures import (
    World,
    access_rows,
)

pytestmark = pytest.mark.integration
client = fixtures.client  # the shared module-scoped fixture
world = fixtures.world  # the shared module-scoped fixture

SAFETY = Role.SAFETY_OFFICER


@pytest.fixture
def finding_id(client: Any, world: World) -> str:
    if not world.standin_findings:
        pytest.skip("the real discrepancy engine's view is present; reviews are tested there")
    items = client.get("/v1/discrepancies", headers=world.auth(SAFETY)).json()["items"]
    return str(items[0]["finding_id"])


def stored(world: World, event_id: str) -> dict[str, Any]:
    with world.connect() as conn:
        row = conn.execute("SELECT state, stream FROM ledger_events WHERE event_id = %s",
                           (event_id,)).fetchone()
    assert row is not None
    return {"stream": row[1], **json.loads(bytes(row[0]))["event"]}


def test_a_review_is_appended_to_the_findings_stream_with_who_reviewed(
    client: Any, world: World, finding_id: str
) -> None:
    response = client.post(
        f"/v1/discrepancies/{finding_id}/review",
        json={"outcome": "false_positive", "note": "pump was in basic mode for a bolus"},
        headers={**world.auth(SAFETY), "X-Request-ID": "req-review"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    stream = "finding:" + finding_id.replace("%", "%25").replace(":", "%3A")
    assert body["result"] == "appended" and body["stream"] == stream
    event = stored(world, body["review_id"])
    assert event["type"] == "discrepancy.reviewed"
    assert event["data"] == {"finding_id": finding_id, "outcome": "false_positive",
                             "note": "pump was in basic mode for a bolus"}
    assert event["actor"] == {"id": "SAFETY_OFFICER-1", "role": "pharmacist"}
    assert event["correlation_id"] == "req-review"
    assert event["subject"]["patient_id"]
    [record] = access_rows(world, request_id="req-review")
    assert record["method"] == "POST" and record["outcome"] == "allowed"
    count = world.scalar("SELECT count(*) FROM ledger_events WHERE originator_id = %s",
                         stream_id(stream))
    assert count >= 1


def test_resending_a_review_id_is_a_duplicate_and_reusing_it_differently_a_conflict(
    client: Any, world: World, finding_id: str
) -> None:
    review_id = str(uuid.uuid4())
    body = {"outcome": "confirmed", "review_id": review_id}
    first = client.post(f"/v1/discrepancies/{finding_id}/review", json=body,
                        headers=world.auth(SAFETY))
    again = client.post(f"/v1/discrepancies/{finding_id}/review", json=body,
                        headers=world.auth(SAFETY))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["result"] == "duplicate"
    assert again.json()["notification_id"] == first.json()["notification_id"]
    other = client.post(f"/v1/discrepancies/{finding_id}/review",
                        json={**body, "outcome": "accepted_risk"}, headers=world.auth(SAFETY))
    assert other.status_code == 409


def test_reviewing_an_unknown_finding_is_a_404(client: Any, world: World, finding_id: str) -> None:
    response = client.post("/v1/discrepancies/R99:nothing/review",
                           json={"outcome": "confirmed"}, headers=world.auth(SAFETY))
    assert response.status_code == 404


@pytest.mark.parametrize("body", [{"outcome": "maybe"}, {"outcome": "confirmed", "x": 1}, {}])
def test_a_malformed_review_is_refused(
    client: Any, world: World, finding_id: str, body: dict[str, Any]
) -> None:
    response = client.post(f"/v1/discrepancies/{finding_id}/review", json=body,
                           headers=world.auth(SAFETY))
    assert response.status_code == 422


def test_auditors_read_findings_but_do_not_review_them(
    client: Any, world: World, finding_id: str
) -> None:
    response = client.post(f"/v1/discrepancies/{finding_id}/review",
                           json={"outcome": "confirmed"}, headers=world.auth(Role.AUDITOR))
    assert response.status_code == 403
