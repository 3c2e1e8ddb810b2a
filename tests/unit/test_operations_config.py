"""``ledger config --show`` masking, per-process setup, and the JSON log policy."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.settings import LedgerSettings
from ledger_cli import cmd_config
from ledger_cli.main import main
from observability.logs import JsonFormatter, configure_logging, mask_secrets


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    import os

    for key in [k for k in os.environ if k.startswith(("LEDGER_", "PGSSL"))]:
        monkeypatch.delenv(key)
    for key in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"):
        # configure_process writes these into os.environ; registering them with monkeypatch
        # (set, then removed) makes it restore their absence afterwards, so no later test
        # inherits verify-full TLS.
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    return monkeypatch


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# -- ledger config --show ----------------------------------------------------------------


def test_config_show_masks_every_secret_and_names_where_each_value_came_from(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None,
) -> None:
    clean_env.setenv("LEDGER_DATABASE_URL", "postgresql://ledger:hunter2@db:5432/ledger")
    clean_env.setenv("LEDGER_KAFKA_SASL_PASSWORD", "kafka-secret")
    clean_env.setenv("LEDGER_API_PSEUDONYM_KEY", "p" * 40)
    clean_env.setenv("LEDGER_KAFKA_CLIENT_OPTIONS",
                     '{"client_id": "ledger-1", "sasl_oauth_token_provider": "tok-9f3a"}')
    clean_env.setenv("LEDGER_METRICS_PUSHGATEWAY_URL", "https://ops:gw-pass@gw:9091")
    clean_env.setenv("LEDGER_CHECKPOINT_SIGNING_KEY", "/keys/signing.pem")

    assert main(["config", "--show"]) == 0
    out, err = capsys.readouterr()
    for secret in ("hunter2", "kafka-secret", "p" * 40, "tok-9f3a", "gw-pass"):
        assert secret not in out and secret not in err
    shown = json.loads(out.strip().splitlines()[-1])
    settings, sources = shown["settings"], shown["sources"]
    assert settings["database_url"] == "postgresql://ledger:***@db:5432/ledger"
    assert settings["kafka_sasl_password"] == "***"
    assert settings["kafka_ssl_password"] is None  # unset secrets stay visibly unset
    assert settings["api_pseudonym_key"] == "***"
    assert settings["kafka_client_options"] == {"client_id": "ledger-1",
                                                "sasl_oauth_token_provider": "***"}
    assert settings["checkpoint_signing_key"] == "/keys/signing.pem"  # a path, not a key
    assert sources["database_url"] == "environment" and sources["pool_size"] == "default"
    assert set(settings) == set(LedgerSettings.model_fields)


def test_config_in_env_format_prints_one_masked_line_per_setting(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None,
) -> None:
    clean_env.setenv("LEDGER_KAFKA_SSL_PASSWORD", "very-secret")
    assert main(["config", "--format", "env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(LedgerSettings.model_fields)
    assert "LEDGER_KAFKA_SSL_PASSWORD=***" in lines
    assert "LEDGER_METRICS_PORT=0" in lines


def test_postgres_tls_settings_reach_libpq_through_its_environment(
    clean_env: pytest.MonkeyPatch, restore_logging: None, tmp_path: Path
) -> None:
    import os

    settings = LedgerSettings(database_sslmode="verify-full",
                              database_sslrootcert=tmp_path / "ca.crt")
    cmd_config.configure_process(settings, command="consume")
    assert os.environ["PGSSLMODE"] == "verify-full"
    assert os.environ["PGSSLROOTCERT"] == str(tmp_path / "ca.crt")
    assert "PGSSLCERT" not in os.environ


# -- JSON logs ---------------------------------------------------------------------------


def test_json_logs_carry_the_fixed_fields_and_the_consumers_batch_context(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    configure_logging("json", process="consume", stream=stream)
    logging.getLogger("consumers.kafka.consumer").info(
        "batch records=%d", 500,
        extra={"event": "batch", "records": 500, "ingested": 498, "duplicates": 2,
               "partition": 3, "positions": {"infusion.events.v1:3": 1200}, "ms": 41.5},
    )
    (line,) = json_lines(stream)
    assert {"ts", "level", "logger", "message", "process", "pid", "host"} <= line.keys()
    assert line["process"] == "consume" and line["level"] == "INFO"
    assert str(line["ts"]).endswith("Z")
    assert line["message"] == "batch records=500"
    assert line["partition"] == 3 and line["records"] == 500
    assert line["positions"] == {"infusion.events.v1:3": 1200}


def test_patient_identifiers_in_log_context_never_reach_the_log(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", process="project", stream=stream, level=logging.DEBUG)
    log = logging.getLogger("projections")
    log.info("fold", extra={"patient_id": "MRN-4711", "projection": "infusions",
                            "favourite_colour": "MRN-4712"})
    log.debug("fold", extra={"patient_id": "MRN-4713", "favourite_colour": "blue"})
    info, debug = json_lines(stream)
    assert "MRN-4711" not in json.dumps(info) and "MRN-4712" not in json.dumps(info)
    assert info["projection"] == "infusions"
    # DEBUG keeps unknown context for troubleshooting, but never a known PHI key.
    assert debug["favourite_colour"] == "blue" and "patient_id" not in debug


def test_an_exception_logs_its_type_first_line_and_frames_but_not_row_values(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    configure_logging("json", process="consume", stream=stream)
    try:
        raise ValueError('duplicate key value\nDETAIL:  Key (patient_id)=(MRN-4711) exists.')
    except ValueError:
        logging.getLogger("x").exception("append failed")
    (line,) = json_lines(stream)
    assert line["error_type"] == "ValueError" and line["error"] == "duplicate key value"
    assert "MRN-4711" not in json.dumps(line)
    assert any("test_operations_config.py" in frame for frame in line["stack"])  # type: ignore[union-attr]


def test_passwords_are_masked_in_json_and_text_logs(restore_logging: None) -> None:
    url = "postgresql://ledger:hunter2@db:5432/ledger"
    assert mask_secrets(f"connect {url}") == "connect postgresql://ledger:***@db:5432/ledger"
    assert mask_secrets("sasl password=abc123 user=x") == "sasl password=*** user=x"
    for log_format in ("json", "text"):
        stream = io.StringIO()
        configure_logging(log_format, stream=stream)  # type: ignore[arg-type]
        logging.getLogger("x").warning("cannot reach %s", url)
        assert "hunter2" not in stream.getvalue()
        assert "ledger:***@db" in stream.getvalue()


def test_the_json_formatter_names_the_process_it_runs_in() -> None:
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "hello", (), None)
    assert json.loads(JsonFormatter("serve").format(record))["process"] == "serve"


def test_a_process_exports_its_own_stats_as_counters_and_positions_as_gauges() -> None:
    from prometheus_client.exposition import generate_latest

    from observability import CountersCollector, build_registry

    stats = {"sent": 3, "acknowledged": 2, "position": 40, "target": "http", "done": True}
    registry = build_registry("publish-docs", extra=(
        CountersCollector("ledger_docs", lambda: stats),))
    stats["sent"] = 5  # read at scrape time, not copied at registration
    lines = generate_latest(registry).decode().splitlines()
    assert "ledger_docs_sent_total 5.0" in lines
    assert "ledger_docs_acknowledged_total 2.0" in lines
    assert "ledger_docs_position 40.0" in lines
    assert not [line for line in lines if "target" in line or "done" in line]
    assert 'ledger_process_info{process="publish-docs",' in "\n".join(lines)
