"""The machine-readable wire contract: JSON Schema of every event a producer may send.

Generated from the pydantic models and checked in as ``docs/events.schema.json``; a unit
test fails when the file drifts from the models. Regenerate with::

    python -m ledger.contract.schema > docs/events.schema.json

Internal types are left out: producers may not send them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ledger.contract.union import PUBLIC_EVENT_ADAPTER

SCHEMA_ID = "https://infusion-ledger.example/schemas/events.v1.json"
REGENERATE = "python -m ledger.contract.schema > docs/events.schema.json"


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one v1 event, as producers should send it."""
    body = PUBLIC_EVENT_ADAPTER.json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Infusion ledger event, wire contract v1",
        "description": (
            "One JSON object per Kafka message or NDJSON line. Decimals are strings "
            "(JSON numbers are accepted and read exactly as written), units are UCUM codes "
            "and each field accepts only its dimension, timestamps are RFC 3339 with an "
            "offset, unknown fields are rejected. Generated from ledger.contract; "
            "the prose version is EVENTS.md."
        ),
        **body,
    }


def render_schema() -> str:
    """The exact text of ``docs/events.schema.json``."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render_schema())


if __name__ == "__main__":
    main()
