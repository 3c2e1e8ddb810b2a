"""``ledger deadletter list|show|resubmit``: inspect refused messages and send them back.

``list`` prints one line per dead-lettered origin (repeated reports of one origin folded),
``show`` the full record, ``resubmit`` produces the original messages to their source
topic again — after a producer fix or a contract extension — where the consumer ingests
them exactly once (the value and its ``event_id`` are unchanged; a second re-submission is
absorbed as a duplicate). References are ``partition:offset`` in the dead-letter topic or
the ``topic:partition:offset`` origin shown by ``list``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers.kafka.config import KafkaConnection, default_client_id
from consumers.kafka.deadletter_reader import (
    DeadLetterRecord,
    fold_by_origin,
    plan_resubmissions,
    read_deadletters,
    resubmit,
)
from consumers.kafka.errors import broker_error
from ledger.settings import LedgerSettings
from ledger_cli.progress import say

EXIT_NOT_FOUND = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deadletter", help="inspect and re-submit messages refused by `ledger consume`"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--topic", help="dead-letter topic (default: LEDGER_KAFKA_DEADLETTER_TOPIC)"
    )
    common.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    common.add_argument("--code", help="only messages with this x-error-code")
    common.add_argument("--kind", choices=("rejected", "conflict"), help="only this kind")
    actions = parser.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("list", parents=[common], help="one line per dead letter")
    listing.add_argument("--json", action="store_true", help="NDJSON on stdout")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", parents=[common], help="headers, key and value")
    show.add_argument("refs", nargs="+", metavar="REF", help="partition:offset or origin")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=run_show)

    again = actions.add_parser(
        "resubmit", parents=[common], help="produce dead letters to their source topic again"
    )
    again.add_argument("refs", nargs="*", metavar="REF", help="partition:offset or origin")
    again.add_argument("--all", action="store_true", help="every dead letter (after filters)")
    again.add_argument("--to-topic", help="produce here instead of the x-origin topic")
    again.add_argument("--include-conflicts", action="store_true",
                       help="also re-submit conflicts (they conflict again unless changed)")
    again.add_argument("--dry-run", action="store_true", help="say what would be sent")
    again.set_defaults(handler=run_resubmit)


def _connection(args: argparse.Namespace, settings: LedgerSettings) -> KafkaConnection:
    if args.bootstrap_servers:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": args.bootstrap_servers})
    return KafkaConnection.from_settings(settings)


def _topic(args: argparse.Namespace, settings: LedgerSettings) -> str:
    return str(args.topic or settings.kafka_deadletter_topic)


def _letters(args: argparse.Namespace, settings: LedgerSettings) -> list[DeadLetterRecord]:
    if not args.verbose:
        # kafka-python narrates every connection at INFO; its warnings and errors still show.
        logging.getLogger("kafka").setLevel(logging.WARNING)
    letters = fold_by_origin(read_deadletters(_connection(args, settings), _topic(args, settings)))
    return [
        letter for letter in letters
        if (args.code is None or letter.code == args.code)
        and (args.kind is None or letter.kind == args.kind)
    ]


def _select(letters: Sequence[DeadLetterRecord], refs: Sequence[str]) -> list[DeadLetterRecord]:
    chosen = []
    for ref in refs:
        found = [letter for letter in letters if letter.matches(ref)]
        if not found:
            say(f"ledger deadletter: no dead letter {ref}")
        chosen.extend(found)
    return chosen


def _as_json(letter: DeadLetterRecord) -> dict[str, Any]:
    return {
        "ref": letter.ref,
        "origin": letter.origin,
        "kind": letter.kind,
        "code": letter.code,
        "detail": letter.detail,
        "reports": letter.reports,
        "event_id": letter.event_field("event_id"),
        "type": letter.event_field("type"),
        "key": letter.key.decode("utf-8", "replace") if letter.key is not None else None,
        "value": letter.value.decode("utf-8", "replace") if letter.value is not None else None,
        "headers": {k: v.decode("utf-8", "replace") for k, v in letter.headers},
        "timestamp": _when(letter.timestamp_ms),
    }


def _when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")


def run_list(args: argparse.Namespace, settings: LedgerSettings) -> int:
    letters = _letters(args, settings)
    if args.json:
        for letter in letters:
            print(json.dumps(_as_json(letter)))
        return 0
    print(f"{'REF':<10} {'ORIGIN':<40} {'KIND':<8} {'CODE':<24} {'EVENT_ID':<36} DETAIL")
    for letter in letters:
        detail = letter.detail if len(letter.detail) <= 100 else letter.detail[:97] + "..."
        repeats = f" (reported {letter.reports}x)" if letter.reports > 1 else ""
        print(
            f"{letter.ref:<10} {letter.origin:<40} {letter.kind:<8} {letter.code:<24} "
            f"{letter.event_field('event_id') or '-':<36} {detail}{repeats}"
        )
    say(f"{len(letters)} dead letters on {_topic(args, settings)}")
    return 0


def run_show(args: argparse.Namespace, settings: LedgerSettings) -> int:
    chosen = _select(_letters(args, settings), args.refs)
    for letter in chosen:
        if args.json:
            print(json.dumps(_as_json(letter)))
            continue
        data = _as_json(letter)
        print(f"dead letter {letter.ref} (at {data['timestamp']}, reported {letter.reports}x)")
        print(f"  origin:  {letter.origin}")
        print(f"  kind:    {letter.kind}")
        print(f"  code:    {letter.code}")
        print(f"  detail:  {letter.detail}")
        print(f"  key:     {data['key']}")
        for name, value in letter.original_headers:
            print(f"  header:  {name}={value.decode('utf-8', 'replace')}")
        print("  value:")
        print("    " + _pretty(letter.value).replace("\n", "\n    "))
    return 0 if len(chosen) >= len(args.refs) else EXIT_NOT_FOUND


def _pretty(value: bytes | None) -> str:
    if value is None:
        return "<no value>"
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        return repr(value[:2000])


def run_resubmit(args: argparse.Namespace, settings: LedgerSettings) -> int:
    if not args.refs and not args.all:
        say("ledger deadletter resubmit: name REFs or pass --all")
        return 2
    topic = _topic(args, settings)
    letters = _letters(args, settings)
    chosen = letters if args.all else _select(letters, args.refs)
    plan, skipped = plan_resubmissions(
        chosen, topic, to_topic=args.to_topic, include_conflicts=args.include_conflicts
    )
    for letter, reason in skipped:
        say(f"skipped {letter.ref} ({letter.origin}): {reason}")
    if args.dry_run:
        for item in plan:
            say(f"would re-submit {item.letter.ref} ({item.letter.origin}) to {item.topic}")
        return 0
    connection = _connection(args, settings)
    try:
        producer = KafkaProducer(
            **connection.producer_kwargs(client_id=default_client_id("resubmit"))
        )
    except KafkaError as exc:
        raise broker_error(f"connecting to Kafka at {connection.bootstrap_servers}", exc) from exc
    try:
        done = resubmit(producer, plan, topic)
    finally:
        producer.close(timeout=5)
    for item in done:
        say(f"re-submitted {item.letter.ref} ({item.letter.origin}) to "
            f"{item.topic}:{item.partition}:{item.offset}")
    print(json.dumps({"resubmitted": len(done), "skipped": len(skipped)}), file=sys.stdout)
    missing = not args.all and len(chosen) < len(args.refs)
    return EXIT_NOT_FOUND if missing else 0
