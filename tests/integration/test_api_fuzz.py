"""Schemathesis against the checked-in OpenAPI document, over real HTTP and PostgreSQL.

Every operation gets a bounded number of generated requests with a valid key for a role
it allows, through a real uvicorn server (the app's lifespan, pool and audit included).
Checks: no server errors, status codes / content types / bodies / headers as documented,
schema-invalid requests rejected, missing auth rejected. ``positive_data_acceptance`` is
left out on purpose: cross-field rules OpenAPI cannot state (``to`` after ``from``, a
period of at most 400 days, a cursor this API issued, a token it handed out) rightly
refuse some schema-valid requests with 422/404.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from projections.api import create_app
from projections.api.keys import Role
from tests.integration import test_api_fixtures as fixtures
from tests.integration.test_api_fixtures import World

pytestmark = pytest.mark.integration
world = fixtures.world  # the shared module-scoped fixture

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
# CI runs the examples and fuzzing phases, derandomised, in well under a minute.
# LEDGER_API_FUZZ_DEEP=1 adds the coverage phase (every boundary of every parameter, about
# 1,500 requests) and random seeds: a developer's deeper run, a few minutes.
DEEP = os.environ.get("LEDGER_API_FUZZ_DEEP") == "1"
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": DEEP}}})
schema = schemathesis.openapi.from_path(str(SCHEMA_PATH), config=CONFIG)
EXAMPLES = 100 if DEEP else 20


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(world.settings(api_key_cache_seconds=30), world.database)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def auth_for(world: World, operation: dict[str, Any]) -> dict[str, str]:
    roles = operation.get("x-roles")
    if not roles:
        return {}
    # The identified role reaches the most; break-glass is the auditor's alone.
    role = Role.SAFETY_OFFICER if "safety_officer" in roles else Role(roles[0])
    return world.auth(role)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=not DEEP,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_the_api_honours_its_openapi_document(case: Any, world: World, base_url: str) -> None:
    case.call_and_validate(
        base_url=base_url,
        headers=auth_for(world, case.operation.definition.raw),
        excluded_checks=[positive_data_acceptance],
    )
