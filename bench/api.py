"""Benchmark: authenticated, audited patient-level queries through the API, beside psycopg.

Fills the infusions projection's tables (generation 1, real DDL and views) with N episodes
(default 1,000,000: 200,000 patients × 5), their locations and orders, then runs
``ledger serve`` (``--workers``, default 1; its audit sealer process on) and measures
``GET /v1/patients/{token}/infusions`` for a random patient per request as an *auditor*
(key check, token resolution, de-identification, an access record written per request):

* one sequential keep-alive client in a separate process (p50/p99 of ``--requests``);
* ``wrk -t2 -c16`` for ``--seconds`` (throughput; Debian's ``wrk`` must be installed);
* the same SQL the route runs, sequentially through a psycopg pool (the baseline);
* for scale, the same SQL behind a bare FastAPI route (async pool, no auth, no audit, no
  de-identification: PERFORMANCE.md §6's "unaudited FastAPI"), same clients, same run.

Each is run ``--runs`` times; the medians are reported. Loopback only. The last line is
``{"bench": "api", "p50_ms": …, "p99_ms": …, "direct_p99_ms": …, "rps_16conn": …, …}``
(``plain_*``: the bare FastAPI figures; ``server_cpu_ms_*``: CPU time of ``ledger serve``'s
processes — workers, sealer — per request, read from /proc: on a machine shared with other
work, the figure that moves least).

    python bench/api.py [--episodes 1000000] [--requests 2000] [--seconds 10] [--runs 3]
                        [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg_pool import ConnectionPool

from bench.common import emit, machine, throwaway_database
from ledger.store.database import ConnectionParams
from projections import registry
from projections.api.config import key_fingerprint
from projections.api.deid import Pseudonyms
from projections.api.keys import Role, create_key
from projections.api.routes.infusion_models import SUMMARY_COLUMNS
from projections.runtime import catalog

PSEUDONYM_KEY = "bench-pseudonym-key-000000000000000000"
FACILITY = "default"
PER_PATIENT = 5
FILL = """
INSERT INTO infusion_episodes_g1 (
    episode_id, facility_id, pump_id, channel, source, patient_id, patient_from, order_id,
    order_link, medication_code, medication_name, program_mode, library_mode,
    program_care_area, programmed_rate, programmed_rate_unit, current_rate, current_rate_unit,
    status, volume_infused, volume_infused_unit, programmed_at, started_at, ended_at,
    boluses, soft_alerts, hard_alerts, overrides, first_event_id, first_position,
    last_position, last_occurred_at, last_recorded_at)
SELECT md5(n::text)::uuid, %(facility)s, 'PUMP-' || (n %% 5000), 'A', 'primary',
       'MRN-' || lpad((n / %(per)s)::text, 7, '0'), 'event', 'ORD-' || (n / %(per)s),
       'subject', 'MED-' || (n %% 40), 'medication ' || (n %% 40), 'auto', 'library', 'ICU',
       (10 + n %% 90)::numeric / 10, 'mL/h', (10 + n %% 90)::numeric / 10, 'mL/h',
       CASE WHEN n %% 5 = 4 THEN 'infusing' ELSE 'stopped' END, (n %% 500)::numeric / 4, 'mL',
       t, t + interval '2 minutes', CASE WHEN n %% 5 = 4 THEN NULL ELSE t + interval '4 hours'
       END, 0, n %% 3, 0, n %% 7 / 6, md5('e' || n)::uuid, 2 * n + 1, 2 * n + 2, t, t
FROM generate_series(0, %(episodes)s - 1) AS n,
     LATERAL (SELECT timestamptz '2026-01-01 00:00+00' + n * interval '13 seconds' AS t) AS at
"""
LOCATIONS = """
INSERT INTO patient_locations_g1 (facility_id, patient_id, unit, bed, care_area, since,
                                  last_position)
SELECT %(facility)s, 'MRN-' || lpad(p::text, 7, '0'), 'UNIT-' || (p %% 20), (p %% 30)::text,
       'ICU', timestamptz '2026-01-01 00:00+00', 1
