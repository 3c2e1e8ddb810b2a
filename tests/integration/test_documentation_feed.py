"""The documentation feed on real PostgreSQL: exactly once across restarts and a rebuild.

This module is also the integration core the publisher tests share: :class:`Docs` (a
database with the contract's heparin story projected by the real runner, API keys, and the
feed served by the auditor API's app with this router mounted) and :func:`charting_events`
(what the EHR sends back later).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from psycopg.rows import dict_row

from ledger.contract import parse_event
from ledger.settings import LedgerSettings
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.types import Incoming, Origin
from projections.api.keys import Role, create_key
from projections.documentation.api import router
from projections.documentation.projection import DocumentationProjection
from projections.runtime.rebuild import rebuild, table_checksums
from projections.runtime.runner import ProjectionRunner
from tests.support.cli import ledger
from tests.support.events import VALID_EVENTS, wire

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

START = "0195f3a0-6c00-7000-8000-000000000016"  # infusion.started in the contract story
BOLUS = "0195f3a0-6c00-7000-8000-000000000015"
SUBJECT = {"facility_id": "north-campus", "patient_id": "MRN-100234", "order_id": "ORD-7781",
           "encounter_id": "ENC-55012", "pump_id": "PUMP-0042", "channel": "A"}


def story() -> list[dict[str, Any]]:
    return [json.loads(line) for line in VALID_EVENTS.read_text().splitlines() if line.strip()]


def charting_events() -> list[dict[str, Any]]:
    """The nurse validates the start and the 14:00 volume, and retracts the bolus; a second
    pump runs an infusion meanwhile."""
    other = {**SUBJECT, "pump_id": "PUMP-0099", "order_id": "ORD-2"}
    rate = {"value": "30", "unit": "mL/h"}
    return [
        wire("documentation.validated", subject=SUBJECT, occurred_at="2026-03-14T13:40:00Z",
             data={"observed_at": "2026-03-14T13:26:00Z", "rate": {"value": "14.4",
                   "unit": "mL/h"}, "dose_rate": None, "source_event_ids": [START]}),
        wire("documentation.validated", subject=SUBJECT, occurred_at="2026-03-14T14:05:00Z",
             data={"observed_at": "2026-03-14T14:00:00Z", "rate": None, "dose_rate": None,
                   "volume_infused": {"value": "8.16", "unit": "mL"},
                   "source_event_ids": None}),
        wire("documentation.retracted", subject=SUBJECT, occurred_at="2026-03-14T14:06:00Z",
             corrects_event_id=BOLUS, data={"reason": "bolus charted on the MAR"}),
        wire("program.confirmed", subject=other, occurred_at="2026-03-14T15:00:00Z",
             data={"request_id": None, "rate": rate, "infusate_source": "primary"}),
        wire("infusion.started", subject=other, occurred_at="2026-03-14T15:01:00Z",
             data={"rate": rate, "dose_rate": None, "infusate_source": "primary"}),
        wire("infusion.rate_changed", subject=other, occurred_at="2026-03-14T16:30:00Z",
             data={"new_rate": {"value": "45", "unit": "mL/h"}, "previous_rate": rate,
                   "new_dose_rate": None, "previous_dose_rate": None}),
        wire("infusion.stopped", subject=other, occurred_at="2026-03-14T17:00:00Z",
             data={"volume_infused": {"value": "70", "unit": "mL"}}),
    ]


@dataclass
class Docs:
    database: ConnectionParams
    tokens: dict[Role, str] = field(default_factory=dict)

    def append(self, events: list[dict[str, Any]]) -> None:
        with EventStore(self.database) as store:
            store.append([Incoming(parse_event(json.dumps(e)), Origin("file", f"docs:{n}"))
                          for n, e in enumerate(events)])

    def project(self, batch_size: int = 4) -> None:
        with ProjectionRunner(self.database.conninfo, DocumentationProjection(),
                              batch_size=batch_size) as runner:
            runner.run_until_caught_up()

    def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.database.conninfo, row_factory=dict_row) as conn:
            return list(conn.execute(query.encode(), args).fetchall())

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @contextmanager
    def client(self) -> Iterator[TestClient]:
        """The auditor API's app with the feed router mounted (as its owner will)."""
        from projections.api import create_app

        settings = LedgerSettings(
            database_url=self.database.url(),
            api_pseudonym_key="docs-test-pseudonym-key-0123456789",
            api_key_cache_seconds=0, api_audit_sealer=False, api_pool_size=2)
        app = create_app(settings, self.database)
        app.include_router(router)
        with TestClient(app) as client:
            yield client


@pytest.fixture
def docs(database: ConnectionParams) -> Docs:
    world = Docs(database)
    world.append(story())
    world.project()
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        for role in (Role.INTEGRATION, Role.ADMIN, Role.AUDITOR):
            world.tokens[role] = create_key(conn, role, label=f"docs {role.value}")[1]
    return world


