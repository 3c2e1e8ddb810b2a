"""The stored record's canonical bytes and the Merkle tree are what docs/tamper-evidence.md says."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

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
