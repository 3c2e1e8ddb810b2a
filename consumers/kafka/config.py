"""kafka-python client settings, built from the ledger's settings and checked once.

The ledger's settings stay plain values (``ledger`` imports no Kafka); this module turns them
into ``KafkaConsumer`` / ``KafkaProducer`` / ``KafkaAdminClient`` keyword arguments. Security
settings (TLS, SASL) are passed through unchanged, and ``kafka_client_options`` carries any
other client setting verbatim to every client that knows it, so a production cluster never
needs a code change.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from ledger.errors import ConfigurationError
from ledger.settings import LedgerSettings

SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
SASL_MECHANISMS = frozenset(
    {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"}
)
_NEEDS_PASSWORD = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KafkaConnection:
    """Where the cluster is and how to authenticate to it: shared by every client."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = field(default=None, repr=False)
    client_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.servers():
            raise ConfigurationError("kafka_bootstrap_servers is empty")
        protocol = self.security_protocol.upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise ConfigurationError(
                f"kafka_security_protocol {self.security_protocol!r} is not one of "
                f"{', '.join(sorted(SECURITY_PROTOCOLS))}"
            )
        if self.sasl_mechanism is not None:
            mechanism = self.sasl_mechanism.upper()
            if mechanism not in SASL_MECHANISMS:
                raise ConfigurationError(
                    f"kafka_sasl_mechanism {self.sasl_mechanism!r} is not one of "
                    f"{', '.join(sorted(SASL_MECHANISMS))}"
                )
            if not protocol.startswith("SASL_"):
                raise ConfigurationError(
                    "kafka_sasl_mechanism is set but kafka_security_protocol is "
                    f"{protocol}; use SASL_SSL (or SASL_PLAINTEXT on a trusted network)"
                )
            if mechanism in _NEEDS_PASSWORD and not (self.sasl_username and self.sasl_password):
                raise ConfigurationError(
                    f"SASL {mechanism} needs kafka_sasl_username and kafka_sasl_password"
                )
        elif protocol.startswith("SASL_"):
            raise ConfigurationError(
                f"kafka_security_protocol {protocol} needs kafka_sasl_mechanism"
            )
        unknown = set(self.client_options) - (
            set(KafkaConsumer.DEFAULT_CONFIG)
            | set(KafkaProducer.DEFAULT_CONFIG)
            | set(KafkaAdminClient.DEFAULT_CONFIG)
        )
        if unknown:
            raise ConfigurationError(
                f"kafka_client_options: not kafka-python settings: {', '.join(sorted(unknown))}"
            )

    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def common_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.servers(),
            "security_protocol": self.security_protocol.upper(),
        }
        optional = {
            "sasl_mechanism": self.sasl_mechanism.upper() if self.sasl_mechanism else None,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": self.sasl_password,
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_password": self.ssl_password,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return kwargs

    def for_client(self, defaults: Mapping[str, Any], **specific: Any) -> dict[str, Any]:
        """Common settings, then ``specific``, then the pass-through options this client knows."""
        kwargs = self.common_kwargs()
        kwargs.update(specific)
        kwargs.update({k: v for k, v in self.client_options.items() if k in defaults})
        return kwargs

    def consumer_kwargs(self, **specific: Any) -> dict[str, Any]:
        return self.for_client(KafkaConsumer.DEFAULT_CONFIG, **specific)

    def producer_kwargs(self, **specific: Any) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            # acks=all + idempotence: a dead letter or re-submission is confirmed only once
            # every in-sync replica has it. gzip is the one codec kafka-python needs no
            # extra package for, and it is faster than none (fewer bytes to frame).
            "acks": "all",
            "linger_ms": 5,
            "compression_type": "gzip",
        }
        defaults.update(specific)
        return self.for_client(KafkaProducer.DEFAULT_CONFIG, **defaults)

    def admin_kwargs(self, **specific: Any) -> dict[str, Any]:
        return self.for_client(KafkaAdminClient.DEFAULT_CONFIG, **specific)

    @classmethod
    def from_settings(cls, settings: LedgerSettings) -> KafkaConnection:
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password,
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
            ssl_password=settings.kafka_ssl_password,
            client_options=dict(settings.kafka_client_options),
        )


