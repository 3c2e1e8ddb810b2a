"""The replay's JSON writer is the standard library's indented, key-sorted JSON, byte for byte."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from projections.replay.jsontext import dumps
from projections.replay.render import _default


def standard(document: Any) -> str:
    return json.dumps(document, sort_keys=True, indent=1, default=_default, ensure_ascii=False)


SHARED = {"value": "14.4", "unit": "mL/h"}
CASES: list[Any] = [
    {},
    [],
    {"b": 1, "a": [1, 2.5, -0.0, 1e300, True, False, None], "c": {}},
    {"text": "héparine \u2028 \"quoted\" \\ back\nslash \x00 \U0001F489", "k\u00e9y": "é"},
    {"nested": [[[], {}], [{"z": None, "a": ()}]], "tuple": (1, "two", (3,))},
    {"when": datetime(2026, 3, 14, 2, 14, tzinfo=UTC), "dose": Decimal("0.10"),
     "other": object.__new__(type("Opaque", (), {"__str__": lambda self: "opaque"}))},
    {3: "int key", 2.5: "float key", False: "bool key"},
    {None: "null key"},
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
    # One object reached at several depths, and several times at one depth (the memo).
    {"timeline": [{"state": {"channels": {"A": SHARED}, "rate": SHARED}} for _ in range(3)],
     "rate": SHARED, "deep": [[[[SHARED, SHARED]]]]},
]


@pytest.mark.parametrize("document", CASES)
def test_the_output_is_the_standard_librarys(document: Any) -> None:
    assert dumps(document, _default) == standard(document)


def test_a_key_json_cannot_write_is_refused_like_the_standard_library() -> None:
    with pytest.raises(TypeError):
        standard({(1, 2): "tuple key"})
    with pytest.raises(TypeError):
        dumps({(1, 2): "tuple key"}, _default)
