"""Kafka → ledger ingest benchmark, beside a raw PostgreSQL COPY baseline of the same rows.

    python bench/ingest.py [--events 200000] [--database-url URL] [--consumers 2]
                           [--appends overlapped|serial] [--profile]

Starts a local Tansu, produces N realistic v1 events (thousands of pumps, ~60 %
``infusion.status_reported`` telemetry, the rest every other producer type, built from the
contract fixture shapes with fresh ids and times, keyed as EVENTS.md says), runs
``ledger consume`` subprocesses in one consumer group (two by default — the scale-out the
issue asks for; ``--consumers 1`` for a single one; the output and the JSON say how many)
until PostgreSQL holds every position, and measures
sustained events/s from the first settled batch once every consumer has joined to the last
(the group joins and the rebalance they cause are not timed).
In the same run it COPYs the same rows into a plain table on the same database. Each figure
is the median of ``--repeat`` runs (default 3). Then it produces at a steady 500 events/s and
reports produce-to-stored latency (send time to the row's ``recorded_at``, taken inside the
append transaction just before its COPY).

Without ``--database-url`` a throwaway database is created on the server at
``LEDGER_BENCH_SERVER_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``) and
dropped afterwards. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from kafka import KafkaProducer  # noqa: E402
from psycopg import sql  # noqa: E402

from consumers.kafka.keys import message_key  # noqa: E402
from ledger.store.database import ConnectionParams, parse_database_url  # noqa: E402
from ledger.store.migrate import migrate  # noqa: E402
from ledger_cli.progress import Progress, say  # noqa: E402
from tests.support.tansu import TansuBroker, running_tansu  # noqa: E402

SHAPES = ROOT / "tests" / "fixtures" / "contract" / "valid_events.ndjson"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TELEMETRY = "infusion.status_reported"


# -- realistic events ------------------------------------------------------------------------


class EventMaker:
    """Fresh events from the fixture shapes: one pump fleet, consistent subject ids."""

    def __init__(self, pumps: int, seed: int):
        shapes = [json.loads(line) for line in SHAPES.read_text().splitlines() if line.strip()]
        self.telemetry = next(s for s in shapes if s["type"] == TELEMETRY)
        self.others = [s for s in shapes if s["type"] != TELEMETRY]
        self.pumps = pumps
        self.random = random.Random(seed)
        self.clock = datetime(2026, 3, 14, 6, 0, tzinfo=UTC)

    def event(self, index: int) -> dict[str, Any]:
        rnd = self.random
        shape = self.telemetry if rnd.random() < 0.6 else rnd.choice(self.others)
        pump = rnd.randrange(self.pumps)
        occurred = self.clock + timedelta(milliseconds=index * 20)
        subject = {"facility_id": "north-campus"}
        for field, value in (
            ("pump_id", f"PUMP-{pump:05d}"), ("channel", "AB"[pump % 2]),
            ("patient_id", f"MRN-{pump:06d}"), ("order_id", f"ORD-{pump:06d}-{index // 5000}"),
            ("encounter_id", f"ENC-{pump:06d}"), ("alarm_id", f"AL-{index % 97}"),
        ):
            if field in shape["subject"]:
                subject[field] = value
        event = {**shape, "event_id": str(uuid.uuid4()), "subject": subject,
                 "occurred_at": occurred.isoformat(timespec="milliseconds")}
        if "received_at" in shape:
            event["received_at"] = (occurred + timedelta(milliseconds=350)).isoformat(
                timespec="milliseconds")
        return event

    def batch(self, count: int) -> list[dict[str, Any]]:
        return [self.event(i) for i in range(count)]


def produce(broker: TansuBroker, topic: str, events: list[dict[str, Any]], label: str) -> float:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5,
                             batch_size=256 * 1024, acks="all")
    progress = Progress(label)
    started = time.perf_counter()
    for index, event in enumerate(events):
        producer.send(topic, json.dumps(event).encode(), key=message_key(event))
        if index % 2000 == 0:
            progress.update(index, len(events))
    producer.flush(timeout=120)
    producer.close(timeout=10)
    progress.finish()
    return len(events) / (time.perf_counter() - started)


# -- the database ----------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database(url: str | None) -> Iterator[ConnectionParams]:
    if url:
        params = parse_database_url(url)
        migrate(params.conninfo)
        yield params
        return
    server = parse_database_url(os.environ.get("LEDGER_BENCH_SERVER_URL", DEFAULT_SERVER))
    name = f"ledger_bench_{uuid.uuid4().hex[:10]}"
    admin = server.with_dbname("postgres").conninfo
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        params = server.with_dbname(name)
        migrate(params.conninfo)
        yield params
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


class Positions:
    """Offsets settled in PostgreSQL for a group, read on one kept-open connection."""

    def __init__(self, params: ConnectionParams):
        self.conn = psycopg.connect(params.conninfo, autocommit=True)

    def settled(self, group: str) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM ledger_source_positions"
            " WHERE consumer = %s", (group,),
        ).fetchone()
        return int(row[0]) if row else 0

    def wait(self, group: str, target: int, consumers: Consumers, label: str) -> None:
        progress = Progress(label)
        while (done := self.settled(group)) < target:
            consumers.check()
            progress.update(done, target)
            time.sleep(0.05)
        progress.finish()

    def close(self) -> None:
        self.conn.close()


def copy_baseline(params: ConnectionParams, events: list[dict[str, Any]]) -> float:
    """Raw COPY of the same rows (id, stream key, type, time, jsonb payload) in one txn."""
    rows = [
        (e["event_id"], (message_key(e) or b"").decode(), e["type"], e["occurred_at"],
         json.dumps(e))
        for e in events
    ]
    with psycopg.connect(params.conninfo) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_baseline")
        conn.execute(
            "CREATE TABLE bench_copy_baseline (global_position bigserial PRIMARY KEY,"
            " event_id uuid NOT NULL UNIQUE, stream text NOT NULL, type text NOT NULL,"
            " occurred_at timestamptz NOT NULL, payload jsonb NOT NULL)"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
            "COPY bench_copy_baseline (event_id, stream, type, occurred_at, payload) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy_baseline")
        conn.commit()
    return len(rows) / elapsed


# -- the consumer ----------------------------------------------------------------------------


# `ledger consume` with each batch settled before the next poll (IngestConfig's
# overlap_appends off), for comparing with the default on the same machine (--appends serial).
SERIAL_CONSUME = """
import sys
from consumers.kafka.config import IngestConfig
from ledger_cli.main import main
settings_config = IngestConfig.from_settings.__func__
IngestConfig.from_settings = classmethod(
    lambda cls, settings, **kw: settings_config(cls, settings, **kw, overlap_appends=False))
