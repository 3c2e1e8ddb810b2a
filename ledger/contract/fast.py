"""The append path's validator: the contract checked natively, straight to the stored bytes.

Every event from Kafka is validated once and stored as its canonical JSON (``wire_json``).
Through the contract's models that costs building ~10 frozen model instances and then
dumping them again, with a call back into Python for every timestamp, decimal and unit —
about 18 µs of the consumer's ~60 µs per event on this project's 2-core benchmark machine.

:func:`parse_for_store` first validates the message with a copy of the contract's own core
schema in which every model is a typed dict (same fields, same ``extra="forbid"``, same
string, literal, UUID and datetime checks, same defaults filled in) and every Python check
is a native one accepting a *subset* of what the Python check accepts:

* a timestamp: a JSON string matching RFC 3339 with an offset (ASCII digits only), then the
  same datetime validator — the same datetime;
* a decimal: a JSON string of at most 12 characters matching the contract's literal pattern
  (so at most 12 significant digits), kept as that string, which is exactly the text the
  stored form gives the Decimal it denotes ("14.40" stays "14.40");
* a unit: one of the field's canonical UCUM codes (an alias such as ``mEq/h`` is not);
* ``schema_version``: the JSON integer 1; an optional field: absent, not ``null``.

Event types whose models carry model-level validators (cross-field rules) and the
ledger's internal types are not in the subset at all. The result — a plain dict of
JSON-ready values and datetimes, every dict's keys in sorted order because every typed dict
lists its fields in name order — becomes the stored bytes with one ``orjson.dumps``.
Anything outside the subset (a JSON number as a quantity, an alias unit, an explicit
``null``, an escape sequence, any error) goes through :func:`ledger.contract.parse_event`,
the exact path, which also explains every error in contract terms. A unit test holds the
two paths to the same bytes, the same ids and clocks, and the same errors, on every
fixture and on generated events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator, core_schema

from ledger.contract.canonical import wire_json
from ledger.contract.common import _rfc3339
from ledger.contract.decimals import DECIMAL_PATTERN, MAX_SIGNIFICANT_DIGITS, parse_decimal
from ledger.contract.envelope import _version_one
from ledger.contract.quantities import UnitOf
from ledger.contract.union import EVENT_ADAPTER, INTERNAL_TYPES, parse_event

_TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
# A literal of at most 12 characters has at most 12 digits, so at most 12 significant ones;
# a longer literal that is still valid (say "0.0000000001") takes the exact path.
_DECIMAL = core_schema.str_schema(
    strict=True, pattern=DECIMAL_PATTERN, max_length=MAX_SIGNIFICANT_DIGITS
)
_VERSION_ONE = core_schema.chain_schema(
    [core_schema.int_schema(strict=True), core_schema.literal_schema([1])]
)
# What an event type outside the subset is validated with: nothing matches, so the exact
# path takes it (and reports its errors).
_NEVER = core_schema.literal_schema(["ledger.contract.fast: the exact path only"])
_KEPT = frozenset({"str", "literal", "uuid", "bool", "int"})
_MODEL_CONFIG = frozenset({"extra_fields_behavior", "title"})
_OPAQUE = ("cls", "metadata", "serialization")  # not schema: copied as they are
_MODEL_FIELDS_KEYS = frozenset({"type", "fields", "model_name", "computed_fields"})


class _OutsideSubset(Exception):
    """A schema node this module has no native equivalent for."""


def _function(node: dict[str, Any]) -> Any:
    function = node.get("function")
    return function.get("function") if isinstance(function, dict) else None


def _replace_function(node: dict[str, Any]) -> core_schema.CoreSchema:
    kind, function = node["type"], _function(node)
    if kind == "function-before" and function is _rfc3339:
        timestamp = core_schema.str_schema(strict=True, pattern=_TIMESTAMP_PATTERN)
        return core_schema.chain_schema([timestamp, _native(node["schema"])])
    if kind == "function-before" and function is _version_one:
        return _VERSION_ONE
    if kind == "function-before" and getattr(function, "__qualname__", "").startswith(
        "null_means."
    ):
        return _native(node["schema"])  # a null takes the exact path, which fills the default
    if kind == "function-plain" and function is parse_decimal:
        return _DECIMAL
    owner = getattr(function, "__self__", None)
    if kind == "function-plain" and isinstance(owner, UnitOf):
        return core_schema.literal_schema(
            [code for code, canonical in owner.codes.items() if code == canonical]
        )
    raise _OutsideSubset(f"{kind} {getattr(function, '__qualname__', function)}")


def _typed_dict(node: dict[str, Any]) -> core_schema.CoreSchema:
    fields_schema = node["schema"]
    if fields_schema.get("type") != "model-fields" or fields_schema.get("computed_fields"):
        raise _OutsideSubset("a model with validators or computed fields")
    if set(fields_schema) - _MODEL_FIELDS_KEYS:
        raise _OutsideSubset(f"model fields with {sorted(fields_schema)}")
    if (set(node.get("config", {})) - _MODEL_CONFIG or node.get("custom_init")
            or node.get("root_model")):
        raise _OutsideSubset(f"model config {node.get('config')}")
    fields: dict[str, core_schema.TypedDictField] = {}
    # In name order: pydantic-core builds a typed dict's output in its schema's field order,
    # so every dict comes out with its keys sorted, as the stored form has them, and the
    # stored bytes need no sorting pass (see Validated).
    for name, field in sorted(fields_schema["fields"].items()):
        if set(field) - {"type", "schema", "metadata"}:
            raise _OutsideSubset(f"field {name} has {sorted(field)}")  # aliases and the like
        schema = field["schema"]
        if schema.get("type") != "default":
            fields[name] = core_schema.typed_dict_field(_native(schema), required=True)
            continue
        inner, default = schema["schema"], schema["default"]
        if default is None:
            # Absent stays absent (the stored form leaves out what is None).
            if inner.get("type") == "nullable":
                inner = inner["schema"]
            fields[name] = core_schema.typed_dict_field(_native(inner), required=False)
        else:
            # A contract default is spelled out in the stored form, as the model does.
            with_default = core_schema.with_default_schema(_native(inner), default=default)
            fields[name] = core_schema.typed_dict_field(with_default, required=False)
    return core_schema.typed_dict_schema(
        fields, extra_behavior=node.get("config", {}).get("extra_fields_behavior")
    )


def _native(node: dict[str, Any]) -> core_schema.CoreSchema:
    kind = node.get("type")
    if kind == "model":
        return _typed_dict(node)
    if "function" in node:
        return _replace_function(node)
    if kind in _KEPT:
        return node  # type: ignore[return-value]
    if kind == "datetime":
        return {k: v for k, v in node.items() if k != "serialization"}  # type: ignore[return-value]
    if kind == "tuple":
        return {**node, "items_schema": [_native(s) for s in node["items_schema"]]}  # type: ignore[return-value]
    raise _OutsideSubset(str(kind))


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every definition reference replaced by the definition itself."""
    if isinstance(node, dict):
        if node.get("type") == "definition-ref":
            return _inline(definitions[node["schema_ref"]], definitions)
        return {
            key: value if key in _OPAQUE else _inline(value, definitions)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def _subset_validator() -> tuple[SchemaValidator, frozenset[str]]:
    root: Any = EVENT_ADAPTER.core_schema
    definitions = {d["ref"]: d for d in root.get("definitions", [])}
    union = _inline(root["schema"] if root["type"] == "definitions" else root, definitions)
    if union.get("type") != "tagged-union":
        raise _OutsideSubset("the event union is not discriminated by type")
    choices: dict[Any, core_schema.CoreSchema] = {}
    covered = set()
    for kind, schema in union["choices"].items():
        if kind in INTERNAL_TYPES:
            choices[kind] = _NEVER  # refused from producers by the exact path
            continue
        try:
            choices[kind] = _native(schema)
            covered.add(str(kind))
        except _OutsideSubset:
            choices[kind] = _NEVER
    return SchemaValidator({**union, "choices": choices}), frozenset(covered)  # type: ignore[arg-type]


_VALIDATOR, FAST_TYPES = _subset_validator()


class SubjectIds(NamedTuple):
    """The subject ids the store keys streams by (``ledger.store.streams.stream_key``)."""

    facility_id: str | None
    patient_id: str | None
    order_id: str | None
    pump_id: str | None
    channel: str | None


class Validated:
    """An event validated on the fast path: its stored bytes and the fields the store reads.

    ``model()`` gives the contract model (validated again, the exact way) for the rare uses
    that need one, such as telling a duplicate from a conflict.
    """

    __slots__ = (
        "_model",
        "event_id",
        "occurred_at",
        "raw",
        "received_at",
        "subject",
        "type",
        "wire",
    )

    def __init__(self, raw: bytes | str, document: dict[str, Any]):
        self.raw = raw
        # The keys are in sorted order already (see _typed_dict): canonical JSON as it is.
        self.wire: bytes = orjson.dumps(document)
        self.event_id: UUID = document["event_id"]
        self.type: str = document["type"]
        self.occurred_at: datetime = document["occurred_at"]
        self.received_at: datetime | None = document.get("received_at")
        subject = document["subject"]
        get = subject.get
        self.subject = SubjectIds(
            get("facility_id"), get("patient_id"), get("order_id"), get("pump_id"),
            get("channel"),
        )
        self._model: Any = None

    def model(self) -> Any:
        if self._model is None:
            self._model = parse_event(self.raw)
        return self._model

    def __repr__(self) -> str:
        return f"Validated({self.type}, {self.event_id})"


def parse_for_store(raw: bytes | bytearray | memoryview | str) -> Validated | Any:
    """Validate one message for appending: a :class:`Validated` when the fast path accepts
    it, else the contract model from :func:`parse_event` (which raises ``ContractError``).

    Escapes may hide NUL characters or lone surrogates, which only the exact path looks for.
    """
    if type(raw) is bytes:
        escaped = b"\\u" in raw
    elif type(raw) is str:
        escaped = "\\u" in raw
    else:
        escaped = True  # a buffer: the exact path copies and decodes it
    if not escaped:
        try:
            return Validated(raw, _VALIDATOR.validate_json(raw))
        except ValidationError:
            pass
    return parse_event(raw)


def contract_event(event: Validated | Any) -> Any:
    """The contract model of an event from :func:`parse_for_store` (or of a model)."""
    return event.model() if type(event) is Validated else event


def stored_json(event: Validated | Any) -> bytes:
    """The event's bytes inside the stored record, whichever path validated it."""
    return event.wire if type(event) is Validated else wire_json(event)

