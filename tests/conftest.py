"""Shared fixtures: a real PostgreSQL per session and a fresh, migrated database per test."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ledger.store.database import ConnectionParams
from tests.support.postgres import create_database, create_template, drop_database, server_for_tests

if TYPE_CHECKING:
    from tests.support.tansu import TansuBroker


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ConnectionParams]:
    with server_for_tests() as server:
        yield server


@pytest.fixture(scope="session")
def migrated_template(pg_server: ConnectionParams) -> Iterator[str]:
    name = create_template(pg_server)
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def database(pg_server: ConnectionParams, migrated_template: str) -> Iterator[ConnectionParams]:
    """A fresh database with every migration applied, dropped after the test."""
    params = create_database(pg_server, migrated_template)
    yield params
    drop_database(pg_server, params.dbname)


@pytest.fixture
def empty_database(pg_server: ConnectionParams) -> Iterator[ConnectionParams]:
    """A fresh database with no migrations applied."""
    params = create_database(pg_server)
    yield params
    drop_database(pg_server, params.dbname)


# --- Kafka (Tansu) -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A Tansu broker on a free loopback port for the session; stopped (SIGTERM) afterwards."""
    from tests.support.tansu import running_tansu

    with running_tansu(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker


@pytest.fixture(scope="session")
def contract_event_shapes() -> list[dict[str, Any]]:
    """One valid v1 event per type (tests/fixtures/contract/valid_events.ndjson)."""
    path = Path(__file__).parent / "fixtures" / "contract" / "valid_events.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def fresh_event(contract_event_shapes: list[dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A factory of valid events: a fixture shape with a new event_id, pump, order, patient."""
    counter = itertools.count()

    def make(event_type: str | None = None, *, pump: str | None = None) -> dict[str, Any]:
        n = next(counter)
        shapes = [s for s in contract_event_shapes if event_type in (None, s["type"])]
        event = copy.deepcopy(shapes[n % len(shapes)])
        event["event_id"] = str(uuid.uuid4())
        subject = event["subject"]
        for field, prefix in (("pump_id", "P"), ("order_id", "O"), ("patient_id", "MRN")):
            if field in subject:
                subject[field] = f"{prefix}-{pump or n % 50}"
        return event

    return make
