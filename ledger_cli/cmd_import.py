"""``ledger import FILE``: append an NDJSON file of v1 events, reporting every refusal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from ledger.contract import parse_event
from ledger.errors import ContractError
from ledger.settings import LedgerSettings
from ledger.store import Incoming, Origin
from ledger.store.event_store import EventStore
from ledger_cli import runtime
from ledger_cli.appending import append_counted
from ledger_cli.progress import Progress, say


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import", help="append an NDJSON file of v1 events (one envelope per line)"
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.set_defaults(handler=run)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def import_file(store: EventStore, path: Path, batch_size: int = 2000) -> dict[str, int]:
    counts = {"appended": 0, "duplicates": 0, "conflicts": 0, "rejected": 0}
    progress = Progress(f"import {path.name}")
    batch: list[Incoming] = []

    def flush() -> None:
        append_counted(store, batch, counts)  # origins are path:line, so conflicts name them

    origin_prefix = str(path)
    for number, raw in _lines(path):
        try:
            event = parse_event(raw)
        except ContractError as exc:
            counts["rejected"] += 1
            for error in exc.errors:
                say(f"{path}:{number}: rejected: {error}")
            continue
        batch.append(Incoming(event, Origin("file", f"{origin_prefix}:{number}")))
        if len(batch) >= batch_size:
            flush()
            progress.update(sum(counts.values()))
    if batch:
        flush()
    progress.finish()
    return counts


def run(args: argparse.Namespace, settings: LedgerSettings) -> int:
    if not args.file.is_file():
        say(f"ledger import: {args.file}: no such file")
        return 2
    with runtime.event_store(settings) as store:
        counts = import_file(store, args.file, args.batch_size or settings.append_batch_size)
    say(
        f"{args.file}: {counts['appended']} appended, {counts['duplicates']} duplicates, "
        f"{counts['conflicts']} conflicts, {counts['rejected']} rejected"
    )
    print(json.dumps(counts), file=sys.stdout, flush=True)
    return 0 if counts["rejected"] == 0 and counts["conflicts"] == 0 else 1
