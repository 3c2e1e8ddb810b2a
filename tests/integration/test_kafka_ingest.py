"""Kafka ingestion in-process against a real Tansu broker and a real PostgreSQL.

Each test creates its own topics and consumer group; waits are on stored rows and positions,
never on fixed sleeps (the one sleep is the length of a deliberate PostgreSQL outage).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer
from psycopg import sql

from consumers.kafka.config import IngestConfig, KafkaConnection
from consumers.kafka.consumer import KafkaIngestor
from consumers.kafka.deadletter_reader import DeadLetterRecord, read_deadletters
from consumers.kafka.keys import message_key
from consumers.kafka.retry import Backoff
from ledger.contract import parse_event
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.types import Incoming, Origin
from ledger_cli.main import main as cli_main
from tests.support.cli import ledger
from tests.support.tansu import Message, TansuBroker, tansu_for_librdkafka, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.integration]

EventFactory = Callable[..., dict[str, Any]]


def config_for(tansu: TansuBroker, topic: str, dlq: str, **overrides: Any) -> IngestConfig:
    values: dict[str, Any] = {
        "connection": KafkaConnection(tansu.bootstrap),
        "topics": (topic,),
        "group_id": f"g-{uuid.uuid4().hex[:8]}",
        "deadletter_topic": dlq,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
    }
    values.update(overrides)
    return IngestConfig(**values)


@contextmanager
def ingesting(
    database: ConnectionParams, config: IngestConfig, store: Any = None,
    before_start: Callable[[KafkaIngestor], None] | None = None,
) -> Iterator[KafkaIngestor]:
    """A consumer running on a thread for the block; stopped (and its errors raised) after.

    ``store`` replaces the consumer's own EventStore (it is closed afterwards all the same);
    ``before_start`` sees the consumer before its thread runs."""
    store = store if store is not None else EventStore(database)
    ingestor = KafkaIngestor(store, config, backoff=Backoff(initial_s=0.1, max_s=1.0))
    if before_start is not None:
        before_start(ingestor)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            ingestor.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="ingestor", daemon=True)
    thread.start()
    try:
        yield ingestor
    finally:
        ingestor.stop()
        thread.join(timeout=60)
        store.close()
    if failure:
        raise failure[0]
    if thread.is_alive():
        raise AssertionError("the consumer did not stop within 60 s of stop()")


def as_message(event: dict[str, Any], headers: list[tuple[str, bytes]] | None = None) -> Message:
    return message_key(event), json.dumps(event).encode(), headers or []


def ledger_rows(database: ConnectionParams) -> tuple[int, int]:
    with psycopg.connect(database.conninfo) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM ledger_events"
        ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def stored_positions(database: ConnectionParams, group: str, topic: str) -> dict[int, int]:
    with psycopg.connect(database.conninfo) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM ledger_source_positions"
            " WHERE consumer = %s AND topic = %s", (group, topic),
        ).fetchall()
    return dict(rows)


def end_offsets_of(metadata: list[Any]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for meta in metadata:
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    return ends


def settled(database: ConnectionParams, config: IngestConfig, topic: str, ends: dict[int, int]
            ) -> Callable[[], bool]:
    """True once PostgreSQL holds positions at the end of every produced partition."""
    return lambda: stored_positions(database, config.group_id, topic) == ends


def test_produced_events_are_stored_once_in_partition_order_with_positions(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    topic, dlq = tansu.create_topic(partitions=4), tansu.create_topic(prefix="dlq")
    events = [fresh_event("infusion.status_reported", pump=str(i % 7)) for i in range(400)]
    ends = end_offsets_of(tansu.produce(topic, [as_message(e) for e in events]))
    config = config_for(tansu, topic, dlq)

    with ingesting(database, config) as ingestor:
        wait_until(settled(database, config, topic, ends), timeout=60, what="all positions")

    assert ledger_rows(database) == (400, 400)
    assert ingestor.metrics.ingested == 400
    assert ingestor.metrics.deadlettered == 0
    with psycopg.connect(database.conninfo) as conn:
        rows = conn.execute(
            "SELECT stream, originator_version, state FROM ledger_events"
            " ORDER BY stream, originator_version"
        ).fetchall()
    by_stream: dict[str, list[int]] = {}
    for stream, _version, state in rows:
        origin = json.loads(bytes(state))["origin"]
        assert origin["kind"] == "kafka"
        by_stream.setdefault(stream, []).append(int(origin["ref"].rsplit(":", 1)[1]))
    for offsets in by_stream.values():
        assert offsets == sorted(offsets), "stream versions must follow partition order"


def test_poison_messages_are_dead_lettered_with_reasons_and_the_good_ones_all_land(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory,
    contract_event_shapes: list[dict[str, Any]],
) -> None:
    topic, dlq = tansu.create_topic(partitions=2), tansu.create_topic(prefix="dlq")
    good = [fresh_event("infusion.status_reported", pump="A") for _ in range(60)]
    missing_state = fresh_event("infusion.status_reported", pump="A")
    del missing_state["data"]["state"]
    internal = fresh_event("pump.library_activated", pump="A")
    internal["type"] = "discrepancy.reviewed"
    conflicting = json.loads(json.dumps(good[5]))
    conflicting["data"]["state"] = "paused"
    trace = [("traceparent", b"00-abc-01")]
    key = message_key(good[0])
    poison: list[tuple[Message, str, str]] = [
        ((key, b"{not json", trace), "invalid_json", "<root>"),
        (as_message(missing_state, trace), "missing", "data.state"),
        (as_message(internal, trace), "internal_type_refused", "type"),
        ((key, None, trace), "missing_value", "<root>"),
        (as_message(conflicting, trace), "conflict", "event_id"),
    ]
    messages: list[Message] = []
    for index, event in enumerate(good):
        messages.append(as_message(event))
        if index % 12 == 11:
            messages.append(poison[index // 12][0])
    metadata = tansu.produce(topic, messages)
    ends = end_offsets_of(metadata)
    poison_offsets = {
        f"{topic}:{meta.partition}:{meta.offset}": expected
        for meta, message in zip(metadata, messages, strict=True)
        for candidate, *expected in poison if candidate is message
    }
    config = config_for(tansu, topic, dlq)

    with ingesting(database, config) as ingestor:
        wait_until(settled(database, config, topic, ends), timeout=60, what="all positions")

    assert ledger_rows(database) == (60, 60)
    assert (ingestor.metrics.rejected, ingestor.metrics.conflicts) == (4, 1)
    letters = {letter.origin: letter for letter in read_deadletters(config.connection, dlq)}
    assert set(letters) == set(poison_offsets)
    for origin, (code, path) in poison_offsets.items():
        letter: DeadLetterRecord = letters[origin]
        assert letter.key == key
        assert ("traceparent", b"00-abc-01") in letter.headers
        assert letter.code == code
        assert letter.detail.startswith(path)
        assert letter.kind == ("conflict" if code == "conflict" else "rejected")
    with psycopg.connect(database.conninfo) as conn:
        kept = conn.execute(
            "SELECT state FROM ledger_events WHERE event_id = %s", (good[5]["event_id"],)
        ).fetchone()
    assert kept is not None
    assert json.loads(bytes(kept[0]))["event"]["data"]["state"] == good[5]["data"]["state"]


def test_every_message_delivered_twice_is_stored_once(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    topic, dlq = tansu.create_topic(partitions=3), tansu.create_topic(prefix="dlq")
    events = [fresh_event() for _ in range(300)]
    retried = []
    for event in events:
        again = json.loads(json.dumps(event))
        # A producer retry through another gateway: same event, later receipt time.
        again["received_at"] = "2026-03-14T23:59:59Z"
        retried.append(again)
    messages = [as_message(e) for e in events] + [as_message(e) for e in retried]
    ends = end_offsets_of(tansu.produce(topic, messages))
    config = config_for(tansu, topic, dlq)

    with ingesting(database, config) as ingestor:
        wait_until(settled(database, config, topic, ends), timeout=60, what="all positions")

    assert ledger_rows(database) == (300, 300)
    assert ingestor.metrics.duplicates == 300
    assert ingestor.metrics.deadlettered == 0


class SlowStore:
    """An EventStore whose every append takes a while, noting revocations it overlapped."""

    def __init__(self, inner: EventStore, delay_s: float):
        self.inner, self.delay_s = inner, delay_s
        self.ingestor: KafkaIngestor | None = None
        self.revocations = 0
        self.revoked_in_flight = 0

    def _count_revocations(self) -> None:
        listener = self.ingestor.listener if self.ingestor else None
        if listener is None or getattr(listener, "counted", False):
            return
        revoke = listener.on_partitions_revoked

        def counting(revoked: Any) -> None:
            self.revocations += 1
            revoke(revoked)

        listener.on_partitions_revoked = counting  # type: ignore[method-assign]
        listener.counted = True  # type: ignore[attr-defined]

    def append(self, items: Any, positions: Any = (), *, before_commit: Any = None) -> Any:
        self._count_revocations()
        revocations = self.revocations
        time.sleep(self.delay_s)
        results = self.inner.append(items, positions, before_commit=before_commit)
        if self.revocations != revocations:
            self.revoked_in_flight += 1
        return results

    def close(self) -> None:
        self.inner.close()

    def source_positions(self, consumer: str, topic: str) -> dict[int, int]:
        return self.inner.source_positions(consumer, topic)


def test_a_rebalance_while_a_batch_is_in_flight_loses_and_duplicates_nothing(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    # Consumer A's transactions are slow, so a rebalance (B joining) lands while one of them
    # runs on A's append worker: A keeps validating and polling meanwhile.
    topic, dlq = tansu.create_topic(partitions=4), tansu.create_topic(prefix="dlq")
    events = [fresh_event() for _ in range(3000)]
    ends = end_offsets_of(tansu.produce(topic, [as_message(e) for e in events]))
    config = config_for(tansu, topic, dlq, max_poll_records=100)
    slow = SlowStore(EventStore(database), delay_s=0.2)

    def watch(ingestor: KafkaIngestor) -> None:
        slow.ingestor = ingestor

    with ingesting(database, config, store=slow, before_start=watch) as a:
        wait_until(lambda: ledger_rows(database)[0] >= 300, timeout=60, what="A's first rows")
        with ingesting(database, config) as b:
            wait_until(settled(database, config, topic, ends), timeout=120, what="all positions")

    assert slow.revoked_in_flight >= 1, "no revocation overlapped an in-flight transaction"
    assert b.metrics.ingested > 0, "B never took partitions over"
    assert ledger_rows(database) == (3000, 3000)
    # Records A's late transaction and B both read were absorbed as duplicates.
    assert a.metrics.ingested + b.metrics.ingested == 3000
    verified = ledger("verify", database=database)
    assert verified.code == 0, verified.stderr


def test_two_writers_taking_turns_on_the_same_streams_keep_every_hash_chain_intact(
    database: ConnectionParams, fresh_event: EventFactory
) -> None:
    # Two consumers of a group each keep the stream heads they wrote; a partition moving
    # between them means one appends right after the other on the same streams.
    first, second = EventStore(database), EventStore(database)
    try:
        for turn in range(6):
            for name, store in (("first", first), ("second", second)):
                store.append([
                    Incoming(
                        parse_event(json.dumps(fresh_event("infusion.status_reported",
                                                           pump=str(i % 5)))),
                        Origin("file", f"{name}:{turn}:{i}"),
                    )
                    for i in range(20)
                ])
    finally:
        first.close()
        second.close()
    assert ledger_rows(database) == (240, 240)
    verified = ledger("verify", database=database)
    assert verified.code == 0, verified.stderr


def test_a_message_produced_with_kcat_is_ingested(
    tmp_path: Path, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        if os.environ.get("CI"):
            pytest.fail("kcat is not installed, and CI must run this test (apt-get install kcat)")
        pytest.skip("kcat is not installed (apt-get install kcat)")
    # Debian 12's kcat (librdkafka 2.0) needs the ApiVersions shim in front of Tansu 0.6.
    with tansu_for_librdkafka(tmp_path) as tansu:
        _produce_with_kcat_and_ingest(kcat, tansu, database, fresh_event)


def _produce_with_kcat_and_ingest(
    kcat: str, tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    topic, dlq = tansu.create_topic(partitions=2), tansu.create_topic(prefix="dlq")
    event = fresh_event("infusion.started", pump="kcat-1")
    key = message_key(event)
    assert key is not None
    subprocess.run(
        [kcat, "-P", "-b", tansu.bootstrap, "-t", topic, "-k", key.decode()],
        input=json.dumps(event).encode() + b"\n", check=True, timeout=30,
    )
    config = config_for(tansu, topic, dlq)

    with ingesting(database, config):
        wait_until(lambda: ledger_rows(database) == (1, 1), timeout=60, what="the kcat event")

    with psycopg.connect(database.conninfo) as conn:
        row = conn.execute(
            "SELECT topic FROM ledger_events WHERE event_id = %s", (event["event_id"],)
        ).fetchone()
    assert row == ("infusion.started",)


def _set_connections(pg_server: ConnectionParams, dbname: str, *, allowed: bool) -> None:
    with psycopg.connect(pg_server.with_dbname("postgres").conninfo, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(dbname), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,),
            )


def test_consumer_recovers_by_itself_when_postgresql_is_unavailable_mid_stream(
    tansu: TansuBroker, pg_server: ConnectionParams, database: ConnectionParams,
    fresh_event: EventFactory,
) -> None:
    topic, dlq = tansu.create_topic(partitions=3), tansu.create_topic(prefix="dlq")
    config = config_for(tansu, topic, dlq, max_poll_records=100)
    first = [fresh_event() for _ in range(1000)]
    during = [fresh_event() for _ in range(1000)]
    after = [fresh_event() for _ in range(500)]

    with ingesting(database, config) as ingestor:
        tansu.produce(topic, [as_message(e) for e in first])
        wait_until(lambda: ledger_rows(database)[0] >= 300, timeout=60, what="first rows")
        _set_connections(pg_server, database.dbname, allowed=False)
        try:
            tansu.produce(topic, [as_message(e) for e in during])
            time.sleep(3)  # the outage itself, not a wait for an outcome
        finally:
            _set_connections(pg_server, database.dbname, allowed=True)
        ends = end_offsets_of(tansu.produce(topic, [as_message(e) for e in after]))
        wait_until(settled(database, config, topic, ends), timeout=90, what="all positions")

    assert ledger_rows(database) == (2500, 2500)
    assert ingestor.metrics.retries > 0
    assert ingestor.metrics.deadlettered == 0


class SimulatedCrash(BaseException):
    """Stands for the process dying at exactly this point (not an error anyone handles)."""


class CrashingOnConflictReports:
    """A dead-letter producer that 'crashes' the consumer when it is asked to report a conflict."""

    def __init__(self, inner: Any):
        self.inner = inner

    def send(self, topic: str, **kwargs: Any) -> Any:
        if ("x-error-kind", b"conflict") in kwargs.get("headers", []):
            raise SimulatedCrash("killed between the append and the conflict's dead letter")
        return self.inner.send(topic, **kwargs)

    def close(self, timeout: float | None = None) -> None:
        self.inner.close(timeout=timeout)


def test_a_crash_while_reporting_a_conflict_commits_nothing_and_the_replay_loses_nothing(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    topic, dlq = tansu.create_topic(partitions=1), tansu.create_topic(prefix="dlq")
    recorded_earlier = fresh_event("infusion.status_reported", pump="C")
    with EventStore(database) as store:
        store.append([Incoming(parse_event(json.dumps(recorded_earlier)), Origin("file", "x:1"))])
    conflicting = json.loads(json.dumps(recorded_earlier))
    conflicting["data"]["state"] = "alarming"
    good = [fresh_event("infusion.status_reported", pump="C") for _ in range(20)]
    metadata = tansu.produce(
        topic, [as_message(e) for e in good[:10]] + [as_message(conflicting)]
        + [as_message(e) for e in good[10:]]
    )
    conflict_origin = f"{topic}:0:{metadata[10].offset}"
    config = config_for(tansu, topic, dlq)

    store = EventStore(database)
    crashing = KafkaIngestor(
        store, config,
        producer_factory=lambda: CrashingOnConflictReports(
            KafkaProducer(**config.producer_kwargs())
        ),
    )
    outcome: list[BaseException] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_crash_of(crashing.run)), daemon=True
    )
    thread.start()
    thread.join(timeout=60)
    store.close()
    assert outcome and isinstance(outcome[0], SimulatedCrash)
    # The conflict report failed inside the batch's transaction: none of the batch committed,
    # neither its events nor its position.
    assert ledger_rows(database) == (1, 1)
    assert stored_positions(database, config.group_id, topic) == {}

    with ingesting(database, config) as ingestor:
        wait_until(settled(database, config, topic, end_offsets_of(metadata)), timeout=60,
                   what="the replay to settle")

    assert ledger_rows(database) == (21, 21)
    assert (ingestor.metrics.duplicates, ingestor.metrics.conflicts) == (0, 1)
    letters = read_deadletters(config.connection, dlq)
    assert [(letter.origin, letter.code) for letter in letters] == [(conflict_origin, "conflict")]


def _crash_of(run: Callable[[], Any]) -> BaseException:
    try:
        run()
    except BaseException as exc:
        return exc
    return AssertionError("the consumer returned without crashing")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``ledger ARGV`` in this process (settings from the environment); code and stdout."""
    capsys.readouterr()
    code = cli_main(list(argv))
    return code, capsys.readouterr().out


