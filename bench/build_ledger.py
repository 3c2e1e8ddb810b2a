"""Filling a benchmark database with N realistic events through the ledger's own append path."""

from __future__ import annotations

import json
import sys
import time

from bench.workload import events
from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore


def build(params: ConnectionParams, count: int, *, batch: int = 1000, seed: int = 7) -> float:
    """Append ``count`` events; returns the append rate (events/s), showing progress."""
    started = time.perf_counter()
    with EventStore(params) as store:
        chunk: list[Incoming] = []
        for n, raw in enumerate(events(count, seed=seed), start=1):
            chunk.append(Incoming(parse_event(json.dumps(raw)), Origin("kafka", f"b:0:{n}")))
            if len(chunk) == batch:
                store.append(chunk)
                chunk = []
                if sys.stderr.isatty():
                    print(f"\rbuilding ledger: {n:,}/{count:,}", end="", file=sys.stderr)
        if chunk:
            store.append(chunk)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return count / (time.perf_counter() - started)
