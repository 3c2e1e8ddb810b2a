"""The OpenAPI document is checked in and stays in step with the app; the CLI serves it.

Regenerate after an intended change with
``python -m tests.integration.test_api_openapi > docs/openapi.json``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from ledger.settings import LedgerSettings
from ledger.store.database import ConnectionParams
from projections.api import create_app
from tests.support.cli import ledger
from tests.support.events import VALID_EVENTS

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@lru_cache(maxsize=1)
def current_document() -> dict[str, Any]:
    # No database is touched: the app connects only in its lifespan.
    settings = LedgerSettings(database_url="postgresql://docs@127.0.0.1:5432/docs",
                              api_pseudonym_key=SecretStr("d" * 32))
    return create_app(settings).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_the_checked_in_openapi_document_matches_the_app() -> None:
    assert CHECKED_IN.read_text() == render(current_document()), (
        "docs/openapi.json is stale: regenerate it (see this module's docstring)")


def test_the_document_is_openapi_3_1_with_bearer_auth_and_roles_on_every_protected_route(
) -> None:
    document = current_document()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in ("/v1/health", "/v1/ready"):
                assert "security" not in operation
                continue
            assert operation["security"] == [{"bearer": []}], (method, path)
            assert operation["x-roles"] and "producer" not in operation["x-roles"]
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_decimals_are_strings_with_a_pattern_in_the_schema() -> None:
    schemas = current_document()["components"]["schemas"]
    value = schemas["Quantity"]["properties"]["value"]
    assert value["type"] == "string" and value["pattern"] == r"^-?[0-9]+(\.[0-9]+)?$"


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_api_key_create_prints_the_key_alone_on_its_last_line_and_serve_answers(
    database: ConnectionParams, workers: int
) -> None:
    assert ledger("import", str(VALID_EVENTS), database=database).code == 0
    assert ledger("project", "--once", database=database).code == 0
    created = ledger("api-key", "create", "--role", "auditor", "--label", "cli test",
                     database=database)
    assert created.code == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ilk_") and len(token) == 64
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    environment.update(LEDGER_DATABASE_URL=database.url(), LEDGER_API_PSEUDONYM_KEY="p" * 32)
    server = subprocess.Popen(
        [sys.executable, "-m", "ledger_cli.main", "serve", "--port", str(port),
         "--workers", str(workers)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "ledger serve did not come up"
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2 * workers):  # with two workers, most likely both answer
            assert httpx.get(f"{base}/v1/infusions", headers=headers).status_code == 200
        assert httpx.get(f"{base}/v1/infusions").status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0, server.stderr.read() if server.stderr else ""
    listed = ledger("api-key", "list", database=database)
    assert [k["label"] for k in listed.summary] == ["cli test"]
    # The sealer process (one, whatever the workers) sealed every access record by exit.
    with psycopg.connect(database.conninfo) as conn:
        logged = conn.execute("SELECT id FROM api_access_log").fetchall()
        sealed = conn.execute("SELECT unnest(record_ids) FROM api_access_seals").fetchall()
        anchors = conn.execute(
            "SELECT count(*) FROM api_access_seals s JOIN ledger_events e"
            " ON e.event_id = s.event_id AND e.topic = 'access.sealed'").fetchone()
        seals = conn.execute("SELECT count(*) FROM api_access_seals").fetchone()
    assert len(logged) == 2 * workers and sorted(logged) == sorted(sealed)
    assert anchors == seals and seals is not None and seals[0] >= 1


if __name__ == "__main__":
    sys.stdout.write(render(current_document()))
