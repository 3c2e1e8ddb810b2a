"""RFC 6962 (Certificate Transparency) Merkle tree hash over a list of event hashes.

Chosen over a plain chained hash so that a later issue can hand an auditor an inclusion
proof for one event without the whole range. Leaves and nodes are domain-separated
(0x00 / 0x01 prefixes) so a leaf can never be passed off as an inner node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(item: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + item).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(items: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1, computed bottom-up (no recursion depth limit)."""
    if not items:
        return EMPTY_ROOT
    level = [leaf_hash(item) for item in items]
    # Bottom-up pairing with an odd last node promoted unchanged gives the same root as the
    # RFC's split at the largest power of two below n.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]
