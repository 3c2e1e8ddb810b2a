"""A small hospital behind the query API, shared by the ``test_api_*`` modules.

One database per test module: the contract's example events plus a generated ward (three
patients, 25 infusion episodes, alarms with free text), appended through the EventStore
and projected by the real runners of the three read models the routes serve; one API key
per role; the app served in-process with its lifespan (``TestClient`` as a context
manager). When the database has no ``discrepancies`` view (the discrepancy engine is not
run here), a stand-in view with three findings of the engine's published shape takes its
place (``World.standin_findings``), so the discrepancy routes can be exercised.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ledger.contract import parse_event
from ledger.settings import LedgerSettings
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.types import Incoming, Origin
from projections import registry
from projections.api.keys import Role, create_key
from projections.runtime.runner import ProjectionRunner
from tests.support.events import VALID_EVENTS, wire
from tests.support.postgres import create_database, drop_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FACILITY = "north-campus"
PATIENTS = ("MRN-A1", "MRN-B2", "MRN-C3")
EPISODES = 25
PSEUDONYM_KEY = "test-pseudonym-key-0123456789abcdef"
BASE = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
PROJECTIONS = ("infusions", "alarms", "ders")


@dataclass
class World:
    database: ConnectionParams
    tokens: dict[Role, str] = field(default_factory=dict)
    key_ids: dict[Role, str] = field(default_factory=dict)
    standin_findings: bool = False

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def settings(self, **overrides: Any) -> LedgerSettings:
        values: dict[str, Any] = {
            "database_url": self.database.url(), "api_pseudonym_key": PSEUDONYM_KEY,
            "api_key_cache_seconds": 0, "api_audit_sealer": False, "api_pool_size": 2,
        }
        values.update(overrides)
        return LedgerSettings(**values)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database.conninfo, autocommit=True)

    def scalar(self, statement: str, *params: Any) -> Any:
        with self.connect() as conn:
            row = conn.execute(statement.encode(), params).fetchone()
        assert row is not None
        return row[0]


def ward_events() -> list[dict[str, Any]]:
    """Three located patients, 25 episodes over a day on 25 pumps, two alarms with text."""
    events = []
    for n, patient in enumerate(PATIENTS):
        events.append(wire(
            "patient.located", occurred_at=(BASE - timedelta(hours=1)).isoformat(),
            subject={"facility_id": FACILITY, "patient_id": patient, "encounter_id": f"E-{n}"},
            data={"unit": "4W" if n < 2 else "MICU", "bed": f"B-{n}", "care_area": "MEDSURG"},
        ))
    for n in range(EPISODES):
        patient = PATIENTS[n % len(PATIENTS)]
        subject = {"facility_id": FACILITY, "patient_id": patient, "pump_id": f"PUMP-{n:03d}",
                   "channel": "A", "order_id": None}
        at = BASE + timedelta(minutes=30 * n)
        name = "propofol 10 mg/mL" if n % 2 else "heparin 25,000 units in 250 mL D5W"
        events.append(wire(
            "program.confirmed", occurred_at=at.isoformat(), subject=subject,
            data={"mode": "manual", "request_id": None, "library_mode": "basic" if n % 5 == 0
                  else "library", "care_area": "MEDSURG",
                  "medication": {"code": f"MED-{n % 2}", "name": name, "system": None}},
        ))
        events.append(wire(
            "infusion.started", occurred_at=(at + timedelta(minutes=1)).isoformat(),
            subject=subject, data={"rate": {"value": "12.50", "unit": "mL/h"}},
        ))
        if n < 2:
            events.append(wire(
                "alarm.raised", occurred_at=(at + timedelta(minutes=5)).isoformat(),
                subject={"facility_id": FACILITY, "pump_id": f"PUMP-{n:03d}", "channel": "A",
                         "alarm_id": f"ALM-{n}"},
                data={"code": "MDC_EVT_AIR_IN_LINE", "priority": "high",
                      "text": f"Air in line, patient {patient} bed B-{n}"},
            ))
        if n == 3:
            events.append(wire(
                "infusion.stopped", occurred_at=(at + timedelta(hours=2)).isoformat(),
                subject=subject, data={"volume_infused": {"value": "25", "unit": "mL"},
                                       "reason": f"stopped by RN for {patient}"},
            ))
    return events


def append_and_project(
    database: ConnectionParams, documents: list[dict[str, Any]],
    projections: tuple[str, ...] = PROJECTIONS,
) -> None:
    with EventStore(database) as store:
        store.append([Incoming(parse_event(json.dumps(d)), Origin("file", f"test:{i}"))
                      for i, d in enumerate(documents)])
    # Only the read models these routes serve: other projections are other issues' business.
    for projection in registry.build(list(projections)):
        with ProjectionRunner(database.conninfo, projection) as runner:
            runner.run_until_caught_up()


STANDIN = """
CREATE TABLE api_test_findings (
    finding_id text PRIMARY KEY, rule_id text, rule_version int, severity text, status text,
    facility_id text, patient_id text, unit text, episode_id uuid, order_id text, pump_id text,
    channel text, detected_at timestamptz, summary text, evidence jsonb,
    evidence_event_ids uuid[]
);
CREATE VIEW discrepancies AS SELECT * FROM api_test_findings;
"""


def install_standin_findings(conn: psycopg.Connection[Any]) -> bool:
    """A stand-in ``discrepancies`` view, only when the real engine has published none."""
    exists = conn.execute("SELECT to_regclass('discrepancies') IS NOT NULL").fetchone()
    if exists and exists[0]:
        return False
    conn.execute(STANDIN)
    episodes = conn.execute(
        "SELECT episode_id, patient_id, pump_id, unit, first_event_id FROM infusion_state"
        " WHERE facility_id = %s AND patient_id = ANY(%s) ORDER BY first_position LIMIT 3",
        (FACILITY, list(PATIENTS)),
    ).fetchall()
    for n, (episode, patient, pump, unit, event_id) in enumerate(episodes):
        conn.execute(
            "INSERT INTO api_test_findings VALUES (%s, %s, 1, %s, 'open', %s, %s, %s, %s, NULL,"
            " %s, 'A', %s, %s, %s, %s)",
            (f"R12:{episode}", "R12", f"S{n + 1}", FACILITY, patient, unit, episode, pump,
             BASE + timedelta(hours=n),
             f"basic mode on {pump} for {patient}",
             json.dumps({"patient_id": patient, "library_mode": "basic",
                         "note": f"nurse said {patient} was agitated"}),
             [event_id]),
        )
    return True


def build_world(
    pg_server: ConnectionParams, migrated_template: str, *, with_engine: bool = False
) -> World:
    """The example events and the ward, projected; keys for every role (see module doc)."""
    database = create_database(pg_server, migrated_template)
    examples = [json.loads(line) for line in VALID_EVENTS.read_text().splitlines()
                if line.strip()]
    append_and_project(database, examples + ward_events(),
                       (*PROJECTIONS, "discrepancies") if with_engine else PROJECTIONS)
    result = World(database)
    with result.connect() as conn:
        if not with_engine:
            result.standin_findings = install_standin_findings(conn)
        for role in Role:
            key_id, token = create_key(conn, role, label=f"test {role.value}",
                                       actor_id=f"{role.value.upper()}-1",
                                       actor_role="pharmacist")
            result.tokens[role], result.key_ids[role] = token, key_id
    return result


@pytest.fixture(scope="module")
def world(pg_server: ConnectionParams, migrated_template: str) -> Iterator[World]:
    result = build_world(pg_server, migrated_template)
    try:
        yield result
    finally:
        drop_database(pg_server, result.database.dbname)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    from projections.api import create_app

    app = create_app(world.settings(), world.database)
    with TestClient(app) as test_client:
        yield test_client


def access_rows(world: World, **where: Any) -> list[dict[str, Any]]:
    clauses = " AND ".join(f"{k} = %s" for k in where) or "true"
    with world.connect() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        cur.execute(f"SELECT * FROM api_access_log WHERE {clauses} ORDER BY id".encode(),
                    list(where.values()))
        return list(cur.fetchall())
