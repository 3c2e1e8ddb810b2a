"""Forward-only SQL migrations with an advisory lock and a checksum table.

Files ``migrations/NNNN_name.sql`` are applied in order, each in its own transaction, and
recorded in ``schema_migrations`` with their SHA-256. Re-running is a no-op; an applied file
whose content changed is refused (someone edited history). A file whose first line is
``-- migrate: no-transaction`` runs outside a transaction (for CREATE INDEX CONCURRENTLY).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ledger.errors import MigrationError

# An arbitrary constant shared by every process of this product: serialises concurrent
# `ledger migrate` runs (two consumers starting at once) on one database.
_MIGRATION_LOCK_KEY = 7_406_221_001
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith("-- migrate: no-transaction")


def default_migrations_dir() -> Path:
    """The repository's ``migrations/`` folder (installed beside the packages in editable mode)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "migrations"
        if candidate.is_dir() and any(candidate.glob("0001_*.sql")):
            return candidate
    raise MigrationError("cannot find the migrations/ folder next to the ledger package")


def read_migrations(folder: Path) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(match.group(1), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {folder}")
    return found


def migrate(conninfo: str, folder: Path | None = None) -> list[str]:
    """Apply what is missing; return the names applied now (empty when up to date)."""
    migrations = read_migrations(folder or default_migrations_dir())
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            done = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT version, name, checksum FROM schema_migrations")
            }
            for migration in migrations:
                if migration.version in done:
                    name, checksum = done[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"{migration.name}: already applied as {name} with another checksum;"
                            " applied migrations are never edited, add a new one"
                        )
                    continue
                _apply(conn, migration)
                applied_now.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied_now


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    record = "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"
    params = (migration.version, migration.name, migration.checksum)
    try:
        if migration.transactional:
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(record, params)
        else:
            conn.execute(migration.sql.encode())
            conn.execute(record, params)
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.name}: {exc}") from exc
