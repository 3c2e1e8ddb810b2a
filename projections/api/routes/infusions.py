"""``/v1/infusions``: infusion episodes — list and filter, one episode's state and timeline.

Lists are ordered newest episode first by ledger position (``first_position``, then
``episode_id``): immutable keys, so pages stay stable while projections update rows.
The period filter keeps episodes that overlap ``[from, to]``.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request, Response, Security

from projections.api.deps import Disclose, Svc, patient_filter
from projections.api.export import LIST_CONTENT, render
from projections.api.fastpath import responds_directly
from projections.api.keys import Role
from projections.api.models import (
    Cursor,
    FormatParam,
    From,
    Limit,
    Page,
    Problem,
    TextFilter,
    To,
    text_query,
)
from projections.api.queries import Keyset, Where, check_period, fetch_page
from projections.api.routes.infusion_models import (
    SUMMARY_COLUMNS,
    InfusionDetail,
    InfusionSummary,
    Status,
    TimelineEntry,
    state_of,
    summary_json,
    timeline_of,
)
from projections.api.security import SecuredRoute, bearer, secured

READERS = (Role.AUDITOR, Role.SAFETY_OFFICER)
PROJECTIONS = ["infusions"]
EPISODE_ORDER = Keyset((("first_position", "bigint"), ("episode_id", "uuid")))
TIMELINE_ORDER = Keyset((("seq", "int"),), descending=False)
TIMELINE_IN_DETAIL = 200
# Episodes overlapping [from, to]: begun by `to`, not ended before `from`.
_BEGIN = "COALESCE(started_at, programmed_at, last_occurred_at)"

router = APIRouter(prefix="/v1", tags=["infusions"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])



def episode_filters(
    *, facility: str | None, unit: str | None, status: str | None, medication: str | None,
    pump: str | None, active: bool | None, start: Any, end: Any,
) -> Where:
    check_period(start, end)
    where = Where()
    where.when(facility, "facility_id = %s")
    where.when(unit, "unit = %s")
    where.when(status, "status = %s")
    where.when(medication, "medication_code = %s OR lower(medication_name) = lower(%s)",
               medication, medication)
    where.when(pump, "pump_id = %s")
    where.when(active, "active = %s")
    where.when(end, f"{_BEGIN} <= %s")
    where.when(start, "ended_at IS NULL OR ended_at >= %s")
    return where


@router.get(
    "/infusions",
    response_model=Page[InfusionSummary],
    summary="List infusion episodes",
    **secured(READERS, audited=True, responses={**LIST_CONTENT, 404: {"model": Problem}}),
)
@responds_directly
async def list_infusions(
    request: Request,
    services: Svc,
    disclosure: Disclose,
    facility: TextFilter = None,
    unit: TextFilter = None,
    status: Status | None = None,
    medication: Annotated[str | None, text_query(
                                            description="Medication code or name (exact)")] = None,
    patient: Annotated[str | None, text_query(
                                         description="Patient token (or id for identified roles)"
                                         )] = None,
    pump: TextFilter = None,
    active: bool | None = None,
    start: From = None,
    end: To = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[InfusionSummary] | Response:
    where = episode_filters(facility=facility, unit=unit, status=status, medication=medication,
                            pump=pump, active=active, start=start, end=end)
    who = None
    if patient is not None:
        who = await patient_filter(services, disclosure, patient, facility)
        where.add(who.sql, *who.params)
    result = await fetch_page(
        services.pool, columns=SUMMARY_COLUMNS, source="infusion_state", where=where,
        keyset=EPISODE_ORDER, cursor=cursor, limit=limit, position_params=[PROJECTIONS],
    )
    if who is not None:
        await who.settle(services, disclosure, result.rows)
    items = [summary_json(row, disclosure) for row in result.rows]
    return render(request, result, items, InfusionSummary, fmt, disclosure.deidentified)


@router.get(
    "/infusions/{episode_id}",
    response_model=InfusionDetail,
    summary="One infusion episode: full state and the start of its timeline",
    **secured(READERS, audited=True, responses={404: {"model": Problem}}),
)
async def get_infusion(
    episode_id: UUID, services: Svc, disclosure: Disclose
) -> InfusionDetail:
    state = await fetch_page(
        services.pool, columns="*", source="infusion_state",
        where=Where().add("episode_id = %s", episode_id), keyset=EPISODE_ORDER, cursor=None,
        limit=1, position_params=[PROJECTIONS],
    )
    if not state.rows:
        raise HTTPException(404, "no such infusion episode")
    row = state.rows[0]
    timeline = await fetch_page(
        services.pool, columns="*", source="infusion_timeline",
        where=Where().add("episode_id = %s", episode_id), keyset=TIMELINE_ORDER, cursor=None,
        limit=TIMELINE_IN_DETAIL, position_params=[PROJECTIONS],
    )
    return InfusionDetail(
        state=state_of(row, disclosure),
        timeline=[timeline_of(t, disclosure, row["facility_id"], row["patient_id"])
                  for t in timeline.rows],
        timeline_next_cursor=timeline.next_cursor,
        position=state.position,
        deidentified=disclosure.deidentified,
    )


@router.get(
    "/infusions/{episode_id}/timeline",
    response_model=Page[TimelineEntry],
    summary="The timeline of one infusion episode, oldest event first",
    **secured(READERS, audited=True, responses={**LIST_CONTENT, 404: {"model": Problem}}),
)
async def infusion_timeline(
    request: Request,
    episode_id: UUID,
    services: Svc,
    disclosure: Disclose,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[TimelineEntry] | Response:
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT facility_id, patient_id FROM infusion_state WHERE episode_id = %s",
            (episode_id,),
        )
        episode = await cur.fetchone()
    if episode is None:
        raise HTTPException(404, "no such infusion episode")
    facility_id, patient_id = episode["facility_id"], episode["patient_id"]
    disclosure.patient(facility_id, patient_id)
    result = await fetch_page(
        services.pool, columns="*", source="infusion_timeline",
        where=Where().add("episode_id = %s", episode_id), keyset=TIMELINE_ORDER,
        cursor=cursor, limit=limit, position_params=[PROJECTIONS],
    )
    items = [timeline_of(row, disclosure, facility_id, patient_id) for row in result.rows]
    return render(request, result, items, TimelineEntry, fmt, disclosure.deidentified)
