"""``/v1/access-records`` and ``/v1/break-glass``: the read audit, for those who review it.

Admins list access records (DOMAIN.md §8: admins get no PHI by default, so patients
appear as tokens and patient ids inside paths, queries and reasons are replaced by their
tokens); safety officers see them identified. ``/v1/break-glass`` lists the auditors'
re-identifications with their stated reasons, for review. Listing access records reads
patient-level data, so it is audited too. ``sealed_position`` is the ledger position of
the ``access.sealed`` event that anchors the record's seal, once the sealer has sealed it
(for records sealed before seals existed: of the record's own ``access.recorded`` event).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, Security

from ledger.store.access_seals import SEAL_HOLDS_RECORD
from projections.api.deid import Disclosure
from projections.api.deps import Disclose, Svc, resolve_patient
from projections.api.export import LIST_CONTENT, render
from projections.api.keys import Role
from projections.api.models import (
    Cursor,
    FormatParam,
    From,
    Limit,
    Out,
    Page,
    Problem,
    TextFilter,
    To,
)
from projections.api.queries import LEDGER_HEAD, Keyset, Where, check_period, fetch_page
from projections.api.security import SecuredRoute, bearer, secured

READERS = (Role.ADMIN, Role.SAFETY_OFFICER)
ORDER = Keyset((("id", "bigint"),))
BREAK_GLASS_ENDPOINT = "/v1/patients/{patient_ref}/reidentify"
# The seal holding a record: the first seal at or above its id that lists it. Records
# sealed before seals existed (0050) were appended as their own access.recorded events;
# COALESCE evaluates the seal lookup only for the others.
_SEALED_IN = (
    "SELECT le.notification_id FROM api_access_seals s"
    " JOIN ledger_events le ON le.event_id = s.event_id"
    f" WHERE {SEAL_HOLDS_RECORD} ORDER BY s.last_record_id LIMIT 1"
)
_SOURCE = (
    "(SELECT a.*, COALESCE(e.notification_id, (" + _SEALED_IN + ")) AS sealed_position"
    " FROM api_access_log a LEFT JOIN ledger_events e ON e.event_id = a.event_id) AS a"
)

router = APIRouter(prefix="/v1", tags=["audit"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])



class AccessRecord(Out):
    id: int
    event_id: UUID
    occurred_at: datetime
    recorded_at: datetime
    request_id: str
    key_id: str
    role: str
    method: str
    endpoint: str
    path: str
    query: str | None
    purpose: str | None
    facility_ids: list[str]
    patient_ids: list[str]
    outcome: str
    status_code: int | None
    sealed_position: int | None


def record_of(row: dict[str, Any], disclosure: Disclosure) -> AccessRecord:
    facilities = row["facility_ids"] or ["default"]
    # Patients touched are listed per request; with several facilities the first stands in
    # for tokens (ids are unique within a facility; multi-facility requests are rare).
    pairs = [(facilities[0], p) for p in row["patient_ids"]]
    shown = [disclosure.patient(f, p) or p for f, p in pairs]
    return AccessRecord(**{
        **row, "patient_ids": shown, "path": disclosure.redact(row["path"], pairs) or "",
        "query": disclosure.redact(row["query"], pairs),
        "purpose": disclosure.redact(row["purpose"], pairs),
    })


async def _list(
    request: Request, services: Any, disclosure: Disclosure, where: Where, *,
    patient: str | None, start: datetime | None, end: datetime | None, limit: int,
    cursor: str | None, fmt: Any,
) -> Page[AccessRecord] | Response:
    check_period(start, end)
    where.when(start, "occurred_at >= %s")
    where.when(end, "occurred_at <= %s")
    if patient is not None:
        _, patient_id = await resolve_patient(services, disclosure, patient, None)
        where.add("patient_ids @> ARRAY[%s]::text[]", patient_id)
    result = await fetch_page(
        services.pool, columns="*", source=_SOURCE, where=where, keyset=ORDER, cursor=cursor,
        limit=limit, position_sql=LEDGER_HEAD,
    )
    items = [record_of(row, disclosure) for row in result.rows]
    return render(request, result, items, AccessRecord, fmt, disclosure.deidentified)


@router.get(
    "/access-records",
    response_model=Page[AccessRecord],
    summary="The read audit: who read what, as whom, about which patients",
    **secured(READERS, audited=True, responses={**LIST_CONTENT, 404: {"model": Problem}}),
)
async def list_access_records(
    request: Request,
    services: Svc,
    disclosure: Disclose,
    key_id: Annotated[str | None, Query(pattern=r"^[0-9a-f]{16}$")] = None,
    role: Literal["integration", "auditor", "safety_officer", "admin", "producer"] | None = None,
    outcome: Literal["allowed", "denied", "error"] | None = None,
    endpoint: TextFilter = None,
    patient: TextFilter = None,
    start: From = None,
    end: To = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[AccessRecord] | Response:
    where = Where()
    where.when(key_id, "key_id = %s")
    where.when(role, "role = %s")
    where.when(outcome, "outcome = %s")
    where.when(endpoint, "endpoint = %s")
    return await _list(request, services, disclosure, where, patient=patient, start=start,
                       end=end, limit=limit, cursor=cursor, fmt=fmt)


@router.get(
    "/break-glass",
    response_model=Page[AccessRecord],
    summary="Auditors' re-identifications with their stated reasons, for review",
    **secured(READERS, audited=True, responses={**LIST_CONTENT, 404: {"model": Problem}}),
)
async def list_break_glass(
    request: Request,
    services: Svc,
    disclosure: Disclose,
    key_id: Annotated[str | None, Query(pattern=r"^[0-9a-f]{16}$")] = None,
    start: From = None,
    end: To = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[AccessRecord] | Response:
    where = Where().add("endpoint = %s", BREAK_GLASS_ENDPOINT)
    where.when(key_id, "key_id = %s")
    return await _list(request, services, disclosure, where, patient=None, start=start,
                       end=end, limit=limit, cursor=cursor, fmt=fmt)
