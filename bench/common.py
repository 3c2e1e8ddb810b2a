"""Shared benchmark plumbing: a throwaway database, medians, the machine, the raw COPY baseline."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ledger.store.database import ConnectionParams, parse_database_url
from ledger.store.migrate import migrate

SYSTEM_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                "",
            )
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpus} vCPU {model} / {system} / Python {platform.python_version()}"


@contextmanager
def throwaway_database(server_url: str | None) -> Iterator[ConnectionParams]:
    """A fresh, migrated database on the given server, dropped afterwards."""
    server = parse_database_url(server_url or SYSTEM_URL)
    name = f"ledger_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.with_dbname("postgres").conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = server.with_dbname(name)
    try:
        migrate(params.conninfo)
        yield params
    finally:
        with psycopg.connect(server.with_dbname("postgres").conninfo, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def median_of(runs: int, measure: Callable[[int], float], label: str) -> float:
    """Run ``measure(i)`` (returning events/s) ``runs`` times; print each; return the median."""
    figures = []
    for index in range(runs):
        figure = measure(index)
        figures.append(figure)
        print(f"  {label} run {index + 1}: {figure:,.0f} events/s", file=sys.stderr, flush=True)
    return statistics.median(figures)


def copy_baseline(params: ConnectionParams, rows: list[tuple[Any, ...]]) -> float:
    """Raw PostgreSQL: COPY the same rows into a plain table in one transaction (events/s)."""
    with psycopg.connect(params.conninfo) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_events (global_position bigserial PRIMARY KEY,"
            " stream_id uuid, stream_version int, event_type text, occurred_at timestamptz,"
            " payload jsonb, UNIQUE (stream_id, stream_version))"
        )
        conn.execute("TRUNCATE bench_raw_events")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
            "COPY bench_raw_events (stream_id, stream_version, event_type, occurred_at, payload)"
            " FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - started)


def emit(result: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps(result), flush=True)
