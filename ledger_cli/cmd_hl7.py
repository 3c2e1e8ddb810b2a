"""``ledger import-hl7 FILE…`` and ``ledger mllp``: the HL7 v2 (IHE PCD) edge's commands.

``import-hl7`` translates files holding one or more messages (segments separated by CR,
LF or CRLF; each message starts at MSH) with one translation session across all files,
appends the events in batches, explains every dead letter and dropped value on stderr,
and prints ``{"messages": …, "events": …, "dead_lettered": …, …}`` as its last stdout
line. It exits 0 unless a file could not be read at all (2).

``mllp`` runs the MLLP listener until SIGTERM/SIGINT: raw messages go to the HL7 Kafka
topic (``--sink kafka``, default) or are translated and appended directly (``--sink
ledger``); see ``docs/hl7.md`` for the acknowledgement rules.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import observability
from consumers.hl7.config import Hl7Config
from consumers.hl7.outcome import Translation
from consumers.hl7.translator import Session
from ledger.errors import ConfigurationError
from ledger.settings import LedgerSettings
from ledger.store import Incoming
from ledger.store.event_store import EventStore
from ledger_cli import runtime
from ledger_cli.appending import append_counted
from ledger_cli.progress import say


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    imp = subparsers.add_parser(
        "import-hl7", help="translate HL7 v2 IHE PCD files (PCD-01/03/04/10) and append",
        description="Translate files of HL7 v2 messages into ledger events and append them. "
        "Dead letters and dropped values are explained on stderr.",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--batch-size", type=int, default=None)
    imp.add_argument("--report", action="store_true",
                     help="print one JSON report per message on stderr")
    imp.set_defaults(handler=run_import)

    mllp = subparsers.add_parser(
        "mllp", help="MLLP listener for HL7 v2 (TLS optional); acknowledges after hand-off",
        description="Receive HL7 v2 over MLLP, hand each message to Kafka (or the ledger) "
        "durably, then acknowledge as MSH-15/MSH-16 ask. Settings: LEDGER_HL7_MLLP_*.",
    )
    mllp.add_argument("--host", help="default: LEDGER_HL7_MLLP_HOST")
    mllp.add_argument("--port", type=int, help="default: LEDGER_HL7_MLLP_PORT (0: any free)")
    mllp.add_argument("--sink", choices=("kafka", "ledger"), help="default: LEDGER_HL7_MLLP_SINK")
    mllp.add_argument("--topic", help="HL7 topic (default: LEDGER_HL7_KAFKA_TOPIC)")
    mllp.add_argument("--bootstrap-servers", help="default: LEDGER_KAFKA_BOOTSTRAP_SERVERS")
    mllp.add_argument("--tls-cert", help="PEM certificate: enables TLS")
    mllp.add_argument("--tls-key", help="PEM key of --tls-cert")
    mllp.add_argument("--tls-ca", help="CA bundle: require client certificates it signed")
    mllp.set_defaults(handler=run_mllp)


# -- import-hl7 ---------------------------------------------------------------------------


def _explain(path: Path, translation: Translation, report: bool) -> None:
    where = f"{path}:{translation.line}"
    letter = translation.dead_letter
    if letter is not None:
        say(f"{where}: dead-lettered ({letter.code}): {letter.detail}")
    for dropped in translation.dropped:
        say(f"{where}: dropped {dropped}")
    if report:
        say(json.dumps({"file": str(path), **translation.summary()}))


def import_files(
    store: EventStore, paths: list[Path], session: Session, batch_size: int = 500,
    report: bool = False,
) -> tuple[dict[str, int], list[Path]]:
    counts = {"messages": 0, "events": 0, "dead_lettered": 0, "no_event": 0,
              "appended": 0, "duplicates": 0, "conflicts": 0}
    unreadable: list[Path] = []
    batch: list[Incoming] = []

    def flush() -> None:
        append_counted(store, batch, counts)

    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            say(f"ledger import-hl7: {path}: cannot be read: {exc.strerror or exc}")
            unreadable.append(path)
            continue
        for translation in session.translate(raw):
            counts["messages"] += 1
            if translation.outcome != "events":
                counts[translation.outcome] += 1
            counts["events"] += len(translation.events)
            _explain(path, translation, report)
            batch.extend(translation.incoming(f"file:{path}:{translation.line}"))
            if len(batch) >= batch_size:
                flush()
    if batch:
        flush()
    return counts, unreadable


def run_import(args: argparse.Namespace, settings: LedgerSettings) -> int:
    session = Session(Hl7Config.from_settings(settings))
    with runtime.event_store(settings) as store:
        counts, unreadable = import_files(
            store, list(args.files), session, args.batch_size or settings.append_batch_size,
            args.report,
        )
    say(f"{counts['messages']} messages: {counts['events']} events ({counts['appended']} "
        f"appended, {counts['duplicates']} duplicates, {counts['conflicts']} conflicts), "
        f"{counts['dead_lettered']} dead-lettered, {counts['no_event']} without events")
    print(json.dumps(counts), file=sys.stdout, flush=True)
    return 2 if unreadable else 0


# -- mllp ---------------------------------------------------------------------------------


def _sink(args: argparse.Namespace, settings: LedgerSettings, closers: list[Any]) -> Any:
    from consumers.hl7.sinks import KafkaSink, LedgerSink

    kind = args.sink or settings.hl7_mllp_sink
    if kind == "ledger":
        store = runtime.event_store(settings)
        closers.append(store.close)
        return LedgerSink(store, Session(Hl7Config.from_settings(settings)))
    if kind != "kafka":
        raise ConfigurationError(f"hl7_mllp_sink {kind!r} is not 'kafka' or 'ledger'")
    from kafka import KafkaProducer

    from consumers.kafka.config import KafkaConnection, default_client_id

    if args.bootstrap_servers:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": args.bootstrap_servers})
    connection = KafkaConnection.from_settings(settings)
    producer = KafkaProducer(**connection.producer_kwargs(client_id=default_client_id("mllp")))
    closers.append(lambda: producer.close(timeout=5))
    return KafkaSink(producer, args.topic or settings.hl7_kafka_topic)


async def _serve(listener: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = await listener.start()
    say(f"ledger mllp: listening on {host}:{port}")
    serving = asyncio.create_task(listener.serve_forever())
    await stop.wait()
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    await listener.close()


def run_mllp(args: argparse.Namespace, settings: LedgerSettings) -> int:
    from consumers.hl7.mllp import MllpListener, tls_context

    cert = args.tls_cert or settings.hl7_mllp_tls_certfile
    context = tls_context(cert, args.tls_key or settings.hl7_mllp_tls_keyfile,
                          args.tls_ca or settings.hl7_mllp_tls_cafile) if cert else None
    closers: list[Any] = []
    try:
        sink = _sink(args, settings, closers)
        listener = MllpListener(
            sink, host=args.host or settings.hl7_mllp_host,
            port=settings.hl7_mllp_port if args.port is None else args.port,
            ssl_context=context, max_message_bytes=settings.hl7_mllp_max_message_bytes,
        )
        observability.start_process_metrics(settings, "mllp", extra=(
            observability.CountersCollector(
                "ledger_mllp", lambda: {"messages_handled": listener.handled}),))
        asyncio.run(_serve(listener))
    finally:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                close()
    counts = getattr(sink, "counts", None) or {}
    print(json.dumps({"messages_handled": listener.handled, **counts}), flush=True)
    return 0
