"""``/v1/discrepancies``: findings of the discrepancy engine, and a person's review of one.

The engine (another package) publishes a ``discrepancies`` view. Its columns are read from
the catalog (cached for a minute) rather than assumed, so this route keeps working while
the engine's view grows; the period filter uses ``detected_at`` (or ``opened_at``), and the
unit and patient filters fall back to the finding's episode in ``infusion_state`` when the
view has no such column. A review is appended to the ledger as ``discrepancy.reviewed``
(stream ``finding:<id>``) through ``EventStore.append``; the engine folds it into the
finding's status. Sending the same ``review_id`` again is answered as a duplicate.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response, Security
from pydantic import Field

from ledger.ids import uuid7
from ledger.store.access_seals import API_SYSTEM
from projections.api.deid import Disclosure
from projections.api.deps import Access, Disclose, Services, Svc, resolve_patient
from projections.api.export import LIST_CONTENT, render
from projections.api.keys import Role
from projections.api.models import (
    TEXT_PATTERN,
    Cursor,
    FormatParam,
    From,
    In,
    Limit,
    Out,
    Page,
    Problem,
    TextFilter,
    To,
    text_query,
)
from projections.api.queries import Keyset, Where, check_period, fetch_page
from projections.api.security import SecuredRoute, bearer, secured
from projections.api.writer import internal_event

READERS = (Role.AUDITOR, Role.SAFETY_OFFICER)
REVIEWERS = (Role.SAFETY_OFFICER,)
PROJECTIONS = ["discrepancies"]
ORDER = Keyset((("_at", "timestamptz"), ("_fid", "text")))
_SHAPE_SECONDS = 60.0
_SUBJECT = ("facility_id", "patient_id", "order_id", "pump_id", "channel")

router = APIRouter(prefix="/v1", tags=["discrepancies"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])

FindingId = Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT_PATTERN)]


class Finding(Out):
    finding_id: str
    rule_id: str | None
    rule_version: str | None
    severity: str | None
    status: str | None
    facility_id: str | None
    patient_id: str | None
    unit: str | None
    episode_id: str | None
    order_id: str | None
    pump_id: str | None
    channel: str | None
    detected_at: datetime | None
    summary: str | None
    evidence: dict[str, Any] | list[Any] | None
    evidence_event_ids: list[str]


class ReviewRequest(In):
    outcome: Literal["confirmed", "false_positive", "accepted_risk"]
    note: Annotated[str | None, Field(min_length=1, max_length=2000)] = None
    review_id: uuid.UUID | None = Field(
        default=None, description="Idempotency key: resending it answers 'duplicate'")


class ReviewRecorded(Out):
    review_id: uuid.UUID
    finding_id: str
    outcome: str
    result: Literal["appended", "duplicate"]
    notification_id: int | None
    stream: str


async def _shape(services: Services) -> dict[str, str]:
    """Column name -> type of the ``discrepancies`` view; 503 when the engine has none yet."""
    cached = services.cache.get("discrepancies")
    if cached and cached[0] > time.monotonic():
        return dict(cached[1])
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type"
            " FROM pg_attribute a WHERE a.attrelid = to_regclass('discrepancies')"
            " AND a.attnum > 0 AND NOT a.attisdropped")
        columns = {row["name"]: row["type"] for row in await cur.fetchall()}
    if not columns:
        raise HTTPException(503, "the discrepancy engine has not published findings yet")
    services.cache["discrepancies"] = (time.monotonic() + _SHAPE_SECONDS, columns)
    return columns


def _time_column(columns: dict[str, str]) -> str | None:
    return next((c for c in ("detected_at", "opened_at") if c in columns), None)


def finding_of(row: dict[str, Any], disclosure: Disclosure, at_column: str | None) -> Finding:
    facility, patient = row.get("facility_id"), row.get("patient_id")
    ids = row.get("evidence_event_ids") or []
    return Finding(
        finding_id=str(row["finding_id"]), rule_id=row.get("rule_id"),
        rule_version=None if row.get("rule_version") is None else str(row["rule_version"]),
        severity=row.get("severity"), status=row.get("status"), facility_id=facility,
        patient_id=disclosure.patient(facility, patient), unit=row.get("unit"),
        episode_id=None if row.get("episode_id") is None else str(row["episode_id"]),
        order_id=row.get("order_id"), pump_id=row.get("pump_id"), channel=row.get("channel"),
        detected_at=row.get(at_column) if at_column else None,
        summary=disclosure.scrub(row.get("summary"), facility, patient),
        evidence=disclosure.scrub(row.get("evidence"), facility, patient),
        evidence_event_ids=[str(i) for i in ids],
    )


@router.get(
    "/discrepancies",
    response_model=Page[Finding],
    summary="List discrepancy findings",
    **secured(READERS, audited=True, responses={**LIST_CONTENT, 404: {"model": Problem}}),
)
async def list_discrepancies(
    request: Request,
    services: Svc,
    disclosure: Disclose,
    rule: Annotated[str | None, text_query("e.g. R01", max_length=20)] = None,
    severity: Literal["S1", "S2", "S3", "S4"] | None = None,
    status: TextFilter = None,
    facility: TextFilter = None,
    unit: TextFilter = None,
    patient: TextFilter = None,
    episode: uuid.UUID | None = None,
    start: From = None,
    end: To = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[Finding] | Response:
    check_period(start, end)
    columns = await _shape(services)
    at = _time_column(columns)
    by_episode = "episode_id::text IN (SELECT episode_id::text FROM infusion_state WHERE {})"
    where = Where()
    where.when(rule, "rule_id = %s")
    where.when(severity, "severity = %s")
    where.when(status, "status = %s")
    where.when(facility, "facility_id = %s")
    if unit is not None:
        where.add("unit = %s" if "unit" in columns else by_episode.format("unit = %s"), unit)
    where.when(episode, "episode_id::text = %s", str(episode))
    where.when(start, "_at >= %s")
    where.when(end, "_at <= %s")
    if patient is not None:
        pair = await resolve_patient(services, disclosure, patient, facility)
        where.add("facility_id = %s AND patient_id = %s" if "patient_id" in columns
                  else by_episode.format("facility_id = %s AND patient_id = %s"), *pair)
    # The keyset needs NOT NULL keys: a finding without a time sorts as the epoch.
    at_sql = f"COALESCE(d.{at}, 'epoch'::timestamptz)" if at else "'epoch'::timestamptz"
    source = f"(SELECT d.*, {at_sql} AS _at, d.finding_id::text AS _fid FROM discrepancies d) AS d"
    result = await fetch_page(
        services.pool, columns="*", source=source, where=where, keyset=ORDER, cursor=cursor,
        limit=limit, position_params=[PROJECTIONS],
    )
    items = [finding_of(row, disclosure, at) for row in result.rows]
    return render(request, result, items, Finding, fmt, disclosure.deidentified)


async def _finding(services: Services, finding_id: str) -> dict[str, Any]:
    await _shape(services)
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT * FROM discrepancies WHERE finding_id::text = %s LIMIT 1", (finding_id,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, "no such finding")
    return row


@router.get(
    "/discrepancies/{finding_id}",
    response_model=Finding,
    summary="One discrepancy finding with its evidence",
    **secured(READERS, audited=True, responses={404: {"model": Problem}}),
)
async def get_discrepancy(finding_id: FindingId, services: Svc, disclosure: Disclose) -> Finding:
    columns = await _shape(services)
    return finding_of(await _finding(services, finding_id), disclosure, _time_column(columns))


@router.post(
    "/discrepancies/{finding_id}/review",
    response_model=ReviewRecorded,
    status_code=201,
    summary="Record a person's review of a finding (appends discrepancy.reviewed)",
    **secured(REVIEWERS, audited=True, responses={
        200: {"model": ReviewRecorded, "description": "The same review_id was recorded before"},
        404: {"model": Problem}, 409: {"model": Problem}}),
)
async def review_discrepancy(
    finding_id: FindingId, body: ReviewRequest, response: Response, services: Svc,
    access: Access, disclosure: Disclose,
) -> ReviewRecorded:
    row = await _finding(services, finding_id)
    disclosure.patient(row.get("facility_id"), row.get("patient_id"))
    review_id = body.review_id or uuid7()
    data = {"finding_id": finding_id, "outcome": body.outcome, "note": body.note}
    known = await _stored_review(services, review_id)
    if known is not None:
        if {k: v for k, v in known["data"].items() if v is not None} != {
                k: v for k, v in data.items() if v is not None}:
            raise HTTPException(409, "this review_id was used for a different review")
        response.status_code = 200
        return ReviewRecorded(review_id=review_id, finding_id=finding_id, outcome=body.outcome,
                              result="duplicate", notification_id=known["notification_id"],
                              stream=known["stream"])
    principal = access.principal
    document: dict[str, Any] = {
        "event_id": str(review_id), "type": "discrepancy.reviewed", "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": {"system": API_SYSTEM, "kind": "other", "message_id": access.request_id},
        "subject": {k: str(row[k]) for k in _SUBJECT if row.get(k)},
        "correlation_id": access.request_id,
        "data": {k: v for k, v in data.items() if v is not None},
    }
    if principal.actor_id and principal.actor_role:
        document["actor"] = {"id": principal.actor_id, "role": principal.actor_role}
    [outcome] = await services.writer.append([internal_event(document)], f"api:{principal.key_id}")
    if outcome.outcome.value == "conflict":
        raise HTTPException(409, "this review_id was used for a different review")
    if outcome.outcome.value == "duplicate":
        response.status_code = 200
    return ReviewRecorded(review_id=review_id, finding_id=finding_id, outcome=body.outcome,
                          result="appended" if outcome.outcome.value == "appended"
                          else "duplicate",
                          notification_id=outcome.notification_id, stream=outcome.stream)


async def _stored_review(services: Services, review_id: uuid.UUID) -> dict[str, Any] | None:
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT notification_id, stream, convert_from(state, 'UTF8')::jsonb #> '{event,data}'"
            " AS data, topic FROM ledger_events WHERE event_id = %s", (review_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    if row["topic"] != "discrepancy.reviewed":
        raise HTTPException(409, "this review_id is the id of another event")
    return row
