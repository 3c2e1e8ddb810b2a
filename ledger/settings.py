"""Typed settings, read from ``LEDGER_*`` environment variables (or a ``.env`` file).

Built once in the composition root (``ledger_cli``) and passed down: nothing in the
packages reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("infusion-ledger", appauthor=False))


class LedgerSettings(BaseSettings):
    """Everything the ledger's processes need to know about their surroundings."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pw@host:5432/db). Unset: an embedded "
        "server under data_dir is started and reused.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_name: str = Field(default="ledger", description="Database used on the embedded server")
    pool_size: int = Field(default=2, ge=1, le=64)
    append_batch_size: int = Field(default=500, ge=1, le=10_000)
    checkpoint_interval: int = Field(
        default=10_000, ge=1, description="Notifications between two global checkpoints"
    )
    checkpoint_signing_key: Path | None = Field(
        default=None, description="Ed25519 private key (PEM) used to sign checkpoint exports"
    )

    # Kafka: plain values here, so ``ledger`` stays free of Kafka imports; consumers read them.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topics: list[str] = Field(default_factory=lambda: ["infusion.events.v1"])
    kafka_deadletter_topic: str = "infusion.events.deadletter.v1"
    kafka_group_id: str = "infusion-ledger"
    kafka_max_poll_records: int = Field(default=500, ge=1, le=10_000)
    kafka_poll_timeout_ms: int = Field(default=50, ge=1)
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_password: str | None = None
    kafka_fetch_max_wait_ms: int = Field(
        default=50, ge=1, description="Broker long-poll wait; bounds ingest latency when idle"
    )
    kafka_client_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra kafka-python client settings passed through verbatim (JSON object), "
        'e.g. {"ssl_check_hostname": false, "client_id": "ledger-1"}',
    )
