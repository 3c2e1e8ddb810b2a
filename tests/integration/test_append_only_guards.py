"""PostgreSQL itself refuses to change history, whoever asks; positions only move forward."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from ledger.store.database import ConnectionParams

pytestmark = pytest.mark.integration


def _insert_raw_event(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO ledger_events (originator_id, originator_version, topic, state, event_id,"
        " stream, occurred_at, recorded_at, hash) VALUES"
        " (%s, 1, 'pump.clock_changed', %s, %s, 'pump:default:P1', now(), now(), %s)",
        (uuid.uuid4(), b"{}", uuid.uuid4(), hashlib.sha256(b"h").digest()),
    )


@pytest.fixture
def seeded(database: ConnectionParams) -> ConnectionParams:
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        _insert_raw_event(conn)
        conn.execute(
            "INSERT INTO ledger_checkpoints VALUES (1, 0, 1, 1, %s, '{}', %s, now(), %s)",
            (b"r", b"p", b"h"),
        )
        conn.execute(
            "INSERT INTO ledger_source_positions (consumer, topic, partition, next_offset)"
            " VALUES ('g', 't', 0, 10)"
        )
        conn.execute(
            "INSERT INTO ledger_streams VALUES ('pump:default:P1', gen_random_uuid(), 'pump', 1)"
        )
    return database


@pytest.fixture
def as_app_role(seeded: ConnectionParams) -> Iterator[psycopg.Connection]:
    """A connection made as the application role itself, not a superuser pretending."""
    with psycopg.connect(seeded.with_user("ledger_app").conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("ledger_app",)
        yield conn


FORBIDDEN = [
    "UPDATE ledger_events SET topic = 'x'",
    "DELETE FROM ledger_events",
    "TRUNCATE ledger_events",
    "UPDATE ledger_checkpoints SET event_count = 2",
    "DELETE FROM ledger_checkpoints",
    "TRUNCATE ledger_checkpoints",
    "DELETE FROM ledger_source_positions",
    "TRUNCATE ledger_source_positions",
    "UPDATE ledger_source_positions SET next_offset = 9",
    "UPDATE ledger_streams SET kind = 'x'",
    "DELETE FROM ledger_streams",
    "TRUNCATE ledger_streams",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_the_application_role_cannot_change_or_remove_records(
    as_app_role: psycopg.Connection, statement: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app_role.execute(statement)


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_even_the_owner_is_refused_by_the_triggers(
    seeded: ConnectionParams, statement: str
) -> None:
    with psycopg.connect(seeded.conninfo, autocommit=True) as conn, pytest.raises(
        psycopg.errors.InsufficientPrivilege, match="ledger"
    ):
        conn.execute(statement)


def test_the_application_role_can_append_and_move_positions_forward(
    as_app_role: psycopg.Connection,
) -> None:
    _insert_raw_event(as_app_role)
    as_app_role.execute(
        "UPDATE ledger_source_positions SET next_offset = 11 WHERE consumer = 'g'"
    )
    assert as_app_role.execute(
        "SELECT next_offset FROM ledger_source_positions"
    ).fetchone() == (11,)


def test_the_application_role_can_do_what_ledger_consume_does(seeded: ConnectionParams) -> None:
    """Least privilege is usable: as ledger_app (LEDGER_MIGRATE_ON_START=false) the append
    path writes events, stream catalog rows and positions, and reads positions back."""
    from ledger.contract import parse_event
    from ledger.store import Incoming, Origin, SourcePosition
    from ledger.store.event_store import EventStore
    from ledger.store.types import Outcome
    from tests.support.events import VALID_EVENTS

    app = seeded.with_user("ledger_app")
    events = [parse_event(line) for line in VALID_EVENTS.read_text().splitlines()[:5]]
    with EventStore(app) as store:
        results = store.append([Incoming(e, Origin("kafka", f"t:0:{n}"))
                                for n, e in enumerate(events)],
                               [SourcePosition("g", "t", 0, 15)])
        assert [r.outcome for r in results] == [Outcome.APPENDED] * len(events)
        assert store.source_positions("g", "t") == {0: 15}