FROM generate_series(0, %(patients)s - 1) AS p
"""
ORDERS = """
INSERT INTO infusion_orders_g1 (facility_id, order_id, patient_id, status, verified,
    medication_code, medication_name, rate, rate_unit, placed_at, modifications, last_position)
SELECT %(facility)s, 'ORD-' || p, 'MRN-' || lpad(p::text, 7, '0'), 'active', true,
       'MED-' || (p %% 40), 'medication ' || (p %% 40), 5, 'mL/h',
       timestamptz '2025-12-31 00:00+00', 0, 1
FROM generate_series(0, %(patients)s - 1) AS p
"""
# What the route runs (projections/api/queries.fetch_page), with a patient bound.
ROUTE_SQL = (
    "SELECT (SELECT min(notification_id) FROM projection_generations WHERE state = 'active'"
    f" AND projection = ANY(%s)) AS _position, {SUMMARY_COLUMNS} FROM infusion_state"
    " WHERE (facility_id = %s AND patient_id = %s) ORDER BY first_position DESC,"
    " episode_id DESC LIMIT %s"
)
CLIENT = r"""
import http.client, json, random, sys, time
host, port, count, auth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tokens = [line.strip() for line in open(sys.argv[5])]
connection = http.client.HTTPConnection(host, port)
headers = {"Authorization": auth}
times = []
for i in range(count + 100):
    path = "/v1/patients/" + random.choice(tokens) + "/infusions"
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"{response.status}: {body[:200]!r}")
    if i >= 100:  # the first hundred warm caches and prepared statements
        times.append(elapsed)
