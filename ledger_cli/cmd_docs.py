"""``ledger publish-docs`` and ``ledger docs-gaps``: the EHR documentation feed's edge.

``publish-docs`` sends the documentation outbox to the FHIR server (or Kafka topic) the
settings name, in order, recording each acknowledgement; SIGTERM/SIGINT finish the row in
flight and exit 0; ``--once`` drains the outbox and exits. ``docs-gaps`` lists what is
open between the pumps and the chart (R20/R21 undocumented starts and rate changes, R03
charted ≠ device, R19 volume mismatches, unmatched documentation, unacknowledged or
rejected deliveries). Both print one JSON line on stdout last.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

import observability
from ledger.errors import ConfigurationError
from ledger.settings import LedgerSettings
from ledger_cli import runtime
from ledger_cli.progress import say
from projections.documentation.reconcile import open_gaps
from publisher.loop import Publisher
from publisher.outbox import Sink


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    publish = subparsers.add_parser(
        "publish-docs", help="send the EHR documentation outbox (FHIR R4 over HTTP, or Kafka)",
        description="Send each chart-entry version of the documentation outbox, in order, "
        "to LEDGER_DOCS_FHIR_BASE_URL (conditional create/update by entry identifier) or to "
        "LEDGER_DOCS_KAFKA_TOPIC, and record the acknowledgements. Safe to kill at any time.",
    )
    publish.add_argument("--target", choices=("http", "kafka"),
                         help="default: LEDGER_DOCS_PUBLISH_TARGET")
    publish.add_argument("--url", help="FHIR base URL (default: LEDGER_DOCS_FHIR_BASE_URL)")
    publish.add_argument("--topic", help="Kafka topic (default: LEDGER_DOCS_KAFKA_TOPIC)")
    publish.add_argument("--batch-size", type=int, help="rows per read (default 100)")
    publish.add_argument("--once", action="store_true",
                         help="send what is enqueued, then exit (fails after 5 unanswered tries)")
    publish.set_defaults(handler=run_publish)

    gaps = subparsers.add_parser(
        "docs-gaps", help="list open documentation gaps (R20/R21/R03/R19, deliveries)")
    gaps.add_argument("--at", type=datetime.fromisoformat,
                      help="as of this moment (RFC 3339 with offset; default: now)")
    gaps.add_argument("--grace-minutes", type=int,
                      help="R20/R21 window (default: LEDGER_DOCS_GAP_GRACE_MINUTES)")
    gaps.add_argument("--ack-grace-minutes", type=int,
                      help="default: LEDGER_DOCS_ACK_GRACE_MINUTES")
    gaps.add_argument("--facility")
    gaps.add_argument("--limit", type=int, default=10_000)
    gaps.set_defaults(handler=run_gaps)


def sink_from(args: argparse.Namespace, settings: LedgerSettings) -> Sink:
    target = args.target or settings.docs_publish_target
    if target == "kafka":
        from consumers.kafka.config import KafkaConnection  # the Kafka edge only when asked
        from publisher.kafka_sink import KafkaSink

        kwargs = KafkaConnection.from_settings(settings).producer_kwargs(
            client_id="ledger-publish-docs")
        return KafkaSink(kwargs, args.topic or settings.docs_kafka_topic)
    from publisher.fhir_http import FhirHttpSink

    url = args.url or settings.docs_fhir_base_url
    if not url:
        raise ConfigurationError("publish-docs needs LEDGER_DOCS_FHIR_BASE_URL (or --url)")
    token = settings.docs_fhir_auth_token
    return FhirHttpSink(url, token=token.get_secret_value() if token else None,
                        timeout=settings.docs_fhir_timeout_seconds)


def run_publish(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    sink = sink_from(args, settings)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    publisher = Publisher(
        params.conninfo, sink, batch_size=args.batch_size or settings.docs_publish_batch_size,
        retry_max_seconds=settings.docs_publish_retry_max_seconds,
        give_up_after=5 if args.once else None,
    )
    if not args.once:
        observability.start_process_metrics(
            settings, "publish-docs", conninfo=params.conninfo,
            extra=(observability.CountersCollector("ledger_docs", publisher.stats.as_dict),))
    say(f"publishing the documentation outbox to {sink.target}"
        + ("" if args.once else " (Ctrl-C to stop)"))
    stats = publisher.run(stop, once=args.once)
    say(f"{stats.sent} sent ({stats.acknowledged} acknowledged, {stats.rejected} rejected),"
        f" position {stats.position}")
    print(json.dumps({"target": sink.target, **stats.as_dict()}))
    return 0


def run_gaps(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    at = args.at or datetime.now(UTC)
    if at.tzinfo is None:
        raise ConfigurationError("--at needs an offset (e.g. 2026-03-14T15:00:00Z)")
    grace = args.grace_minutes if args.grace_minutes is not None \
        else settings.docs_gap_grace_minutes
    ack = args.ack_grace_minutes if args.ack_grace_minutes is not None \
        else settings.docs_ack_grace_minutes
    with psycopg.connect(params.conninfo) as conn:
        found = open_gaps(conn, at, grace=timedelta(minutes=grace),
                          ack_grace=timedelta(minutes=ack), facility=args.facility,
                          limit=args.limit)
    counts: dict[str, int] = {}
    for gap in found:
        counts[gap["gap"]] = counts.get(gap["gap"], 0) + 1
        where = gap["entry_id"] or gap["episode_id"] or (gap["detail"] or {}).get("event_id")
        say(f"{gap['since']}  {gap['gap']:<26} {gap['rule'] or '-':<4} "
            f"{gap['pump_id'] or '-'}/{gap['channel'] or '-'} order {gap['order_id'] or '-'}"
            f"  {where}")
    summary: dict[str, Any] = {"at": at.isoformat(), "open": len(found), "by_gap": counts,
                               "gaps": found}
    print(json.dumps(summary, default=str))
    return 0
