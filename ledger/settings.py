"""Typed settings, read from ``LEDGER_*`` environment variables (or a ``.env`` file).

Built once in the composition root (``ledger_cli``) and passed down: nothing in the
packages reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr
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
    append_batch_size: int = Field(
        default=2000, ge=1, le=10_000,
        description="Events per transaction for file imports (`ledger import`, `import-hl7`):"
        " a backlog wants few commits (bench/append.py: ratio to COPY 0.25 at 500, 0.35 at"
        " 2,000). The Kafka consumer's batch is LEDGER_KAFKA_MAX_POLL_RECORDS (500: latency).",
    )
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

    # Auditor query API (``ledger serve``, projections/api).
    api_host: str = Field(default="127.0.0.1", description="Address ``ledger serve`` binds")
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_pool_size: int = Field(default=4, ge=1, le=64, description="API connection pool size")
    api_statement_timeout_ms: int = Field(
        default=5_000, ge=100, description="Server-side limit on any one API query"
    )
    api_pseudonym_key: SecretStr | None = Field(
        default=None,
        description="HMAC key (at least 32 characters) for pseudonymous patient tokens. Unset: "
        "a random key is generated once into data_dir/api-pseudonym.key and reused.",
    )
    api_key_cache_seconds: float = Field(
        default=10.0, ge=0, le=300,
        description="How long a verified API key is trusted without asking the database "
        "(revocation takes effect within this time)",
    )
    api_audit_sealer: bool = Field(
        default=True, description="Seal access records into the ledger from the API process"
    )
    api_audit_seal_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    api_ready_max_lag_seconds: float = Field(
        default=60.0, ge=0, description="Projection lag above which /v1/ready says degraded"
    )

    # Operations (issue 12): logs, metrics, PostgreSQL TLS. See docs/operations.md.
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: human-readable lines; json: one JSON object per line with fixed "
        "fields (docs/operations.md) and no PHI at INFO and above",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535,
        description="Port of the Prometheus /metrics endpoint of long-running processes "
        "(consume, project, mllp, publish-docs); 0 disables it. `serve` exposes /metrics on "
        "the API port instead.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the /metrics endpoint binds (0.0.0.0 in containers)",
    )
    metrics_db_interval_seconds: float = Field(
        default=5.0, ge=0, le=300,
        description="Minimum time between two reads of projection_status and discrepancy "
        "counts for /metrics (scrapes in between get the cached values)",
    )
    metrics_pushgateway_url: str | None = Field(
        default=None,
        description="Prometheus Pushgateway URL; `ledger verify` pushes its result there "
        "(for verify runs as a CronJob, which cannot be scraped)",
    )
    verify_result_file: Path | None = Field(
        default=None,
        description="Where `ledger verify` records its last result for /metrics of the other "
        "processes (default: data_dir/verify-last.json)",
    )
    database_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = Field(
        default=None,
        description="libpq sslmode for every PostgreSQL connection; verify-full in production",
    )
    database_sslrootcert: Path | None = Field(
        default=None,
        description="CA certificate(s) that signed the PostgreSQL server's certificate",
    )
    database_sslcert: Path | None = Field(
        default=None, description="Client certificate, when the server requires one"
    )
    database_sslkey: Path | None = Field(default=None, description="Client certificate's key")

    # HL7 v2 IHE PCD edge (consumers/hl7, ``ledger import-hl7`` / ``ledger mllp``; docs/hl7.md).
    hl7_kafka_topic: str = Field(
        default="infusion.hl7.raw.v1",
        description="Topic the MLLP listener publishes raw HL7 to; ``ledger consume`` "
        "translates it when it is among the consumed topics",
    )
    hl7_profile_oids: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Extra MSH-21 profile OIDs per transaction (JSON), added to the built-in '
        'allow-list, e.g. {"PCD-01": ["1.2.3.4"]}; transactions PCD-01, PCD-03, PCD-04, PCD-10',
    )
    hl7_require_profile_oid: bool = Field(
        default=False, description="Refuse messages whose MSH-21 names no allow-listed OID"
    )
    hl7_local_timezone: str | None = Field(
        default=None,
        description="IANA zone for HL7 timestamps sent without a UTC offset. Unset: MSH-7's "
        "offset is used, and a message whose MSH-7 has none is dead-lettered",
    )
    hl7_facility_id: str | None = Field(
        default=None, description="subject.facility_id stamped on translated events"
    )
    hl7_default_channel: str = Field(
        default="1", description="Channel for a PCD-03 program whose pump id names none"
    )
    hl7_pcd01_derive_transitions: bool = Field(
        default=False,
        description="Derive started/paused/rate_changed... from successive PCD-01 snapshots "
        "(only for sites without an IPEC PCD-10 feed)",
    )
    hl7_mllp_host: str = Field(default="127.0.0.1", description="Address ``ledger mllp`` binds")
    hl7_mllp_port: int = Field(default=2575, ge=0, le=65535)
    hl7_mllp_sink: str = Field(
        default="kafka",
        description="``kafka``: publish raw messages to hl7_kafka_topic; ``ledger``: translate "
        "and append in the listener",
    )
    hl7_mllp_max_message_bytes: int = Field(default=1_048_576, ge=1024)
    hl7_mllp_tls_certfile: str | None = Field(default=None, description="PEM cert: enables TLS")
    hl7_mllp_tls_keyfile: str | None = None
    hl7_mllp_tls_cafile: str | None = Field(
        default=None, description="CA bundle: when set, clients must present a certificate"
    )

    # EHR documentation feed (``ledger publish-docs``, ``ledger docs-gaps``; issue 9).
    docs_publish_target: Literal["http", "kafka"] = Field(
        default="http",
        description="Where ``ledger publish-docs`` sends the documentation outbox: a FHIR "
        "R4 server (docs_fhir_base_url) or the Kafka topic docs_kafka_topic",
    )
    docs_fhir_base_url: str | None = Field(
        default=None, description="FHIR R4 base URL, e.g. https://ehr.example.org/fhir"
    )
    docs_fhir_auth_token: SecretStr | None = Field(
        default=None, description="Bearer token sent to the FHIR server (unset: none)"
    )
    docs_fhir_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    docs_kafka_topic: str = "infusion.documentation.v1"
    docs_publish_batch_size: int = Field(default=100, ge=1, le=10_000)
    docs_publish_retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest back-off between retries of one delivery"
    )
    docs_gap_grace_minutes: int = Field(
        default=60, ge=0, description="R20/R21: minutes a start or rate change may stay "
        "unvalidated before ``ledger docs-gaps`` lists it"
    )
    docs_ack_grace_minutes: int = Field(
        default=15, ge=0, description="Minutes an enqueued entry may stay unacknowledged"
    )
    # Discrepancy engine (``ledger project``) and its S1 pages (``ledger publish-findings``;
    # issue 7, docs/discrepancies.md).
    discrepancy_ruleset: Path | None = Field(
        default=None,
        description="A site's own validated rule-set file (JSON, the shape of "
        "projections/discrepancies/rulesets/default.json) for the discrepancy engine. "
        "Unset: the shipped defaults. `ledger project --rules FILE` overrides it",
    )
    findings_publish_target: Literal["webhook", "kafka", "both"] = Field(
        default="webhook",
        description="Where ``ledger publish-findings`` pages S1 findings: the webhook "
        "(findings_webhook_url), the Kafka topic findings_kafka_topic, or both",
    )
    findings_webhook_url: str | None = Field(
        default=None, description="URL each S1 page is POSTed to (JSON, Idempotency-Key: "
        "the finding id), e.g. https://paging.example.org/hooks/ledger",
    )
    findings_webhook_auth_token: SecretStr | None = Field(
        default=None, description="Bearer token sent to the webhook (unset: none)"
    )
    findings_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    findings_kafka_topic: str = "infusion.discrepancies.v1"
    findings_publish_interval_seconds: float = Field(
        default=1.0, gt=0, le=300,
        description="How often an idle publish-findings looks for new pages (the projection "
        "also notifies it at commit, so this bounds the delay only if a notification is lost)",
    )
    findings_publish_batch_size: int = Field(default=100, ge=1, le=10_000)
    findings_publish_retry_max_seconds: float = Field(
        default=30.0, gt=0, description="Longest back-off between retries of one page"
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Apply migrations and create read-model tables when a command starts. "
        "Set false where processes run as the least-privilege role ledger_app and a "
        "separate `ledger migrate` job (as the owner) prepares the schema.",
    )
    checkpoint_every_seconds: float = Field(
        default=60, ge=1, description="`ledger project` anchors a checkpoint at least this often "
        "(when new events exist), and whenever checkpoint_interval events accumulated",
    )