times.sort()
print(json.dumps({"p50": times[len(times) // 2], "p99": times[int(len(times) * 0.99)]}))
"""
PLAIN_APP = f"""
import os
from contextlib import asynccontextmanager
from fastapi import FastAPI
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
SQL = {ROUTE_SQL!r}
pool = AsyncConnectionPool(os.environ["BENCH_CONNINFO"], min_size=4, max_size=4, open=False,
                           kwargs={{"autocommit": True, "row_factory": dict_row}})
@asynccontextmanager
async def lifespan(app):
    await pool.open(wait=True)
    yield
    await pool.close()
app = FastAPI(lifespan=lifespan)
@app.get("/v1/patients/{{patient}}/infusions")
async def infusions(patient: str):
    async with pool.connection() as conn:
        cur = await conn.execute(SQL, (["infusions"], "{FACILITY}", patient, 101))
        return await cur.fetchall()
"""
WRK_LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
wrk.headers["Authorization"] = "%s"
request = function()
  return wrk.format("GET", "/v1/patients/" .. tokens[math.random(#tokens)] .. "/infusions")
end
"""


def build(params: ConnectionParams, episodes: int) -> list[str]:
    """Fill the read model; return the pseudonymous tokens of every patient."""
    patients = episodes // PER_PATIENT
    values = {"facility": FACILITY, "per": PER_PATIENT, "episodes": episodes,
              "patients": patients}
    with psycopg.connect(params.conninfo, autocommit=True) as conn:
        for projection in registry.build(["infusions", "alarms", "ders"]):
            catalog.ensure_active(conn, projection)
        started = time.perf_counter()
        for statement in (FILL, LOCATIONS, ORDERS):
            conn.execute(statement.encode(), values)
        conn.execute("UPDATE projection_generations SET notification_id = %s", (2 * episodes,))
        conn.execute("VACUUM ANALYZE infusion_episodes_g1")
        conn.execute("VACUUM ANALYZE patient_locations_g1")
        conn.execute("VACUUM ANALYZE infusion_orders_g1")
        print(f"filled {episodes:,} episodes of {patients:,} patients in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        # The tokens an auditor would have been handed, registered as the API registers them.
        fingerprint = key_fingerprint(PSEUDONYM_KEY.encode())
        pseudonyms = Pseudonyms(PSEUDONYM_KEY.encode(), fingerprint)
        rows = [(pseudonyms.token(FACILITY, f"MRN-{p:07d}"), f"MRN-{p:07d}")
                for p in range(patients)]
        with conn.cursor().copy(
            "COPY api_pseudonyms (token, facility_id, patient_id, key_fingerprint) FROM STDIN"
        ) as copy:
            for token, patient in rows:
                copy.write_row((token, FACILITY, patient, fingerprint))
    return [token for token, _ in rows]


def direct(params: ConnectionParams, tokens_to_ids: list[str], count: int) -> tuple[float, float]:
    """The route's SQL, sequentially through a psycopg pool: (p50, p99) in seconds."""
    times = []
    with ConnectionPool(params.conninfo, min_size=4, max_size=4) as pool, \
            pool.connection() as conn:
        for i in range(count + 100):
            patient = random.choice(tokens_to_ids)
            started = time.perf_counter()
            conn.execute(ROUTE_SQL, (["infusions"], FACILITY, patient, 101)).fetchall()
            if i >= 100:
                times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def serve(params: ConnectionParams, port: int, workers: int) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    environment.update(LEDGER_DATABASE_URL=params.url(), LEDGER_API_PSEUDONYM_KEY=PSEUDONYM_KEY)
    # BENCH_SERVE_LEDGER_X=v reaches `ledger serve` as LEDGER_X=v (experiments, such as
    # BENCH_SERVE_LEDGER_API_AUDIT_SEALER=false); the bench's own LEDGER_* never do.
    prefix = "BENCH_SERVE_"
    environment.update({k[len(prefix):]: v for k, v in os.environ.items()
                        if k.startswith(prefix + "LEDGER_")})
    server = subprocess.Popen(
        [sys.executable, "-m", "ledger_cli.main", "serve", "--port", str(port),
         "--workers", str(workers)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _wait_for(server, port)
    return server


def serve_plain(params: ConnectionParams, port: int, folder: Path) -> subprocess.Popen[bytes]:
    (folder / "plain_app.py").write_text(PLAIN_APP)
    environment = {**os.environ, "BENCH_CONNINFO": params.conninfo}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "plain_app:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _wait_for(server, port)
    return server


def process_tree_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its descendants (Linux /proc), else None."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    if pid not in stats:
        return None
    tree, total, grown = {pid}, 0.0, True
    while grown:
        grown = False
        for child, (parent, _) in stats.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grown = True
    for member in tree:
        total += stats[member][1]
    return total


def _per_request_ms(before: float | None, after: float | None, requests: int) -> float | None:
    if before is None or after is None or requests <= 0:
        return None
    return (after - before) / requests * 1000


def _wait_for(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                detail = server.stderr.read().decode() if server.stderr else ""
                raise SystemExit(f"server did not start: {detail}") from None
            time.sleep(0.1)


def sequential(client: Path, port: int, count: int, auth: str, refs: Path) -> tuple[float, float]:
    """(p50, p99) in ms of one keep-alive client in its own process."""
    out = subprocess.run(
        [sys.executable, str(client), "127.0.0.1", str(port), str(count), auth, str(refs)],
        capture_output=True, text=True, check=True,
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    return figures["p50"] * 1000, figures["p99"] * 1000


def wrk_rps(port: int, script: Path, seconds: int) -> tuple[float, int]:
    """(requests per second, requests completed)."""
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} failed responses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    if match is None or done is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(match.group(1)), int(done.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="ledger serve --workers")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    have_wrk = shutil.which("wrk") is not None
    with throwaway_database(args.database_url) as params, \
            tempfile.TemporaryDirectory() as tmp:
        tokens = build(params, args.episodes)
        with psycopg.connect(params.conninfo, autocommit=True) as conn:
            _, key = create_key(conn, Role.AUDITOR, label="bench")
        auth = f"Bearer {key}"
        token_file = Path(tmp) / "tokens.txt"
        sample = random.sample(tokens, min(len(tokens), 20_000))
        token_file.write_text("\n".join(sample) + "\n")
        lua = Path(tmp) / "patients.lua"
        lua.write_text(WRK_LUA % (token_file, auth))
        client = Path(tmp) / "client.py"
        client.write_text(CLIENT)
        patient_ids = [f"MRN-{p:07d}" for p in range(args.episodes // PER_PATIENT)]
        id_file = Path(tmp) / "ids.txt"
        id_file.write_text("\n".join(random.sample(patient_ids, len(sample))) + "\n")
        plain_lua = Path(tmp) / "plain.lua"
        plain_lua.write_text(WRK_LUA % (id_file, auth))

        port, plain_port = _free_port(), _free_port()
        server = serve(params, port, args.workers)
        plain = serve_plain(params, plain_port, Path(tmp))
        figures: dict[str, list[float]] = {}

        def note(name: str, value: float | None) -> None:
            if value is not None:
                figures.setdefault(name, []).append(value)

        try:
            for run in range(args.runs):
                note("sealer_backlog_wait_s", wait_until_sealed(params))
                cpu = process_tree_cpu(server.pid)
                p50, p99 = sequential(client, port, args.requests, auth, token_file)
                note("p50_ms", p50)
                note("p99_ms", p99)
                note("server_cpu_ms_per_req_1conn", _per_request_ms(
                    cpu, process_tree_cpu(server.pid), args.requests + 100))
                d50, d99 = direct(params, patient_ids, args.requests)
                note("direct_p50_ms", d50 * 1000)
                note("direct_p99_ms", d99 * 1000)
                plain50, plain99 = sequential(client, plain_port, args.requests, auth, id_file)
                note("plain_p50_ms", plain50)
                note("plain_p99_ms", plain99)
                if have_wrk:
                    cpu = process_tree_cpu(server.pid)
                    per_second, done = wrk_rps(port, lua, args.seconds)
                    note("rps_16conn", per_second)
                    note("server_cpu_ms_per_req_16conn",
                         _per_request_ms(cpu, process_tree_cpu(server.pid), done))
                    note("plain_rps_16conn", wrk_rps(plain_port, plain_lua, args.seconds)[0])
                print(f"  run {run + 1}: " + ", ".join(
                    f"{name} {values[-1]:.3f}" for name, values in figures.items()),
                    file=sys.stderr, flush=True)
        finally:
            for process in (server, plain):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        with psycopg.connect(params.conninfo) as conn:
            records = conn.execute("SELECT count(*) FROM api_access_log").fetchone()
            sealed = conn.execute(
                "SELECT coalesce(sum(cardinality(record_ids)), 0) FROM api_access_seals"
            ).fetchone()
            seals = conn.execute(
                "SELECT count(*) FROM ledger_events WHERE topic = 'access.sealed'").fetchone()
    if not have_wrk:
        print("wrk is not installed (apt-get install wrk): no throughput figure",
              file=sys.stderr)
    medians: dict[str, float | int | None] = {
        name: round(statistics.median(values), 3) for name, values in figures.items()}
    for name in ("rps_16conn", "plain_rps_16conn"):
        rate = medians.get(name)
        medians[name] = round(rate) if rate is not None else None
    emit({
        "bench": "api", "episodes": args.episodes, "role": "auditor", "audited": True,
        "workers": args.workers,
        **medians,
        "access_records": records[0] if records else None,
        "access_records_sealed": sealed[0] if sealed else None,
        "seals_in_ledger": seals[0] if seals else None, "machine": machine(),
    })


def wait_until_sealed(params: ConnectionParams, limit: float = 120.0) -> float:
    """Wait until the audit sealer has sealed every access record; return the seconds waited.

    The one-client figures describe a server serving one client: the previous run's `wrk`
    phase leaves tens of thousands of records for the sealer, whose catching up would
    otherwise overlap the next sequential measurement (the sealer's backlog, not the
    one-client path)."""
    started = progressed = time.perf_counter()
    left = None
    with psycopg.connect(params.conninfo, autocommit=True) as conn:
        while time.perf_counter() - started < limit:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM api_access_log)"
                " - (SELECT coalesce(sum(cardinality(record_ids)), 0) FROM api_access_seals)"
            ).fetchone()
            count = row[0] if row else 0
            if count == 0:
                break
            if left is None or count < left:
                left, progressed = count, time.perf_counter()
            elif time.perf_counter() - progressed > 3:
                break  # not sealing at all (switched off for an experiment)
            time.sleep(0.2)
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