def read_feed(client: TestClient, docs: Docs, after: str | None, pages: int | None = None,
              limit: int = 5) -> tuple[list[dict[str, Any]], str | None]:
    """Page through the feed like an EHR interface: store the cursor after each page."""
    items: list[dict[str, Any]] = []
    while pages is None or pages > 0:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        response = client.get("/v1/feed/documentation", params=params,
                              headers=docs.auth(Role.INTEGRATION))
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["items"]:
            assert page["next_after"] is None
            break
        items.extend(page["items"])
        after = page["next_after"]
        pages = None if pages is None else pages - 1
    return items, after


def test_a_consumer_storing_its_cursor_gets_every_entry_version_exactly_once_across_restarts(
    docs: Docs,
) -> None:
    with docs.client() as client:  # first run: two pages, then the interface restarts
        seen, cursor = read_feed(client, docs, None, pages=2)
    docs.append(charting_events())
    docs.project(batch_size=3)
    before_rebuild = docs.rows("SELECT count(*) AS n FROM documentation_outbox")[0]["n"]
    checksums = table_checksums(docs.database.conninfo, DocumentationProjection())
    rebuild(docs.database.conninfo, DocumentationProjection(), batch_size=7)
    assert docs.rows("SELECT count(*) AS n FROM documentation_outbox")[0]["n"] == before_rebuild, \
        "a rebuild enqueues nothing that was already enqueued"
    assert table_checksums(docs.database.conninfo, DocumentationProjection()) == checksums
    with docs.client() as client:  # second run resumes from the stored cursor
        rest, _ = read_feed(client, docs, cursor)
    items = seen + rest
    positions = [i["position"] for i in items]
    assert positions == sorted(set(positions)), "a stable order, nothing twice"
    versions = [(i["entry"]["entry_id"], i["entry"]["revision"]) for i in items]
    outbox = docs.rows("SELECT entry_id::text AS e, revision AS r FROM documentation_outbox"
                       " ORDER BY seq")
    assert versions == [(r["e"], r["r"]) for r in outbox], "everything, exactly once"
    latest = {entry: revision for entry, revision in versions}
    current = docs.rows("SELECT entry_id::text AS e, revision AS r, doc_status"
                        " FROM documentation_entries")
    assert latest == {r["e"]: r["r"] for r in current}, "the last version is the current one"
    statuses = {i["entry"]["entry_id"]: i["entry"]["status"] for i in items}
    start = docs.rows("SELECT entry_id::text AS e FROM documentation_entries"
                      " WHERE kind = 'start' AND source_event_ids @> ARRAY[%s]::uuid[]", START)
    bolus = docs.rows("SELECT entry_id::text AS e FROM documentation_entries"
                      " WHERE kind = 'bolus'")
    hour = docs.rows("SELECT entry_id::text AS e FROM documentation_entries WHERE kind ="
                     " 'volume' AND device_time = '2026-03-14T14:00:00Z'")
    assert [statuses[r["e"]] for r in (*start, *hour, *bolus)] == [
        "validated", "validated", "retracted"]
    for item in items:
        MedicationAdministration.model_validate(item["resource"])


def test_the_feed_is_for_integration_and_admin_keys_and_has_a_fhir_bundle_form(
    docs: Docs,
) -> None:
    with docs.client() as client:
        assert client.get("/v1/feed/documentation",
                          headers=docs.auth(Role.AUDITOR)).status_code == 403
        assert client.get("/v1/feed/documentation").status_code == 401
        refused = client.get("/v1/feed/documentation", params={"after": "AAAAAAAA"},
                             headers=docs.auth(Role.ADMIN))
        assert refused.status_code == 422
        response = client.get("/v1/feed/documentation/bundle", params={"limit": 4},
                              headers=docs.auth(Role.ADMIN))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        assert int(response.headers["X-Ledger-Position"]) > 0
        bundle = Bundle.model_validate_json(response.content)
        assert bundle.type == "history" and len(bundle.entry or []) == 4
        next_link = next(link.url for link in bundle.link or [] if link.relation == "next")
        assert "after=" in next_link
    audited = docs.rows("SELECT patient_ids FROM api_access_log WHERE endpoint ="
                        " '/v1/feed/documentation/bundle' AND outcome = 'allowed'")
    assert audited == [{"patient_ids": ["MRN-100234"]}]


def test_docs_gaps_lists_undocumented_starts_and_rate_changes_and_unsent_entries(
    docs: Docs,
) -> None:
    docs.append(charting_events())
    docs.project()
    # Far ahead: every grace period (also the acknowledgement's, on the wall clock) is over.
    result = ledger("docs-gaps", "--at", "2099-01-01T00:00:00Z", database=docs.database)
    assert result.code == 0, result.stderr
    gaps = result.summary["by_gap"]
    assert gaps["undocumented_rate_change"] == 1  # PUMP-0099 at 16:30; PUMP-0042's was charted
    assert gaps["undocumented_start"] == 1  # PUMP-0099's start; PUMP-0042's was validated
    assert gaps["charted_differs"] == 1  # the volume the nurse edited to 102 mL
    assert gaps["not_acknowledged"] > 0  # nothing was published in this test
    assert "missing_start_event" in gaps  # the story's KVO after its stop