def warn_if_checksums_are_slow() -> None:
    """kafka-python without the ``crc32c`` package checks CRCs in pure Python (3-5x slower)."""
    from kafka.record import util

    if getattr(util, "crc32c_c", None) is None:
        log.warning(
            "the crc32c package is not installed: kafka-python verifies every record batch "
            "in pure Python, which makes consuming 3-5x slower (pip install crc32c)"
        )


def default_client_id(role: str) -> str:
    return f"ledger-{role}-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class IngestConfig:
    """What ``ledger consume`` needs: the cluster, the topics, the group and the batch bounds."""

    connection: KafkaConnection
    topics: tuple[str, ...]
    group_id: str
    deadletter_topic: str
    max_poll_records: int = 500
    poll_timeout_ms: int = 50
    fetch_max_wait_ms: int = 50
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    deadletter_timeout_s: float = 30.0
    #: Run each batch's transaction on a worker thread while the next batch is validated
    #: (``consumers.kafka.pipeline``); off, every batch is settled before the next poll.
    overlap_appends: bool = True

    def __post_init__(self) -> None:
        if not self.topics:
            raise ConfigurationError("no Kafka topics to consume (kafka_topics is empty)")
        if self.deadletter_topic in self.topics:
            raise ConfigurationError(
                f"the dead-letter topic {self.deadletter_topic!r} is also a source topic: "
                "a refused message would be consumed again forever"
            )
        if not self.group_id:
            raise ConfigurationError("kafka_group_id is empty")
        if self.max_poll_records < 1 or self.poll_timeout_ms < 0:
            raise ConfigurationError("max_poll_records must be >= 1 and poll_timeout_ms >= 0")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConfigurationError(
                "kafka_heartbeat_interval_ms must be below kafka_session_timeout_ms"
            )

    def consumer_kwargs(self) -> dict[str, Any]:
        return self.connection.consumer_kwargs(
            client_id=default_client_id("consume"),
            group_id=self.group_id,
            # PostgreSQL holds the truth about positions; the Kafka commit is a convenience
            # for tooling, made only after the PostgreSQL transaction committed.
            enable_auto_commit=False,
            # Only used for partitions with no stored position: nothing may be skipped.
            auto_offset_reset="earliest",
            max_poll_records=self.max_poll_records,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            # Records of aborted producer transactions are never facts.
            isolation_level="read_committed",
            # Topics are created by whoever owns the cluster, never by a consumer typo.
            allow_auto_create_topics=False,
            # Connecting blocks this long per attempt; shorter keeps SIGTERM prompt while the
            # brokers are unreachable (the attempt is retried, and logged, until they are back).
            bootstrap_timeout_ms=10_000,
        )

    def producer_kwargs(self) -> dict[str, Any]:
        return self.connection.producer_kwargs(
            client_id=default_client_id("deadletter"),
            # A send blocks this long at most for metadata (e.g. the topic is missing), so a
            # stuck dead-letter produce is reported and retried rather than hanging.
            max_block_ms=10_000,
        )

    @classmethod
    def from_settings(cls, settings: LedgerSettings, **overrides: Any) -> IngestConfig:
        values: dict[str, Any] = {
            "connection": KafkaConnection.from_settings(settings),
            "topics": tuple(settings.kafka_topics),
            "group_id": settings.kafka_group_id,
            "deadletter_topic": settings.kafka_deadletter_topic,
            "max_poll_records": settings.kafka_max_poll_records,
            "poll_timeout_ms": settings.kafka_poll_timeout_ms,
            "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
            "session_timeout_ms": settings.kafka_session_timeout_ms,
            "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
