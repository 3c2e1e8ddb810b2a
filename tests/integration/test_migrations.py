"""Migrations apply once, in order, under a lock, and refuse edited history."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from ledger.errors import MigrationError
from ledger.store.database import ConnectionParams
from ledger.store.migrate import default_migrations_dir, migrate

pytestmark = pytest.mark.integration


def test_migrating_a_fresh_database_applies_every_file_and_rerunning_is_a_no_op(
    empty_database: ConnectionParams,
) -> None:
    expected = sorted(p.name for p in default_migrations_dir().glob("*.sql"))
    assert migrate(empty_database.conninfo) == expected
    assert migrate(empty_database.conninfo) == []
    with psycopg.connect(empty_database.conninfo) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY 1")]
        assert names == expected


def test_an_applied_migration_that_was_edited_is_refused(
    empty_database: ConnectionParams, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    migrate(empty_database.conninfo, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after the fact\n")
    with pytest.raises(MigrationError, match="another checksum"):
        migrate(empty_database.conninfo, folder)


def test_a_failing_migration_leaves_nothing_half_applied(
    empty_database: ConnectionParams, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    (folder / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n"
    )
    with pytest.raises(MigrationError, match=r"9999_broken\.sql"):
        migrate(empty_database.conninfo, folder)
    with psycopg.connect(empty_database.conninfo) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        versions = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        assert "9999" not in versions
