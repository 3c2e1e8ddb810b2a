"""The stored record's canonical bytes and the Merkle tree are what docs/tamper-evidence.md says."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.contract import wire_json
from ledger.store import verify as verify_module
from ledger.store.chain import (
    GENESIS_HASH,
    canonical_json,
    chain_hash,
    encode_state,
    reference_canonical_json,
)
from ledger.store.merkle import (
    EMPTY_ROOT,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)
from ledger.store.streams import stream_id, stream_key
from tests.support.events import event


def _rfc6962(items: list[bytes]) -> bytes:
    """The recursive definition of RFC 6962 §2.1, as a reference."""
    if not items:
        return EMPTY_ROOT
    if len(items) == 1:
        return leaf_hash(items[0])
    split = 1
    while split * 2 < len(items):
        split *= 2
    return node_hash(_rfc6962(items[:split]), _rfc6962(items[split:]))


json_scalars = st.one_of(
    st.text(max_size=20), st.integers(-(2**53), 2**53), st.booleans(), st.none()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@given(
    event=st.dictionaries(st.text(max_size=8), json_values, max_size=6),
    ref=st.text(max_size=30),
    stream=st.text(max_size=40),
    version=st.integers(min_value=1, max_value=10**9),
)
def test_the_assembled_state_equals_the_canonical_json_of_the_whole_record(
    event: dict, ref: str, stream: str, version: int
) -> None:
    origin = {"kind": "kafka", "ref": ref}
    recorded_at = "2026-11-25T13:00:00.123456Z"
    whole = {
        "event": event, "origin": origin, "recorded_at": recorded_at, "stream": stream,
        "stream_version": version,
    }
    assembled = encode_state(
        canonical_json(event), canonical_json(origin), canonical_json(recorded_at),
        canonical_json(stream), version,
    )
    assert assembled == canonical_json(whole) == reference_canonical_json(whole)


def test_canonical_json_sorts_keys_keeps_unicode_and_has_no_whitespace() -> None:
    assert canonical_json({"b": 1, "a": "µg"}) == '{"a":"µg","b":1}'.encode()


def test_the_first_link_chains_from_the_documented_genesis_value() -> None:
    assert hashlib.sha256(b"infusion-ledger/v1/genesis").digest() == GENESIS_HASH
    assert chain_hash(GENESIS_HASH, b"{}") == hashlib.sha256(GENESIS_HASH + b"{}").digest()


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_the_bottom_up_merkle_root_equals_the_rfc6962_definition(items: list[bytes]) -> None:
    assert merkle_root(items) == _rfc6962(items)


def test_changing_any_leaf_changes_the_merkle_root() -> None:
    items = [hashlib.sha256(bytes([i])).digest() for i in range(9)]
    root = merkle_root(items)
    for index in range(len(items)):
        altered = list(items)
        altered[index] = hashlib.sha256(b"forged").digest()
        assert merkle_root(altered) != root


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_an_inclusion_proof_recomputes_the_root_and_fails_for_any_other_leaf(
    items: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    root = merkle_root(items)
    path = inclusion_proof(items, index)
    assert verify_inclusion(items[index], index, len(items), path, root)
    assert not verify_inclusion(b"\x00" * 31 + b"\x01", index, len(items), path, root) or \
        items[index] == b"\x00" * 31 + b"\x01"


# --- the clock columns against the record (ledger verify's fast path, without a database) --

instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
offsets = st.integers(-(14 * 60), 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def _row(occurred: datetime, received: datetime | None, recorded: datetime) -> tuple[Any, ...]:
    """A row as ``ledger verify`` fetches it, written the way the recorder writes one: the
    record keeps the sender's offsets; the columns hold the instants, loaded in UTC."""
    e = event("infusion.status_reported", occurred_at=occurred.isoformat(),
              received_at=received.isoformat() if received else None)
    stream = stream_key(e)
    recorded_json = canonical_json(recorded.isoformat().replace("+00:00", "Z"))
    state = encode_state(wire_json(e), canonical_json({"kind": "kafka", "ref": "t:0:1"}),
                         recorded_json, canonical_json(stream), 1)
    return (1, stream_id(stream).bytes, 1, e.type, str(e.event_id), stream, state,
            chain_hash(GENESIS_HASH, state), occurred.astimezone(UTC),
            received.astimezone(UTC) if received else None, recorded)


def _walk(row: tuple[Any, ...]) -> tuple[list[verify_module.Problem], int]:
    """The findings for one row, and how many rows needed the decoding check."""
    report = verify_module.VerifyReport()
    decoded = []
    slow = verify_module._decode_check

    def counting(*args: Any) -> None:
        decoded.append(args[0])
        slow(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify_module, "_decode_check", counting)
        verify_module._walk(iter([[row]]), [], report, None, 0, False)
    return report.problems, len(decoded)


@given(
    occurred=instants, occurred_offset=offsets,
    received=st.none() | instants, received_offset=offsets, recorded=instants,
)
def test_clocks_equal_as_instants_pass_without_decoding_the_record(
    occurred: datetime, occurred_offset: timezone, received: datetime | None,
    received_offset: timezone, recorded: datetime,
) -> None:
    row = _row(occurred.replace(tzinfo=occurred_offset),
               received.replace(tzinfo=received_offset) if received else None,
               recorded.replace(tzinfo=UTC))
    assert _walk(row) == ([], 0)


@pytest.mark.parametrize("column", [8, 9, 10], ids=["occurred_at", "received_at", "recorded_at"])
@pytest.mark.parametrize("shift", [timedelta(microseconds=1), timedelta(hours=-5)])
def test_a_clock_column_off_by_any_amount_is_named(column: int, shift: timedelta) -> None:
    row = list(_row(datetime(2026, 3, 14, 8, 5, 0, 123456, tzinfo=timezone(-timedelta(hours=5))),
                    datetime(2026, 3, 14, 13, 5, 1, tzinfo=UTC),
                    datetime(2026, 3, 14, 13, 5, 2, 1, tzinfo=UTC)))
    row[column] += shift
    problems, decoded = _walk(tuple(row))
    name = {8: "occurred_at", 9: "received_at", 10: "recorded_at"}[column]
    assert decoded == 1
    assert [(p.kind, p.detail.split(" is ")[0]) for p in problems] == [
        ("clock_mismatch", f"column {name}")]


def test_received_at_is_null_exactly_when_the_record_has_none() -> None:
    at = datetime(2026, 3, 14, 13, 5, tzinfo=UTC)
    absent = _row(at, None, at)
    present = _row(at, at, at)
    problems, _ = _walk((*absent[:9], at, *absent[10:]))
    assert [p.detail for p in problems] == [
        "column received_at is 2026-03-14T13:05:00Z but the stored record has no received_at"]
    problems, _ = _walk((*present[:9], None, *present[10:]))
    assert [p.detail for p in problems] == [
        "column received_at is NULL but the stored record has 2026-03-14T13:05:00+00:00"]


def test_a_record_timestamp_without_offset_matches_no_column() -> None:
    at = datetime(2026, 3, 14, 13, 5, tzinfo=UTC)
    row = _row(at, None, at)
    state = row[6].replace(b'"recorded_at":"2026-03-14T13:05:00Z"',
                           b'"recorded_at":"2026-03-14T13:05:00"')
    problems, decoded = _walk((*row[:6], state, chain_hash(GENESIS_HASH, state), *row[8:]))
    assert decoded == 1
    assert [p.detail for p in problems] == [
        "column recorded_at is 2026-03-14T13:05:00Z but the stored record has"
        " 2026-03-14T13:05:00"]
