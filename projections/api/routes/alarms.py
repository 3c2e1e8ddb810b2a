"""``/v1/alarms``: pump alarms with their response times and the infusion they hit.

Ordered newest first by ``raised_at`` (then facility, pump, alarm id: the alarm's key).
The period filter is on ``raised_at``. Alarm text is free text: withheld from
de-identified callers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, Security

from projections.api.deid import Disclosure
from projections.api.deps import Disclose, Svc, patient_filter
from projections.api.export import LIST_CONTENT, render
from projections.api.keys import Role
from projections.api.models import (
    Cursor,
    DecimalStr,
    FormatParam,
    From,
    Limit,
    Out,
    Page,
    Problem,
    TextFilter,
    To,
)
from projections.api.queries import Keyset, Where, check_period, fetch_page
from projections.api.security import SecuredRoute, bearer, secured

READERS = (Role.AUDITOR, Role.SAFETY_OFFICER)
PROJECTIONS = ["alarms", "infusions"]
ORDER = Keyset((("raised_at", "timestamptz"), ("facility_id", "text"), ("pump_id", "text"),
                ("alarm_id", "text")))

router = APIRouter(prefix="/v1", tags=["alarms"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])



class Alarm(Out):
    facility_id: str
    pump_id: str
    alarm_id: str
    channel: str | None
    code: str
    priority: str
    initial_priority: str
    text: str | None
    kind: str | None
    state: str
    raised_at: datetime
    silenced_at: datetime | None
    acknowledged_at: datetime | None
    cleared_at: datetime | None
    first_response_at: datetime | None
    seconds_to_acknowledge: DecimalStr | None
    seconds_to_first_response: DecimalStr | None
    seconds_to_clear: DecimalStr | None
    updates: int
    raised_event_id: UUID | None
    episode_id: UUID | None
    patient_id: str | None
    medication_name: str | None
    high_alert: bool | None
    unit: str | None
    last_position: int


def alarm_of(row: dict[str, Any], disclosure: Disclosure) -> Alarm:
    fields: dict[str, Any] = {name: row.get(name) for name in Alarm.model_fields}
    fields["patient_id"] = disclosure.patient(row["facility_id"], row["patient_id"])
    fields["text"] = disclosure.text(row["text"])
    return Alarm(**fields)


@router.get(
    "/alarms",
    response_model=Page[Alarm],
    summary="List pump alarms",
    **secured(READERS, audited=True, responses={**LIST_CONTENT, 404: {"model": Problem}}),
)
async def list_alarms(
    request: Request,
    services: Svc,
    disclosure: Disclose,
    facility: TextFilter = None,
    unit: TextFilter = None,
    pump: TextFilter = None,
    code: TextFilter = None,
    priority: Literal["high", "medium", "low", "info"] | None = None,
    state: Literal["active", "inactive"] | None = None,
    open_only: Annotated[bool | None, Query(alias="open",
                                            description="Only alarms not yet cleared")] = None,
    high_alert: bool | None = None,
    patient: TextFilter = None,
    start: From = None,
    end: To = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[Alarm] | Response:
    check_period(start, end)
    where = Where()
    where.when(facility, "facility_id = %s")
    where.when(unit, "unit = %s")
    where.when(pump, "pump_id = %s")
    where.when(code, "code = %s")
    where.when(priority, "priority = %s")
    where.when(state, "state = %s")
    if open_only is not None:
        where.add("cleared_at IS NULL" if open_only else "cleared_at IS NOT NULL")
    where.when(high_alert, "high_alert = %s")
    where.when(start, "raised_at >= %s")
    where.when(end, "raised_at <= %s")
    who = None
    if patient is not None:
        who = await patient_filter(services, disclosure, patient, facility)
        where.add(who.sql, *who.params)
    result = await fetch_page(
        services.pool, columns="*", source="alarms", where=where, keyset=ORDER, cursor=cursor,
        limit=limit, position_params=[PROJECTIONS],
    )
    if who is not None:
        await who.settle(services, disclosure, result.rows)
    items = [alarm_of(row, disclosure) for row in result.rows]
    return render(request, result, items, Alarm, fmt, disclosure.deidentified)
