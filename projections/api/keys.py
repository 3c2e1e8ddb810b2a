"""API keys: random 256-bit bearer tokens, stored as SHA-256, checked in constant time.

A token reads ``ilk_<key_id>_<secret>``: the key id (public, 16 hex digits) finds the row,
the SHA-256 of the whole token is compared with ``hmac.compare_digest``. Random keys need
no slow password hash (nothing to brute-force in 2^256) and a slow one would cost more
than the query it guards. Verified keys are cached for ``key_cache_seconds``, so the hot
path does not ask the database; revocation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row

from projections.api.queries import Pool

PREFIX = "ilk_"
_TOKEN = re.compile(r"^ilk_(?P<key_id>[0-9a-f]{16})_[A-Za-z0-9_-]{43}$")
_CACHE_SIZE = 10_000


class Role(StrEnum):
    """Who a key speaks for; see docs/api.md for what each one may read."""

    INTEGRATION = "integration"
    AUDITOR = "auditor"
    SAFETY_OFFICER = "safety_officer"
    ADMIN = "admin"
    PRODUCER = "producer"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a key, its role, and the person it stands for (if known)."""

    key_id: str
    role: Role
    actor_id: str | None = None
    actor_role: str | None = None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> tuple[str, str]:
    """A fresh ``(key_id, token)``; the token is shown once and never stored."""
    key_id = secrets.token_hex(8)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(token: str) -> str | None:
    match = _TOKEN.match(token)
    return match.group("key_id") if match else None


def create_key(
    conn: psycopg.Connection[Any],
    role: Role,
    *,
    label: str | None = None,
    actor_id: str | None = None,
    actor_role: str | None = None,
) -> tuple[str, str]:
    """Insert a new key and return ``(key_id, token)``."""
    key_id, token = new_token()
    conn.execute(
        "INSERT INTO api_keys (key_id, role, key_hash, label, actor_id, actor_role)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (key_id, role.value, token_hash(token), label, actor_id, actor_role),
    )
    return key_id, token


def list_keys(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    cur.execute(
        "SELECT key_id, role, label, actor_id, actor_role, created_at, revoked_at"
        " FROM api_keys ORDER BY created_at, key_id"
    )
    return list(cur.fetchall())


def revoke_key(conn: psycopg.Connection[Any], key_id: str) -> bool:
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = clock_timestamp()"
        " WHERE key_id = %s AND revoked_at IS NULL",
        (key_id,),
    )
    return cur.rowcount == 1


class KeyStore:
    """Resolves bearer tokens to principals, with a small time-bounded cache."""

    def __init__(self, pool: Pool, cache_seconds: float):
        self.pool = pool
        self.cache_seconds = cache_seconds
        # key_id -> (valid until, (hash, principal) or None for "no such active key")
        self._cache: OrderedDict[str, tuple[float, tuple[bytes, Principal] | None]] = (
            OrderedDict()
        )

    async def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        key_id = key_id_of(token)
        if key_id is None:
            return None
        entry = await self._lookup(key_id)
        if entry is None:
            return None
        stored_hash, principal = entry
        if not hmac.compare_digest(token_hash(token), stored_hash):
            return None
        return principal

    async def _lookup(self, key_id: str) -> tuple[bytes, Principal] | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT key_hash, role, actor_id, actor_role FROM api_keys"
                " WHERE key_id = %s AND revoked_at IS NULL",
                (key_id,),
            )
            row = await cur.fetchone()
        entry = None
        if row is not None:
            principal = Principal(key_id, Role(row["role"]), row["actor_id"], row["actor_role"])
            entry = (bytes(row["key_hash"]), principal)
        if self.cache_seconds > 0:
            self._cache[key_id] = (now + self.cache_seconds, entry)
            self._cache.move_to_end(key_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return entry
