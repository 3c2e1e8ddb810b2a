"""``ledger publish-findings``: the edge that pages a safety officer about S1 findings.

The discrepancy projection writes each S1 finding to ``discrepancy_outbox`` in its batch
transaction; this command sends those rows to the webhook and/or the Kafka topic the
settings name (one :class:`publisher.loop.Publisher` per target, each with its own position
in ``discrepancy_deliveries``, so a slow pager does not hold back Kafka), at least once,
with the finding id as idempotency key. SIGTERM/SIGINT finish the page in flight and exit
0; ``--once`` drains the outbox and exits. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading

import observability
from ledger.errors import ConfigurationError
from ledger.settings import LedgerSettings
from ledger_cli import runtime
from ledger_cli.progress import say
from publisher.feed import Sink
from publisher.loop import Publisher, PublishStats
from publisher.pages import PAGES, PageRow

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    publish = subparsers.add_parser(
        "publish-findings", help="page S1 discrepancy findings (webhook and/or Kafka)",
        description="Send each S1 page of the discrepancy outbox, in order, to "
        "LEDGER_FINDINGS_WEBHOOK_URL (POST JSON, Idempotency-Key: the finding id) and/or to "
        "LEDGER_FINDINGS_KAFKA_TOPIC, and record each delivery. Safe to kill at any time: "
        "only pages without a recorded delivery are sent again.",
    )
    publish.add_argument("--target", choices=("webhook", "kafka", "both"),
                         help="default: LEDGER_FINDINGS_PUBLISH_TARGET")
    publish.add_argument("--url", help="webhook URL (default: LEDGER_FINDINGS_WEBHOOK_URL)")
    publish.add_argument("--topic", help="Kafka topic (default: LEDGER_FINDINGS_KAFKA_TOPIC)")
    publish.add_argument("--batch-size", type=int, help="pages per read (default 100)")
    publish.add_argument("--once", action="store_true",
                         help="send what is enqueued, then exit (fails after 5 unanswered tries)")
    publish.set_defaults(handler=run_publish)


def sinks_from(args: argparse.Namespace, settings: LedgerSettings) -> list[Sink[PageRow]]:
    target = args.target or settings.findings_publish_target
    sinks: list[Sink[PageRow]] = []
    if target in ("webhook", "both"):
        from publisher.webhook import WebhookSink

        url = args.url or settings.findings_webhook_url
        if not url:
            raise ConfigurationError(
                "publish-findings needs LEDGER_FINDINGS_WEBHOOK_URL (or --url)")
        token = settings.findings_webhook_auth_token
        try:
            sinks.append(WebhookSink(url, token=token.get_secret_value() if token else None,
                                     timeout=settings.findings_webhook_timeout_seconds))
        except ValueError as error:
            raise ConfigurationError(str(error)) from error
    if target in ("kafka", "both"):
        from consumers.kafka.config import KafkaConnection  # the Kafka edge only when asked
        from publisher.kafka_sink import KafkaSink
        from publisher.pages import kafka_message

        kwargs = KafkaConnection.from_settings(settings).producer_kwargs(
            client_id="ledger-publish-findings")
        sinks.append(KafkaSink(kwargs, args.topic or settings.findings_kafka_topic,
                               encode=kafka_message))
    return sinks


def run_publish(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    publishers = [
        Publisher(params.conninfo, sink, feed=PAGES,
                  batch_size=args.batch_size or settings.findings_publish_batch_size,
                  retry_max_seconds=settings.findings_publish_retry_max_seconds,
                  idle_seconds=settings.findings_publish_interval_seconds,
                  give_up_after=5 if args.once else None)
        for sink in sinks_from(args, settings)
    ]
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    targets = ", ".join(p.sink.target for p in publishers)
    if args.once:
        say(f"paging S1 findings to {targets}")
        for publisher in publishers:
            publisher.run(stop, once=True)  # a PublishError ends the command (exit 2)
        failed: list[str] = []
    else:
        # One /metrics endpoint; each target's counters under its own prefix.
        observability.start_process_metrics(
            settings, "publish-findings", conninfo=params.conninfo,
            extra=tuple(observability.CountersCollector(
                f"ledger_findings_{_kind(p)}", p.stats.as_dict) for p in publishers))
        say(f"paging S1 findings to {targets} (Ctrl-C to stop)")
        failed = _run_together(publishers, stop)
    results = [{"target": p.sink.target, **p.stats.as_dict()} for p in publishers]
    for result in results:
        say(f"{result['target']}: {result['sent']} sent ({result['acknowledged']} "
            f"acknowledged, {result['rejected']} rejected), position {result['position']}")
    print(json.dumps({**_totals([p.stats for p in publishers]), "targets": results,
                      "failed": failed}))
    return 1 if failed else 0


def _run_together(publishers: list[Publisher[PageRow]], stop: threading.Event) -> list[str]:
    """Each target on its own thread; one that fails for good stops the others (the
    process exits non-zero and its supervisor restarts it, rather than paging half)."""
    failed: list[str] = []

    def work(publisher: Publisher[PageRow]) -> None:
        try:
            publisher.run(stop)
        except Exception as error:
            log.error("publishing to %s stopped: %s", publisher.sink.target, error)
            failed.append(publisher.sink.target)
            stop.set()

    threads = [threading.Thread(target=work, args=(p,), name=p.sink.target)
               for p in publishers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failed


def _totals(stats: list[PublishStats]) -> dict[str, int]:
    return {key: sum(getattr(s, key) for s in stats)
            for key in ("sent", "acknowledged", "rejected", "retries")}


def _kind(publisher: Publisher[PageRow]) -> str:
    return "kafka" if publisher.sink.target.startswith("kafka:") else "webhook"
