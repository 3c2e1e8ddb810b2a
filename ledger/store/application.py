"""The eventsourcing ``Application`` that owns the ledger's event table.

Its name is pinned (``ledger`` → table ``ledger_events``, NOTIFY channel ``ledger_events``)
because renaming the class must never move the data. The migrations own the DDL
(``CREATE_TABLE=no``) and :class:`~ledger.store.recorder.LedgerRecorder` is the recorder.
"""

from __future__ import annotations

from eventsourcing.application import Application

from ledger.store.database import ConnectionParams

RECORDER_TOPIC = "ledger.store.recorder:LedgerRecorder"


class LedgerApplication(Application):
    name = "ledger"


def application_env(params: ConnectionParams, pool_size: int = 2) -> dict[str, str]:
    """eventsourcing's settings (passed as ``env=``, which wins over os.environ)."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": params.dbname,
        "POSTGRES_HOST": params.host,
        "POSTGRES_PORT": str(params.port),
        "POSTGRES_USER": params.user,
        "POSTGRES_PASSWORD": params.password,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        # Long batches legitimately sit in a transaction while COPY streams.
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
        "CREATE_TABLE": "no",
        "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
    }
