"""The app factory: ``create_app(settings)`` builds a FastAPI app with no global state.

Everything with a lifetime — the async PostgreSQL pool, the key store, the audit log, the
ledger writer and the audit sealer thread — is created in the lifespan and kept on
``app.state.services``; nothing connects at import or at ``create_app`` time, so the
OpenAPI document can be produced without a database. Sessions run with ``timezone=UTC``
and a statement timeout; pool connections are opened in the background so an API started
while PostgreSQL is down comes up and reports ``/v1/ready`` as unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from ledger.settings import LedgerSettings
from ledger.store.database import ConnectionParams
from projections.api.audit import AuditLog
from projections.api.config import ApiConfig, api_config
from projections.api.deid import Pseudonyms
from projections.api.deps import Services
from projections.api.keys import KeyStore
from projections.api.queries import Pool
from projections.api.routes import (
    access,
    alarms,
    ders,
    discrepancies,
    events,
    health,
    infusions,
    patients,
    replay,
)
from projections.api.sealer import AuditSealer
from projections.api.security import UNAVAILABLE
from projections.api.writer import LedgerWriter
from projections.documentation.api import router as documentation_feed

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
DESCRIPTION = """Read-only access to the infusion ledger's projections for auditors and safety
officers. Every request that touches patient-level data is recorded (`access.recorded`)
before its response is sent. Auditors see pseudonymous patient tokens and no free text.
Roles per operation are listed under `x-roles`. See docs/api.md."""


def create_app(settings: LedgerSettings, connection: ConnectionParams | None = None) -> FastAPI:
    """The API over the database of ``connection`` (default: ``settings.database_url``)."""
    config = api_config(settings, connection)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = _services(config)
        await services.pool.open(wait=False)
        sealer = None
        if config.run_sealer:
            sealer = AuditSealer(config.conninfo, services.writer, config.seal_interval_seconds)
            sealer.start()
        app.state.services = services
        app.state.sealer = sealer
        try:
            yield
        finally:
            if sealer is not None:
                sealer.stop()
            await services.pool.close()
            services.writer.close()

    app = FastAPI(
        title="Infusion ledger — auditor query API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    for module in (health, infusions, patients, discrepancies, alarms, ders, events, access,
                   replay):
        app.include_router(module.router)
    # Routes other issues add to this app, in its conventions (SecuredRoute, services).
    app.include_router(documentation_feed)
    for error in UNAVAILABLE:
        app.add_exception_handler(error, _unavailable)
    app.add_exception_handler(psycopg.DataError, _unreadable)
    return app


def _services(config: ApiConfig) -> Services:
    pool: Pool = AsyncConnectionPool(
        config.conninfo,
        connection_class=AsyncConnection[DictRow],
        min_size=config.pool_size,
        max_size=config.pool_size,
        open=False,
        name="ledger-api",
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "options": f"-c timezone=UTC -c statement_timeout={config.statement_timeout_ms}",
            "application_name": "ledger-api",
        },
    )
    pseudonyms = Pseudonyms(config.pseudonym_key, config.key_fingerprint, pool)
    return Services(
        config=config,
        pool=pool,
        keys=KeyStore(pool, config.key_cache_seconds),
        audit=AuditLog(pool, config.key_fingerprint),
        pseudonyms=pseudonyms,
        writer=LedgerWriter(config.connection),
    )


async def _unreadable(request: Request, exc: Exception) -> JSONResponse:
    # PostgreSQL refused a value as data (a cursor key of the wrong type, a NUL byte): the
    # request is at fault, not the server.
    detail = [{"type": "value_error", "loc": ["query"], "msg": str(exc).splitlines()[0],
               "input": None}]
    return JSONResponse({"detail": detail}, status_code=422)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("cannot answer %s: %s", request.url.path, exc)
    if isinstance(exc, psycopg.errors.UndefinedTable):
        detail = "the read model is not built yet (run `ledger project`)"
    else:
        detail = "the database is unavailable"
    return JSONResponse({"detail": detail}, status_code=503)
