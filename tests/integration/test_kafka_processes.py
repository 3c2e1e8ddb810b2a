"""``ledger consume`` and ``ledger deadletter`` as operators run them: separate processes.

Crash tests kill the consumer with SIGKILL (no cleanup of any kind runs) in the middle of a
stream and check that the ledger holds exactly the produced events with intact hash chains.
Waits are on stored positions and on what the processes log, never on fixed sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid

import psycopg
import pytest

from ledger.store.database import ConnectionParams
from tests.integration.test_kafka_ingest import (
    EventFactory,
    as_message,
    end_offsets_of,
    ledger_rows,
    stored_positions,
)
from tests.support.cli import ledger
from tests.support.tansu import TansuBroker, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.integration]


def kafka_env(tansu: TansuBroker, database: ConnectionParams) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(
        LEDGER_DATABASE_URL=database.url(),
        LEDGER_KAFKA_BOOTSTRAP_SERVERS=tansu.bootstrap,
        LEDGER_KAFKA_SESSION_TIMEOUT_MS="6000",
        LEDGER_KAFKA_HEARTBEAT_INTERVAL_MS="1000",
    )
    return env


class ConsumerProcess:
    """``ledger consume`` in a child process, its log lines collected as they come."""

    def __init__(self, env: dict[str, str], topic: str, dlq: str, group: str, *extra: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ledger_cli.main", "consume", "--topic", topic,
             "--group", group, "--deadletter-topic", dlq, *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.process.stderr
        if stream is not None:
            for line in stream:
                self.lines.append(line.rstrip("\n"))

    def owned(self) -> set[str]:
        """The partitions this process currently owns, from its assignment log lines."""
        owned: set[str] = set()
        for line in list(self.lines):
            for marker, add in (("partitions assigned: ", True), ("partitions revoked: ", False)):
                if marker in line:
                    names = {n for n in line.split(marker, 1)[1].split(",") if n != "-"}
                    owned = owned | names if add else owned - names
        return owned

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=5)
        return code

    def log(self) -> str:
        return "\n".join(self.lines[-30:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()


def stored_event_ids(database: ConnectionParams) -> list[str]:
    with psycopg.connect(database.conninfo) as conn:
        return [str(r[0]) for r in conn.execute("SELECT event_id FROM ledger_events")]


def test_a_consumer_killed_mid_stream_and_restarted_stores_exactly_the_produced_events(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    topic, dlq = tansu.create_topic(partitions=4), tansu.create_topic(prefix="dlq")
    events = [fresh_event() for _ in range(20_000)]
    ends = end_offsets_of(tansu.produce(topic, [as_message(e) for e in events]))
    env, group = kafka_env(tansu, database), f"g-{uuid.uuid4().hex[:8]}"

    first = ConsumerProcess(env, topic, dlq, group, "--max-poll-records", "200")
    try:
        wait_until(lambda: ledger_rows(database)[0] >= 3000, timeout=90, what="first rows")
    finally:
        first.kill()
    stored_when_killed = ledger_rows(database)[0]
    assert stored_when_killed < 20_000, "the kill must land in the middle of the stream"

    second = ConsumerProcess(env, topic, dlq, group)
    try:
        wait_until(lambda: stored_positions(database, group, topic) == ends, timeout=120,
                   what="the restarted consumer to reach the end")
        assert second.terminate() == 0, second.log()
    finally:
        second.close()

    assert ledger_rows(database) == (20_000, 20_000)
    assert sorted(stored_event_ids(database)) == sorted(e["event_id"] for e in events)
    verified = ledger("verify", database=database)
    assert verified.code == 0, verified.stderr


def test_when_one_of_two_consumers_in_a_group_is_killed_the_other_takes_over_its_partitions(
    tansu: TansuBroker, database: ConnectionParams, fresh_event: EventFactory
) -> None:
    topic, dlq = tansu.create_topic(partitions=4), tansu.create_topic(prefix="dlq")
    env, group = kafka_env(tansu, database), f"g-{uuid.uuid4().hex[:8]}"
    everything = {f"{topic}:{p}" for p in range(4)}
    a = ConsumerProcess(env, topic, dlq, group, "--max-poll-records", "100")
    b = ConsumerProcess(env, topic, dlq, group, "--max-poll-records", "100")
    try:
        wait_until(
            lambda: a.owned() and b.owned() and a.owned() | b.owned() == everything
            and not a.owned() & b.owned(),
            timeout=60, what="the two consumers to share the partitions",
        )
        events = [fresh_event() for _ in range(8000)]
        ends = end_offsets_of(tansu.produce(topic, [as_message(e) for e in events]))
        wait_until(lambda: ledger_rows(database)[0] >= 1500, timeout=60, what="first rows")
        a.kill()
        wait_until(lambda: stored_positions(database, group, topic) == ends, timeout=120,
                   what="the survivor to reach the end of every partition")
        assert b.owned() == everything, b.log()
        assert b.terminate() == 0, b.log()
    finally:
        a.close()
        b.close()

    assert ledger_rows(database) == (8000, 8000)
