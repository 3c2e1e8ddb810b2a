"""`ledger project` anchors checkpoints on its own: by event count and by time."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from ledger.store.database import ConnectionParams
from ledger_cli.cmd_project import anchor_periodically
from tests.support.cli import ledger
from tests.support.events import VALID_EVENTS

pytestmark = pytest.mark.integration


def checkpoints(params: ConnectionParams) -> list[tuple[int, int]]:
    with psycopg.connect(params.conninfo) as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT checkpoint_id, last_notification_id FROM ledger_checkpoints ORDER BY 1")]


def test_new_events_are_anchored_within_the_configured_time_without_anyone_asking(
    database: ConnectionParams,
) -> None:
    assert ledger("import", str(VALID_EVENTS), database=database).code == 0
    stop = threading.Event()
    thread = threading.Thread(target=anchor_periodically,
                              args=(database.conninfo, stop, 10_000, 1.0))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not checkpoints(database) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    ((checkpoint_id, last),) = checkpoints(database)
    assert checkpoint_id == 1 and last > 0
    assert ledger("verify", database=database).summary["unanchored_events"] == 0
