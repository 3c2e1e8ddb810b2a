"""``ledger import-hl7``: the public samples into a real ledger, re-import absorbed."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from ledger.store.database import ConnectionParams
from tests.support.cli import ledger

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"


def test_importing_every_public_sample_appends_their_events_and_a_rerun_only_duplicates(
    database: ConnectionParams, tmp_path: Path
) -> None:
    files = sorted(str(p) for p in FIXTURES.glob("ihe_*.hl7"))
    first = ledger("import-hl7", *files, database=database)
    assert first.code == 0, first.stderr
    # The draft IPEC sample reports the same delivery start as the final one: duplicates.
    assert first.summary == {"messages": 9, "events": 8, "dead_lettered": 1, "no_event": 2,
                             "appended": 6, "duplicates": 2, "conflicts": 0}
    assert "ihe_tf9_pcd03_rrg_o16_ar_reject.hl7:1: dead-lettered (untranslatable)" in first.stderr
    with psycopg.connect(database.conninfo) as conn:
        rows = conn.execute("SELECT topic, state FROM ledger_events").fetchall()
    types = sorted(topic for topic, _ in rows)
    assert types == sorted(["infusion.started", "program.confirmed"] + [
        "program.auto_requested"] * 2 + ["alarm.raised", "alarm.cleared"])
    origins = [json.loads(bytes(state))["origin"] for _, state in rows]
    assert all(o["kind"] == "hl7" and "|sha256:" in o["ref"] and "|file:" in o["ref"]
               for o in origins)

    # The same files again, plus one that cannot be read: nothing new, exit 2.
    second = ledger("import-hl7", *files, str(tmp_path / "missing.hl7"), database=database)
    assert second.code == 2
    assert second.summary["appended"] == 0 and second.summary["duplicates"] == 8
    assert "missing.hl7: cannot be read" in second.stderr
