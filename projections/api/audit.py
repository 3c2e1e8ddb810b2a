"""Read audit: one durable access record per request that touches patient-level data.

HIPAA's audit controls (DOMAIN.md §8) ask who read what, as whom, about which patients,
when, and with what outcome. Each audited request carries an :class:`AccessContext` that
collects the patients its response discloses; :meth:`AuditLog.record` writes it to the
append-only ``api_access_log`` (one autocommit INSERT, so durable) *before* the response
is handed to the server. The sealer later appends each row to the ledger as an
``access.recorded`` event, so requests never queue on the hash chain.

Tokens the response handed out are registered in the same statement (``api_pseudonyms``),
which is what lets an auditor send a token back later.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from projections.api.keys import Principal
from projections.api.queries import Pool

Outcome = Literal["allowed", "denied", "error"]

_INSERT = (
    "INSERT INTO api_access_log (event_id, occurred_at, request_id, key_id, role, method,"
    " endpoint, path, query, purpose, facility_ids, patient_ids, outcome, status_code)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# Data-modifying CTEs always run, so one round trip writes the record and the tokens.
_INSERT_WITH_TOKENS = (
    "WITH access AS (" + _INSERT + " RETURNING id)"
    " INSERT INTO api_pseudonyms (token, facility_id, patient_id, key_fingerprint)"
    " SELECT t, f, p, %s FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(t, f, p)"
    " ON CONFLICT (token) DO NOTHING"
)


def outcome_of(status_code: int) -> Outcome:
    if status_code in (401, 403):
        return "denied"
    if status_code >= 400 and status_code != 404:
        return "error"
    return "allowed"


@dataclass
class AccessContext:
    """What one request is, and which patients it has disclosed so far."""

    principal: Principal
    method: str
    endpoint: str
    path: str
    query: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    purpose: str | None = None
    patients: dict[tuple[str, str], None] = field(default_factory=dict)
    new_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)

    def touch(self, facility_id: str, patient_id: str) -> None:
        self.patients[(facility_id, patient_id)] = None

    @property
    def patient_ids(self) -> list[str]:
        return list(dict.fromkeys(p for _, p in self.patients))

    @property
    def facility_ids(self) -> list[str]:
        return list(dict.fromkeys(f for f, _ in self.patients))


class AuditLog:
    """Writes access records; an exception here must stop the response (see SecuredRoute)."""

    def __init__(self, pool: Pool, key_fingerprint: str):
        self.pool = pool
        self.key_fingerprint = key_fingerprint

    async def record(self, access: AccessContext, status_code: int) -> uuid.UUID:
        event_id = uuid.uuid4()
        principal = access.principal
        params: list[object] = [
            event_id, access.occurred_at, access.request_id, principal.key_id,
            principal.role.value, access.method, access.endpoint, access.path,
            access.query or None, access.purpose, access.facility_ids, access.patient_ids,
            outcome_of(status_code), status_code,
        ]
        statement = _INSERT
        if access.new_tokens:
            tokens = list(access.new_tokens.items())
            statement = _INSERT_WITH_TOKENS
            params += [
                self.key_fingerprint, [t for t, _ in tokens], [f for _, (f, _) in tokens],
                [p for _, (_, p) in tokens],
            ]
        async with self.pool.connection() as conn:
            await conn.execute(statement, params)
        return event_id