sys.exit(main(sys.argv[1:]))
"""


class Consumers:
    """``ledger consume`` subprocesses in one group; their JSON summaries once stopped."""

    def __init__(self, count: int, broker: TansuBroker, params: ConnectionParams, topic: str,
                 dlq: str, group: str, max_poll_records: int, appends: str = "overlapped"):
        # The logs live as long as the processes, closed in stop().
        self.logs = [tempfile.NamedTemporaryFile(prefix="bench-consume-", suffix=".log")  # noqa: SIM115
                     for _ in range(count)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env.update(
            LEDGER_DATABASE_URL=params.url(), LEDGER_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
            LEDGER_KAFKA_SESSION_TIMEOUT_MS="6000", LEDGER_KAFKA_HEARTBEAT_INTERVAL_MS="1000",
            LEDGER_KAFKA_MAX_POLL_RECORDS=str(max_poll_records), PYTHONPATH=str(ROOT),
        )
        argv = ["consume", "--topic", topic, "--group", group, "--deadletter-topic", dlq]
        command = [sys.executable, "-m", "ledger_cli.main", *argv]
        if appends == "serial":
            command = [sys.executable, "-c", SERIAL_CONSUME, *argv]
        self.processes = [
            subprocess.Popen(
                command,
                env=env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
            )
            for log in self.logs
        ]

    def cpu_seconds(self) -> float:
        """User + system CPU the consumer processes have used so far (Linux /proc)."""
        total = 0.0
        for process in self.processes:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def all_consuming(self) -> bool:
        """Every consumer has joined the group and sought to its stored positions (so the
        joins and the rebalance they cause are over)."""
        return all(
            "positions from PostgreSQL" in Path(log.name).read_text(errors="replace")
            for log in self.logs
        )

    def check(self) -> None:
        """Fail loudly, with its log, when a consumer died."""
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = Path(log.name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"ledger consume exited {process.returncode}:\n{tail}")

    def stop(self) -> list[dict[str, Any]]:
        summaries = []
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            out, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"ledger consume exited {process.returncode}")
            summaries.append(json.loads(out.strip().splitlines()[-1]))
        for log in self.logs:
            log.close()
        return summaries


def ingest_run(broker: TansuBroker, params: ConnectionParams, positions: Positions,
               events: list[dict[str, Any]], args: argparse.Namespace, rep: int
               ) -> tuple[float, float, float]:
    """events/s, the slowest consumer's batch p99 (ms), and the consumers' CPU time per
    event (µs) over the same window: a figure other work on the machine skews far less."""
    topic = broker.create_topic(partitions=args.partitions, prefix="bench")
    dlq = broker.create_topic(prefix="bench-dlq")
    rate = produce(broker, topic, events, f"rep {rep}: produce")
    say(f"rep {rep}: produced {len(events):,} events at {rate:,.0f}/s")
    group = f"bench-{uuid.uuid4().hex[:8]}"
    consumers = Consumers(args.consumers, broker, params, topic, dlq, group,
                          args.max_poll_records, args.appends)
    progress = Progress(f"rep {rep}: ingest")
    first: tuple[float, int, float] | None = None
    total = len(events)
    try:
        while True:
            consumers.check()
            done = positions.settled(group)
            now = time.perf_counter()
            if done and first is None and consumers.all_consuming():
                first = (now, done, consumers.cpu_seconds())
            if done >= total:
                cpu = consumers.cpu_seconds()
                break
            progress.update(done, total)
            time.sleep(0.02)
    finally:
        progress.finish()
        summaries = consumers.stop()
    if first is None:
        raise RuntimeError("nothing was ingested after every consumer joined: too few events?")
    events_per_s = (total - first[1]) / max(now - first[0], 1e-9)
    cpu_us = (cpu - first[2]) / max(total - first[1], 1) * 1e6
    p99 = max(s["batch_ms"]["p99"] or 0.0 for s in summaries)
    say(f"rep {rep}: ingested {total:,} events at {events_per_s:,.0f}/s with "
        f"{args.consumers} consumer{'s' if args.consumers > 1 else ''} (batch p99 {p99:.1f} ms, "
        f"{sum(s['batches'] for s in summaries)} batches; consumer CPU {cpu_us:.1f} µs/event)")
    return events_per_s, p99, cpu_us


def latency_run(broker: TansuBroker, params: ConnectionParams, positions: Positions,
                maker: EventMaker, args: argparse.Namespace) -> tuple[float, float]:
    topic = broker.create_topic(partitions=args.partitions, prefix="lat")
    dlq = broker.create_topic(prefix="lat-dlq")
    group = f"lat-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, acks="all")
    consumers = Consumers(1, broker, params, topic, dlq, group, args.max_poll_records,
                          args.appends)
    try:
        warmup = maker.event(0)
        producer.send(topic, json.dumps(warmup).encode(), key=message_key(warmup)).get(30)
        positions.wait(group, 1, consumers, "latency: consumer joining")
        count = int(args.latency_rate * args.latency_seconds)
        events = maker.batch(count)
        sent: dict[str, float] = {}
        progress = Progress(f"latency at {args.latency_rate}/s")
        started = time.perf_counter()
        for index, event in enumerate(events):
            delay = started + index / args.latency_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[event["event_id"]] = time.time()
            producer.send(topic, json.dumps(event).encode(), key=message_key(event))
            progress.update(index, count)
        producer.flush(timeout=60)
        progress.finish()
        positions.wait(group, count + 1, consumers, "latency: settling")
    finally:
        producer.close(timeout=5)
        consumers.stop()
    with psycopg.connect(params.conninfo) as conn:
        rows = conn.execute(
            "SELECT event_id::text, recorded_at FROM ledger_events WHERE event_id = ANY(%s)",
            ([uuid.UUID(k) for k in sent],),
        ).fetchall()
    latencies = sorted((recorded.timestamp() - sent[eid]) * 1000 for eid, recorded in rows)
    if len(latencies) != len(sent):
        raise RuntimeError(f"latency run: {len(latencies)} of {len(sent)} stored")
    return _quantile(latencies, 0.50), _quantile(latencies, 0.99)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


def profile_consumer(broker: TansuBroker, params: ConnectionParams,
                     events: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """One in-process consumer over ``events`` under cProfile; the top functions as text."""
    positions = Positions(params)
    from consumers.kafka.config import IngestConfig, KafkaConnection
    from consumers.kafka.consumer import KafkaIngestor
    from ledger.store.event_store import EventStore

    topic = broker.create_topic(partitions=args.partitions, prefix="prof")
    dlq = broker.create_topic(prefix="prof-dlq")
    produce(broker, topic, events, "profile: produce")
    # cProfile sees one thread: the append runs inline here (not on the worker thread it
    # overlaps on in `ledger consume`), so the profile holds all of the consumer's work.
    config = IngestConfig(KafkaConnection(broker.bootstrap), (topic,),
                          f"prof-{uuid.uuid4().hex[:8]}", dlq,
                          max_poll_records=args.max_poll_records,
                          session_timeout_ms=6000, heartbeat_interval_ms=1000,
                          overlap_appends=False)
    with EventStore(params) as store:
        ingestor = KafkaIngestor(store, config)

        def stop_when_done() -> None:
            while positions.settled(config.group_id) < len(events):
                time.sleep(0.05)
            ingestor.stop()

        threading.Thread(target=stop_when_done, daemon=True).start()
        from ledger_cli.gc_tuning import tune_for_throughput

        tune_for_throughput()  # as `ledger consume` does
        profiler = cProfile.Profile()
        profiler.runcall(ingestor.run)
    positions.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return out.getvalue()


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2,
                        help="`ledger consume` processes in the group (the JSON says how many)")
    parser.add_argument("--appends", choices=("overlapped", "serial"), default="overlapped",
                        help="serial: each batch's transaction before the next poll, to compare")
    parser.add_argument("--max-poll-records", type=int, default=500)
    parser.add_argument("--pumps", type=int, default=2000)
    parser.add_argument("--latency-rate", type=float, default=500.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true",
                        help="also profile an in-process consumer (cProfile) and print it")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the broker is stopped and the database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    ingest, batch_p99, baseline, cpu_per_event = [], [], [], []
    with bench_database(args.database_url) as params, running_tansu() as broker, \
            contextlib.closing(Positions(params)) as positions:
        say(f"database {params.dbname} on {params.host}:{params.port}; Tansu at "
            f"{broker.bootstrap}; {os.cpu_count()} CPUs; load average {_load()}")
        for rep in range(1, args.repeat + 1):
            maker = EventMaker(args.pumps, seed=rep)
            events = maker.batch(args.events)
            rate, p99, cpu_us = ingest_run(broker, params, positions, events, args, rep)
            ingest.append(rate)
            batch_p99.append(p99)
            cpu_per_event.append(cpu_us)
            copy_rate = copy_baseline(params, events)
            baseline.append(copy_rate)
            say(f"rep {rep}: raw COPY of the same rows at {copy_rate:,.0f}/s")
        p50, p99 = latency_run(broker, params, positions, EventMaker(args.pumps, seed=99),
                               args)
        say(f"produce-to-stored latency at {args.latency_rate:.0f} events/s: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        if args.profile:
            print(profile_consumer(broker, params, EventMaker(args.pumps, seed=7).batch(
                min(args.events, 50_000)), args))
        with psycopg.connect(params.conninfo) as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM ledger_events").fetchone()
        say(f"ledger holds {row[0] if row else 0:,} rows, {row[1] if row else 0:,} distinct ids")

    say(f"load average at the end: {_load()} (other work on the machine skews every figure)")
    events_per_s = statistics.median(ingest)
    baseline_per_s = statistics.median(baseline)
    say(f"ingest events/s per rep ({args.consumers} consumer process"
        f"{'es' if args.consumers > 1 else ''}): {', '.join(f'{r:,.0f}' for r in ingest)}; "
        f"COPY rows/s per rep: {', '.join(f'{r:,.0f}' for r in baseline)}")
    print(json.dumps({
        "bench": "ingest", "events": args.events,
        "events_per_s": round(events_per_s, 1),
        "baseline": "pg_copy", "baseline_events_per_s": round(baseline_per_s, 1),
        "ratio": round(events_per_s / baseline_per_s, 4),
        "p99_batch_ms": round(statistics.median(batch_p99), 2),
        "latency_rate_per_s": args.latency_rate,
        "latency_p50_ms": round(p50, 2), "latency_p99_ms": round(p99, 2),
        "consumers": args.consumers, "appends": args.appends, "cpus": os.cpu_count(),
        "consumer_cpu_us_per_event": round(statistics.median(cpu_per_event), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
