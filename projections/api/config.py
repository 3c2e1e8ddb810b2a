"""What the API needs from the ledger's settings, resolved once when the app is built.

``ApiConfig`` is plain data: the connection, pool and timeout figures, and the pseudonym
key. The key comes from ``LEDGER_API_PSEUDONYM_KEY`` or, when unset, from a file under
the data directory that is generated once and reused, because tokens must stay the same
across restarts or an auditor's notes stop pointing at the same patient.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import ConfigurationError
from ledger.settings import LedgerSettings
from ledger.store.database import ConnectionParams, parse_database_url

PSEUDONYM_KEY_FILE = "api-pseudonym.key"
_MIN_KEY_LENGTH = 32


@dataclass(frozen=True)
class ApiConfig:
    connection: ConnectionParams
    pool_size: int
    statement_timeout_ms: int
    pseudonym_key: bytes
    key_cache_seconds: float
    run_sealer: bool
    seal_interval_seconds: float
    ready_max_lag_seconds: float

    @property
    def key_fingerprint(self) -> str:
        return key_fingerprint(self.pseudonym_key)

    @property
    def conninfo(self) -> str:
        return self.connection.conninfo


def key_fingerprint(key: bytes) -> str:
    """Names the pseudonym key without revealing it (tokens are scoped by it)."""
    return hashlib.sha256(b"fingerprint:" + key).hexdigest()[:16]


def pseudonym_key(settings: LedgerSettings) -> bytes:
    """The configured HMAC key, else the one kept in ``data_dir`` (created on first use)."""
    if settings.api_pseudonym_key is not None:
        key = settings.api_pseudonym_key.get_secret_value()
        if len(key) < _MIN_KEY_LENGTH:
            raise ConfigurationError(
                f"LEDGER_API_PSEUDONYM_KEY must be at least {_MIN_KEY_LENGTH} characters"
            )
        return key.encode()
    path = Path(settings.data_dir) / PSEUDONYM_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once must not end up with two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < _MIN_KEY_LENGTH:
        raise ConfigurationError(f"{path}: the pseudonym key is too short")
    return key.encode()


def api_config(
    settings: LedgerSettings, connection: ConnectionParams | None = None
) -> ApiConfig:
    if connection is None:
        if not settings.database_url:
            raise ConfigurationError(
                "the API needs a database: pass the connection or set LEDGER_DATABASE_URL"
            )
        connection = parse_database_url(settings.database_url)
    return ApiConfig(
        connection=connection,
        pool_size=settings.api_pool_size,
        statement_timeout_ms=settings.api_statement_timeout_ms,
        pseudonym_key=pseudonym_key(settings),
        key_cache_seconds=settings.api_key_cache_seconds,
        run_sealer=settings.api_audit_sealer,
        seal_interval_seconds=settings.api_audit_seal_interval_seconds,
        ready_max_lag_seconds=settings.api_ready_max_lag_seconds,
    )
