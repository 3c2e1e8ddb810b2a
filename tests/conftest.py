"""Shared fixtures: a real PostgreSQL per session and a fresh, migrated database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.store.database import ConnectionParams
from tests.support.postgres import create_database, create_template, drop_database, server_for_tests


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
