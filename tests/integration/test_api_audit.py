"""The read audit: every patient-level read leaves a durable, unalterable access record."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from ledger.store.access_seals import SEAL_GENESIS, access_event, records_root, seal_hash
from projections.api.audit import AccessContext, AuditLog
from projections.api.keys import Principal, Role
from projections.api.sealer import AuditSealer
from projections.api.writer import LedgerWriter
from tests.integration import test_api_fixtures as fixtures
from tests.integration.test_api_fixtures import (
    FACILITY,
    PATIENTS,
    World,
    access_rows,
)

pytestmark = pytest.mark.integration
client = fixtures.client  # the shared module-scoped fixture
world = fixtures.world  # the shared module-scoped fixture


def seal(world: World) -> int:
    writer = LedgerWriter(world.database)
    sealer = AuditSealer(world.database.conninfo, writer)
    try:
        return sealer.seal_once()
    finally:
        sealer.close()
        writer.close()


def seal_of(world: World, record_id: int) -> dict[str, Any] | None:
    """The seal holding an access record, with its anchor event from the ledger."""
    with world.connect() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        seals = cur.execute("SELECT * FROM api_access_seals WHERE %s = ANY(record_ids)",
                            (record_id,)).fetchall()
        if not seals:
            return None
        [seal_row] = seals  # never in two seals
        anchor = conn.execute("SELECT state, stream FROM ledger_events WHERE event_id = %s",
                              (seal_row["event_id"],)).fetchone()
    assert anchor is not None, "every seal is anchored in the ledger"
    return {**seal_row, "anchor": {"stream": anchor[1], **json.loads(bytes(anchor[0]))["event"]}}


def no_record_sealed_twice(world: World) -> bool:
    return world.scalar("SELECT count(*) - count(DISTINCT id) FROM api_access_seals,"
                        " unnest(record_ids) AS id") == 0


def test_a_read_is_recorded_with_who_what_and_which_patients_before_the_response(
    client: Any, world: World
) -> None:
    response = client.get("/v1/patients/MRN-B2/infusions",
                          params={"facility": FACILITY, "limit": 2},
                          headers={**world.auth(Role.SAFETY_OFFICER), "X-Request-ID": "req-1"})
    assert response.status_code == 200
    # The record is already in the database when the client has the response in hand.
    [record] = access_rows(world, request_id="req-1")
    assert record["key_id"] == world.key_ids[Role.SAFETY_OFFICER]
    assert record["role"] == "safety_officer"
    assert record["endpoint"] == "/v1/patients/{patient_ref}/infusions"
    assert record["path"] == "/v1/patients/MRN-B2/infusions"
    assert record["query"] == f"facility={FACILITY}&limit=2"
    assert record["patient_ids"] == ["MRN-B2"] and record["facility_ids"] == [FACILITY]
    assert (record["outcome"], record["status_code"]) == ("allowed", 200)
    assert response.headers["X-Request-ID"] == "req-1"
    # Minted time-ordered (ledger.ids): the log's and the ledger's event_id indexes grow at
    # their right edge instead of on random pages.
    assert record["event_id"].version == 7


def test_a_list_records_every_patient_it_disclosed(client: Any, world: World) -> None:
    response = client.get("/v1/infusions", headers={**world.auth(Role.AUDITOR),
                                                    "X-Request-ID": "req-list"})
    assert response.status_code == 200
    [record] = access_rows(world, request_id="req-list")
    assert set(record["patient_ids"]) == {"MRN-A1", "MRN-B2", "MRN-C3", "MRN-100234"}


def test_a_refused_read_is_recorded_as_denied(client: Any, world: World) -> None:
    response = client.get("/v1/events", headers={**world.auth(Role.AUDITOR),
                                                  "X-Request-ID": "req-denied"})
    assert response.status_code == 403
    [record] = access_rows(world, request_id="req-denied")
    assert (record["outcome"], record["status_code"]) == ("denied", 403)


def test_aggregate_reads_are_not_audited(client: Any, world: World) -> None:
    client.get("/v1/ders/compliance", headers={**world.auth(Role.AUDITOR),
                                               "X-Request-ID": "req-aggregate"})
    assert access_rows(world, request_id="req-aggregate") == []


def test_the_sealer_seals_each_record_and_anchors_the_seal_in_the_ledger(
    client: Any, world: World
) -> None:
    client.get("/v1/alarms", headers={**world.auth(Role.SAFETY_OFFICER),
                                      "X-Request-ID": "req-seal"})
    [record] = access_rows(world, request_id="req-seal")
    assert seal(world) >= 1
    sealed = seal_of(world, record["id"])
    assert sealed is not None
    # The record as its access.recorded event: who, what, which patients, which request.
    event = access_event(record)
    assert event.type == "access.recorded" and event.event_id == record["event_id"]
    assert event.data.key_id == world.key_ids[Role.SAFETY_OFFICER]
    assert event.data.endpoint == "GET /v1/alarms"
    assert set(event.data.patient_ids) == set(record["patient_ids"])
    assert event.correlation_id == "req-seal"
    # The seal: its root is recomputed from the rows it names, its hash from its link.
    rows = [access_rows(world, id=i)[0] for i in sealed["record_ids"]]
    root = records_root(rows)
    assert bytes(sealed["records_root"]) == root
    assert bytes(sealed["seal_hash"]) == seal_hash(
        bytes(sealed["previous_hash"]), sealed["seal_id"], sealed["record_ids"], root)
    # ... and pinned by one access.sealed event in the ledger's access stream.
    anchor = sealed["anchor"]
    assert anchor["type"] == "access.sealed" and anchor["stream"].startswith("access:")
    assert anchor["data"] == {
        "seal_id": sealed["seal_id"], "first_record_id": sealed["record_ids"][0],
        "last_record_id": sealed["record_ids"][-1], "record_count": len(sealed["record_ids"]),
        "records_root": root.hex(), "previous_seal_hash": bytes(sealed["previous_hash"]).hex(),
        "seal_hash": bytes(sealed["seal_hash"]).hex()}
    assert seal(world) == 0  # nothing is sealed twice


def test_seals_form_one_chain(client: Any, world: World) -> None:
    for _ in range(2):
        client.get("/v1/alarms", headers=world.auth(Role.SAFETY_OFFICER))
        seal(world)
    with world.connect() as conn:
        chain = conn.execute("SELECT seal_id, previous_hash, seal_hash FROM api_access_seals"
                             " ORDER BY seal_id").fetchall()
    assert len(chain) >= 2
    assert [row[0] for row in chain] == list(range(1, len(chain) + 1))
    assert bytes(chain[0][1]) == SEAL_GENESIS
    for before, after in itertools.pairwise(chain):
        assert bytes(after[1]) == bytes(before[2])


def test_a_seal_whose_anchor_was_lost_in_a_crash_is_anchored_by_the_next_sealer(
    client: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seal(world)
    client.get("/v1/alarms", headers={**world.auth(Role.SAFETY_OFFICER),
                                      "X-Request-ID": "req-crash"})
    [record] = access_rows(world, request_id="req-crash")

    def crash(self: AuditSealer, sealed: Any) -> None:
        raise ConnectionError("killed between the seal row and its ledger event")

    with monkeypatch.context() as patched:
        patched.setattr(AuditSealer, "_anchor", crash)
        with pytest.raises(ConnectionError):
            seal(world)
    orphan = world.scalar(
        "SELECT event_id FROM api_access_seals WHERE %s = ANY(record_ids)", record["id"])
    assert world.scalar("SELECT count(*) FROM ledger_events WHERE event_id = %s", orphan) == 0
    assert seal(world) == 0  # the record is in a seal already: not sealed again ...
    sealed = seal_of(world, record["id"])  # ... and that seal is now anchored
    assert sealed is not None and sealed["anchor"]["data"]["seal_id"] == sealed["seal_id"]
    assert no_record_sealed_twice(world)


def test_a_sealer_keeps_its_connection_but_lets_another_seal_between_its_passes(
    client: Any, world: World
) -> None:
    writer = LedgerWriter(world.database)
    first = AuditSealer(world.database.conninfo, writer)
    second = AuditSealer(world.database.conninfo, writer)
    try:
        seal(world)  # whatever earlier tests left
        client.get("/v1/alarms", headers={**world.auth(Role.SAFETY_OFFICER)})
        assert first.seal_once() >= 1
        kept = first._conn
        client.get("/v1/alarms", headers={**world.auth(Role.SAFETY_OFFICER)})
        # The first sealer's connection is open, and its lock released: the second seals
        assert second.seal_once() >= 1
        assert first.seal_once() == 0
        assert first._conn is kept and kept is not None and not kept.closed
    finally:
        first.close()
        second.close()
        writer.close()


_ACCESS_ROW = (
    "INSERT INTO api_access_log (event_id, occurred_at, request_id, key_id, role, method,"
    " endpoint, path, outcome, status_code) VALUES (gen_random_uuid(), now(), %s, 'k', 'admin',"
    " 'GET', '/v1/access-records', '/v1/access-records', 'allowed', 200) RETURNING id, event_id"
)


def write_access_row(conn: psycopg.Connection[Any], request_id: str) -> tuple[int, Any]:
    row = conn.execute(_ACCESS_ROW, (request_id,)).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def seal_mark(world: World) -> int:
    return int(world.scalar("SELECT sealed_through FROM api_access_seal"))


def test_a_record_committed_after_a_later_one_is_still_sealed_and_the_mark_waits_for_it(
    world: World,
) -> None:
    writer = LedgerWriter(world.database)
    sealer = AuditSealer(world.database.conninfo, writer)
    try:
        sealer.seal_once()  # whatever earlier tests left
        with world.connect() as slow, world.connect() as fast:
            slow.autocommit = False
            late_id, _ = write_access_row(slow, "req-late")  # drawn, not committed
            early_id, _ = write_access_row(fast, "req-early")
            assert early_id > late_id
            assert sealer.seal_once() == 1
            assert seal_of(world, early_id) is not None
            assert seal_mark(world) < late_id  # the in-flight row may still commit
            slow.commit()
        assert sealer.seal_once() == 1  # found as a gap, not by re-reading the window
        late = seal_of(world, late_id)
        assert late is not None and late["record_ids"] == [late_id]
        assert seal_mark(world) >= early_id
        assert sealer.seal_once() == 0
    finally:
        sealer.close()
        writer.close()


def test_an_id_drawn_and_rolled_back_holds_the_mark_only_until_it_settles(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LedgerWriter(world.database)
    sealer = AuditSealer(world.database.conninfo, writer)
    try:
        sealer.seal_once()
        with world.connect() as conn:
            conn.autocommit = False
            lost_id, _ = write_access_row(conn, "req-lost")
            conn.rollback()
            conn.autocommit = True
            after_id, _ = write_access_row(conn, "req-after")
        assert sealer.seal_once() == 1
        assert seal_mark(world) == lost_id - 1
        monkeypatch.setattr("projections.api.sealer.SETTLE", timedelta(0))
        assert sealer.seal_once() == 0
        assert seal_mark(world) == after_id
    finally:
        sealer.close()
        writer.close()


def test_a_restarted_sealer_finds_what_was_sealed_above_the_mark_and_seals_nothing_twice(
    world: World,
) -> None:
    seal(world)
    with world.connect() as conn:
        conn.autocommit = False
        held_id, _ = write_access_row(conn, "req-held")  # keeps the mark below what follows
        with world.connect() as other:
            sealed_id, _ = write_access_row(other, "req-sealed-before-restart")
        assert seal(world) == 1  # a sealer that then stops, its memory gone
        assert seal_mark(world) < held_id
        conn.commit()
    before = world.scalar("SELECT count(*) FROM ledger_events")
    assert seal(world) == 1  # a new sealer: only the held row; the other is found sealed
    assert world.scalar("SELECT count(*) FROM ledger_events") == before + 1  # one anchor
    held, earlier = seal_of(world, held_id), seal_of(world, sealed_id)
    assert held is not None and earlier is not None
    assert held["record_ids"] == [held_id] and held["seal_id"] == earlier["seal_id"] + 1
    assert no_record_sealed_twice(world)


def test_a_sealer_notices_another_sealed_since_its_last_pass_though_the_mark_stayed(
    world: World,
) -> None:
    writer = LedgerWriter(world.database)
    first = AuditSealer(world.database.conninfo, writer)
    second = AuditSealer(world.database.conninfo, writer)
    try:
        first.seal_once()
        with world.connect() as held:
            held.autocommit = False
            held_id, _ = write_access_row(held, "req-hold-mark")  # the mark stays below it
            with world.connect() as conn:
                other_id, _ = write_access_row(conn, "req-sealed-by-the-other")
            assert second.seal_once() == 1
            assert seal_mark(world) < held_id
            assert first.seal_once() == 0  # not sealed again under a second seal number
            held.commit()
        assert first.seal_once() == 1
        assert no_record_sealed_twice(world)
        assert seal_of(world, other_id) is not None and seal_of(world, held_id) is not None
    finally:
        first.close()
        second.close()
        writer.close()


def test_an_access_record_cannot_be_altered_or_deleted(client: Any, world: World) -> None:
    client.get("/v1/infusions", headers={**world.auth(Role.AUDITOR), "X-Request-ID": "req-x"})
    [record] = access_rows(world, request_id="req-x")
    seal(world)
    with world.connect() as conn:
        for statement in (
            "UPDATE api_access_log SET patient_ids = '{}' WHERE id = %s",
            "DELETE FROM api_access_log WHERE id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, (record["id"],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE api_access_log")
        # Nor can the seal that covers it, or the seal's anchor in the ledger.
        sealed = seal_of(world, record["id"])
        assert sealed is not None
        for statement in (
            "UPDATE api_access_seals SET records_root = records_root WHERE seal_id = %s",
            "DELETE FROM api_access_seals WHERE seal_id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, (sealed["seal_id"],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE ledger_events SET state = state WHERE event_id = %s",
                         (sealed["event_id"],))
    assert access_rows(world, request_id="req-x") == [record]


def test_admins_list_access_records_with_patients_as_tokens(client: Any, world: World) -> None:
    client.get("/v1/patients/MRN-C3", params={"facility": FACILITY},
               headers={**world.auth(Role.SAFETY_OFFICER), "X-Request-ID": "req-admin-view"})
    seal(world)
    page = client.get("/v1/access-records", headers=world.auth(Role.ADMIN),
                      params={"key_id": world.key_ids[Role.SAFETY_OFFICER], "limit": 50}).json()
    record = next(r for r in page["items"] if r["request_id"] == "req-admin-view")
    assert page["deidentified"] is True
    assert record["patient_ids"][0].startswith("pt_")
    assert "MRN-C3" not in record["path"] and record["path"].startswith("/v1/patients/pt_")
    sealed = seal_of(world, record["id"])  # the position of the seal's ledger event
    assert sealed is not None and record["sealed_position"] == world.scalar(
        "SELECT notification_id FROM ledger_events WHERE event_id = %s", sealed["event_id"])
    identified = client.get("/v1/access-records", headers=world.auth(Role.SAFETY_OFFICER),
                            params={"patient": "MRN-C3", "limit": 50}).json()
    assert "req-admin-view" in {r["request_id"] for r in identified["items"]}


def test_reading_the_access_records_is_itself_recorded(client: Any, world: World) -> None:
    client.get("/v1/access-records", headers={**world.auth(Role.ADMIN),
                                               "X-Request-ID": "req-meta"})
    [record] = access_rows(world, request_id="req-meta")
    assert record["endpoint"] == "/v1/access-records"


class CountingAuditLog(AuditLog):
    """Counts the INSERT statements (each one commit) the group commit issues."""

    statements = 0

    async def _write(self, batch: list[Any]) -> None:
        self.statements += 1
        await super()._write(batch)


def concurrent_records(world: World, paths: list[str]) -> tuple[list[Any], int]:
    """Record one access per path, all at once; (results or exceptions, statements)."""

    async def run() -> tuple[list[Any], int]:
        async with AsyncConnectionPool(world.database.conninfo, min_size=2, max_size=2,
                                       kwargs={"autocommit": True}) as pool:
            audit = CountingAuditLog(pool, "fingerprint")  # type: ignore[arg-type]
            principal = Principal(world.key_ids[Role.AUDITOR], Role.AUDITOR)
            contexts = []
            for n, path in enumerate(paths):
                access = AccessContext(principal=principal, method="GET",
                                       endpoint="/v1/infusions", path=path, query="",
                                       request_id=f"req-group-{n}")
                access.touch(FACILITY, PATIENTS[n % len(PATIENTS)])
                contexts.append(access)
            results = await asyncio.gather(*(audit.record(a, 200) for a in contexts),
                                           return_exceptions=True)
            return results, audit.statements

    return asyncio.run(run())


def test_concurrent_records_share_a_commit_and_each_is_committed_when_record_returns(
    world: World,
) -> None:
    results, statements = concurrent_records(world, [f"/v1/infusions/{n}" for n in range(20)])
    assert not [r for r in results if isinstance(r, BaseException)]
    # All twenty arrived before the flush task ran: one statement, one commit.
    assert statements == 1
    rows = {r["request_id"]: r for r in access_rows(world, endpoint="/v1/infusions")}
    for n, event_id in enumerate(results):
        row = rows[f"req-group-{n}"]
        assert row["event_id"] == event_id and row["path"] == f"/v1/infusions/{n}"
        assert row["patient_ids"] == [PATIENTS[n % len(PATIENTS)]]


def test_a_record_postgres_refuses_fails_only_its_own_request(world: World) -> None:
    paths = ["/v1/infusions/ok-0", "/v1/infusions/ok-1", "/v1/infusions/bad\x00",
             "/v1/infusions/ok-3"]
    results, _ = concurrent_records(world, paths)
    failed = [n for n, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [2]
    stored = {r["path"] for r in access_rows(world, endpoint="/v1/infusions")}
    assert {"/v1/infusions/ok-0", "/v1/infusions/ok-1", "/v1/infusions/ok-3"} <= stored
