"""Running the API under uvicorn: N worker processes (default 1) and one audit sealer process.

The sealer runs in a process of its own, never in a worker: sealing a second's access
records is tens of milliseconds of Python (building and hashing each record's event) that,
in the serving process, held the GIL against requests — measured, a third of the serving
process's CPU per request and most of the one-client p99. In its own process it uses the
other core, and it runs once whatever the number of workers (its advisory lock would also
keep two sealers from sealing at once). ``create_app`` keeps its in-process sealer for
embedding (tests, the demo); ``ledger serve`` switches that off.

One Python process serves requests on one core at most (the GIL); on the 2-core target
machine a second worker adds what the first cannot, at 16 connections. Everything a worker
keeps is safe to have N times: its own pool, key cache (revocation is still honoured
within ``api_key_cache_seconds`` in each), pseudonym caches (a token two workers hand out
is registered twice, ``ON CONFLICT DO NOTHING``), and group commit of access records
(each worker commits its own).

Workers are separate interpreters started by uvicorn, so they rebuild their settings from
the environment: :func:`serve` puts the resolved database URL there (an embedded server
the parent started must not be started again) and switches the workers' sealers off.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from multiprocessing.connection import Connection
from typing import Any

from ledger.settings import LedgerSettings
from ledger.store.database import ConnectionParams, parse_database_url
from projections.api.app import create_app
from projections.api.config import api_config
from projections.api.sealer import AuditSealer
from projections.api.writer import LedgerWriter

log = logging.getLogger(__name__)

#: Set in the workers' environment: instrument the app with /metrics (``ledger serve`` does).
_INSTRUMENT = "LEDGER_API_WORKER_METRICS"


def build_app(settings: LedgerSettings, params: ConnectionParams, *, instrument: bool) -> Any:
    app = create_app(settings, params)
    if instrument:
        from observability import instrument_app

        instrument_app(app, settings, conninfo=params.conninfo)  # /metrics, route latency
    # What exists now (modules, validators, routes) lives as long as the process: out of
    # the cyclic collector's reach, a full collection walks only what requests left
    # behind, instead of stalling one request for milliseconds (the one-client p99).
    gc.collect()
    gc.freeze()
    return app


def worker_app() -> Any:
    """uvicorn's app factory in each worker process (``--workers`` > 1)."""
    settings = LedgerSettings()
    if not settings.database_url:
        raise RuntimeError("LEDGER_DATABASE_URL is not set (serve() sets it for its workers)")
    params = parse_database_url(settings.database_url)
    return build_app(settings, params, instrument=os.environ.get(_INSTRUMENT) == "1")


def serve(
    settings: LedgerSettings,
    params: ConnectionParams,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    instrument: bool = True,
) -> None:
    import uvicorn

    config = api_config(settings, params)  # creates the pseudonym key file once, here
    # Access logs are off: every patient-level request is already recorded, durably, by
    # the API itself. uvloop and httptools are used when installed ("auto").
    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level,
                               "access_log": False}
    sealing = (sealer_process(params, config.seal_interval_seconds) if config.run_sealer
               else nullcontext())
    # uvicorn (one process) ends a graceful shutdown by re-raising SIGTERM at its caller;
    # with the default action that kills this process before the sealer is stopped. As an
    # exception it unwinds through `sealing` instead, and the exit is a clean 0.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with sealing:
            if workers <= 1:
                app_settings = settings.model_copy(update={"api_audit_sealer": False})
                uvicorn.run(build_app(app_settings, params, instrument=instrument), **options)
                return
            os.environ.update({
                "LEDGER_DATABASE_URL": params.url(),
                "LEDGER_API_AUDIT_SEALER": "false",
                _INSTRUMENT: "1" if instrument else "0",
            })
            uvicorn.run("projections.api.serving:worker_app", factory=True, workers=workers,
                        **options)
    except (KeyboardInterrupt, _Terminated):
        pass  # uvicorn has shut down gracefully; so has the sealer


class _Terminated(Exception):
    """SIGTERM, as an exception (see :func:`serve`)."""


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


@contextmanager
def sealer_process(params: ConnectionParams, interval: float) -> Iterator[None]:
    """The audit sealer in a process of its own while the block runs; a last pass at exit.

    The sealer holds the read end of a pipe nobody writes to: end of file — this process
    closing its end, or dying however it dies — is its signal to make a last pass and stop.
    """
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_run_sealer, args=(params, interval, reader),
                              name="ledger-api-sealer", daemon=True)
    process.start()
    reader.close()
    # Sealing has seconds of slack, a request has milliseconds: the sealer's start-up
    # imports and each pass over a second's records are bursts of CPU that must not take a
    # core from the workers (the one-client p99). Set from here, so the imports are niced too.
    _lower_priority(process.pid)
    try:
        yield
    finally:
        writer.close()
        process.join(timeout=30)
        if process.is_alive():
            log.warning("the audit sealer did not stop; the access log keeps unsealed rows")
            process.terminate()


def _lower_priority(pid: int | None) -> None:
    if pid is None:  # not started: nothing to lower (0 would mean this process)
        return
    try:
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, pid, min(19, mine + 10))
    except OSError:
        log.warning("could not lower the audit sealer's priority")


def _run_sealer(params: ConnectionParams, interval: float, parent: Connection) -> None:
    # Ctrl-C and a group-wide SIGTERM reach the sealer too: it keeps sealing until the
    # server has drained its requests (their records included) and closed the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    writer = LedgerWriter(params)
    sealer = AuditSealer(params.conninfo, writer, interval)
    try:
        while not _closed(parent, interval):
            try:
                sealer.seal_once()
            except Exception:  # keep trying: rows stay in the log until they are sealed
                log.exception("sealing access records failed; will retry")
        try:
            sealer.seal_once()  # leave nothing behind that can be sealed now
        except Exception:
            log.exception("final sealing pass failed; the access log keeps the records")
    finally:
        sealer.close()
        writer.close()


def _closed(parent: Connection, timeout: float) -> bool:
    """Wait up to ``timeout``; true once the serving process has closed its end (or died)."""
    try:
        if parent.poll(timeout):
            parent.recv()  # nothing is ever sent: this raises EOFError
    except (EOFError, OSError):
        return True
    return False