def test_deadletter_list_show_and_resubmit_ingest_a_refused_message_exactly_once(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic, dlq = tansu.create_topic(partitions=2), tansu.create_topic(prefix="dlq")
    monkeypatch.setenv("LEDGER_KAFKA_BOOTSTRAP_SERVERS", tansu.bootstrap)
    monkeypatch.setenv("LEDGER_KAFKA_DEADLETTER_TOPIC", dlq)
    # What an older consumer refused before the contract learned this type: valid now.
    refused_then = fresh_event("infusion.started", pump="dl-1")
    then_origin = f"{topic}:1:4242"
    tansu.produce(dlq, [(message_key(refused_then), json.dumps(refused_then).encode(), [
        ("traceparent", b"00-feed-01"), ("x-error-code", b"unknown_type"),
        ("x-error-detail", b"type: unknown event type"), ("x-origin", then_origin.encode()),
        ("x-error-kind", b"rejected"),
    ])])
    [bad] = tansu.produce(topic, [(b"P-dl-2", b"{not json", [])])
    bad_origin = f"{topic}:{bad.partition}:{bad.offset}"
    config = config_for(tansu, topic, dlq)

    with ingesting(database, config) as ingestor:
        wait_until(lambda: ingestor.metrics.rejected == 1, timeout=60, what="the bad message")

        code, out = run_cli(capsys, "deadletter", "list", "--json")
        assert code == 0
        listed = {row["origin"]: row for row in map(json.loads, out.splitlines())}
        assert listed[bad_origin]["code"] == "invalid_json"
        assert listed[then_origin]["event_id"] == refused_then["event_id"]

        code, out = run_cli(capsys, "deadletter", "show", then_origin)
        assert code == 0
        assert "unknown_type" in out and "traceparent=00-feed-01" in out

        for _ in range(2):  # a second re-submission must change nothing
            code, out = run_cli(capsys, "deadletter", "resubmit", then_origin)
            assert code == 0
            assert json.loads(out.splitlines()[-1]) == {"resubmitted": 1, "skipped": 0}
        wait_until(lambda: ingestor.metrics.duplicates == 1, timeout=60,
                   what="both re-submissions to be settled")

    assert ingestor.metrics.ingested == 1
    assert ledger_rows(database) == (1, 1)
    with psycopg.connect(database.conninfo) as conn:
        stored = conn.execute("SELECT event_id::text FROM ledger_events").fetchall()
    assert stored == [(refused_then["event_id"],)]
