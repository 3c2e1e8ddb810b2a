"""With no LEDGER_DATABASE_URL the ledger starts a real embedded PostgreSQL and reuses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import ledger
from tests.support.events import VALID_EVENTS

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "ledger-data"
    yield directory
    ledger("db", "stop", env={"LEDGER_DATA_DIR": str(directory)})  # what a test starts, it stops


def test_without_a_database_url_an_embedded_server_is_started_and_reused(data_dir: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(data_dir)}
    first = ledger("import", str(VALID_EVENTS), env=env, timeout=180)
    assert first.code == 0, first.stderr
    assert first.summary["appended"] > 0
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
    second = ledger("import", str(VALID_EVENTS), env=env, timeout=180)
    assert second.code == 0, second.stderr
    assert second.summary["appended"] == 0
    assert second.summary["duplicates"] == first.summary["appended"]
    verified = ledger("verify", env=env)
    assert verified.code == 0, verified.stderr
    assert verified.summary["verified_events"] == first.summary["appended"]
