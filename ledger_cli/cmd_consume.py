"""``ledger consume``: ingest v1 events from Kafka into the ledger, exactly once.

Runs one consumer-group member until SIGTERM/SIGINT (or ``--exit-when-idle``). Several
processes with the same group id share the partitions. SIGTERM lets the current batch
finish, or abandons it whole when it is waiting for an unavailable service, and the
command exits 0. On exit it prints its counters as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import psycopg

import observability
from consumers.kafka.config import IngestConfig, warn_if_checksums_are_slow
from consumers.kafka.consumer import KafkaIngestor
from consumers.kafka.errors import Stopped, is_infrastructure_error
from consumers.kafka.retry import retry
from ledger.errors import StoreUnavailable
from ledger.settings import LedgerSettings
from ledger.store.event_store import EventStore
from ledger_cli import runtime
from ledger_cli.gc_tuning import tune_for_throughput

log = logging.getLogger("ledger_cli.consume")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "consume",
        help="ingest v1 events from Kafka (exactly once; refused messages are dead-lettered)",
        description="Consume the source topics as a member of the consumer group, append "
        "each batch and its offsets in one PostgreSQL transaction, dead-letter malformed "
        "and conflicting messages. Settings come from LEDGER_KAFKA_*; options override them.",
    )
    parser.add_argument("--topic", action="append", dest="topics", metavar="TOPIC",
                        help="source topic (repeatable; default: LEDGER_KAFKA_TOPICS)")
    parser.add_argument("--group", help="consumer group id (default: LEDGER_KAFKA_GROUP_ID)")
    parser.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]",
                        help="default: LEDGER_KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--deadletter-topic", help="default: LEDGER_KAFKA_DEADLETTER_TOPIC")
    parser.add_argument("--max-poll-records", type=int, metavar="N",
                        help="records per batch at most (default: LEDGER_KAFKA_MAX_POLL_RECORDS)")
    parser.add_argument("--poll-timeout-ms", type=int, metavar="MS",
                        help="how long a poll waits for records (default 50)")
    parser.add_argument("--exit-when-idle", type=float, metavar="SECONDS", default=None,
                        help="exit 0 once no record arrived for this long (backfills, tests)")
    parser.set_defaults(handler=run)


def config_from(args: argparse.Namespace, settings: LedgerSettings) -> IngestConfig:
    if args.bootstrap_servers:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": args.bootstrap_servers})
    return IngestConfig.from_settings(
        settings,
        topics=tuple(args.topics) if args.topics else None,
        group_id=args.group,
        deadletter_topic=args.deadletter_topic,
        max_poll_records=args.max_poll_records,
        poll_timeout_ms=args.poll_timeout_ms,
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: finishing the current batch", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open_store(settings: LedgerSettings, stop: threading.Event) -> EventStore:
    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, StoreUnavailable | psycopg.OperationalError) or (
            is_infrastructure_error(exc)
        )

    return retry(
        lambda: runtime.event_store(settings), what="opening the ledger database",
        stop=stop, retryable=retryable,
    )


def run(args: argparse.Namespace, settings: LedgerSettings) -> int:
    config = config_from(args, settings)
    warn_if_checksums_are_slow()
    if not args.verbose:
        # kafka-python narrates every request at INFO; its warnings and errors still show.
        logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            store = _open_store(settings, stop)
        except Stopped:
            return 0
        from consumers.hl7.kafka_hook import translators_for  # raw HL7 topic → events

        translators = translators_for(settings, config.topics)
        tune_for_throughput()
        try:
            ingestor = KafkaIngestor(store, config, stop_event=stop, translators=translators)
            observability.start_process_metrics(settings, "consume", ingest=ingestor.metrics)
            metrics = ingestor.run(idle_exit_s=args.exit_when_idle)
        finally:
            store.close()
    print(json.dumps(metrics.snapshot()), file=sys.stdout, flush=True)
    return 0
