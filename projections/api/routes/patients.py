"""``/v1/patients/{patient_ref}``: one patient's location, current infusions and orders, their
infusion history, and the auditor's break-glass re-identification.

``patient_ref`` is a pseudonymous token (``pt_…``, every role) or, for identified roles,
the patient id itself (with ``facility``, default ``default``). Re-identification is for
auditors only, needs a stated reason, answers for one patient, and is audited with that
reason as the purpose of use (listed at ``/v1/break-glass``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, Security
from pydantic import Field

from projections.api.deps import Access, Disclose, Svc, patient_filter, resolve_patient
from projections.api.export import LIST_CONTENT, render
from projections.api.fastpath import responds_directly
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
    Quantity,
    To,
    quantity,
    text_query,
)
from projections.api.queries import fetch_page, fetch_position
from projections.api.routes.infusion_models import (
    SUMMARY_COLUMNS,
    InfusionSummary,
    summary_json,
    summary_of,
)
from projections.api.routes.infusions import EPISODE_ORDER, PROJECTIONS, READERS, episode_filters
from projections.api.security import SecuredRoute, bearer, secured

router = APIRouter(prefix="/v1", tags=["patients"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])

PatientRef = Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT_PATTERN,
                                 description="Patient token, or id for identified roles")]
Facility = Annotated[str | None, text_query(
                                       description="Facility of a raw patient id")]
_ORDER_COLUMNS = (
    "order_id, status, verified, medication_code, medication_name, dose, dose_unit, rate,"
    " rate_unit, high_alert, placed_at, start_at, stop_at"
)


class Location(Out):
    unit: str
    care_area: str | None
    bed: str | None
    since: datetime


class ActiveOrder(Out):
    order_id: str
    status: str
    verified: bool
    medication_code: str | None
    medication_name: str | None
    dose: Quantity | None
    rate: Quantity | None
    high_alert: bool | None
    placed_at: datetime | None
    start_at: datetime | None
    stop_at: datetime | None


class PatientOverview(Out):
    patient_id: str
    facility_id: str
    location: Location | None
    active_infusions: list[InfusionSummary]
    active_orders: list[ActiveOrder]
    position: int | None
    deidentified: bool


class ReidentifyRequest(In):
    reason: Annotated[str, Field(min_length=10, max_length=1000,
                                 description="Why this patient must be identified")]


class Reidentification(Out):
    patient_ref: str
    facility_id: str
    patient_id: str
    reason: str
    request_id: str


@router.get(
    "/patients/{patient_ref}",
    response_model=PatientOverview,
    summary="A patient's current location, running infusions and active orders",
    **secured(READERS, audited=True, responses={404: {"model": Problem}}),
)
async def patient_overview(
    patient_ref: PatientRef, services: Svc, disclosure: Disclose, facility: Facility = None
) -> PatientOverview:
    facility_id, patient_id = await resolve_patient(services, disclosure, patient_ref, facility)
    position = await fetch_position(services.pool, PROJECTIONS)
    async with services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT unit, care_area, bed, since FROM patient_locations"
            " WHERE facility_id = %s AND patient_id = %s", (facility_id, patient_id))
        location = await cur.fetchone()
        cur = await conn.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM infusion_state WHERE facility_id = %s"
            " AND patient_id = %s AND active ORDER BY first_position DESC LIMIT 100".encode(),
            (facility_id, patient_id))
        running = await cur.fetchall()
        cur = await conn.execute(
            f"SELECT {_ORDER_COLUMNS} FROM infusion_orders WHERE facility_id = %s"
            " AND patient_id = %s AND active_now ORDER BY placed_at, order_id LIMIT 100".encode(),
            (facility_id, patient_id))
        orders = await cur.fetchall()
    if location is None and not running and not orders:
        raise HTTPException(404, "nothing is known about this patient now")
    return PatientOverview(
        patient_id=disclosure.patient(facility_id, patient_id) or patient_id,
        facility_id=facility_id,
        location=Location(**{**location, "bed": disclosure.text(location["bed"])})
        if location else None,
        active_infusions=[summary_of(row, disclosure) for row in running],
        active_orders=[ActiveOrder(**{**row, "dose": quantity(row, "dose"),
                                      "rate": quantity(row, "rate")}) for row in orders],
        position=position,
        deidentified=disclosure.deidentified,
    )


@router.get(
    "/patients/{patient_ref}/infusions",
    response_model=Page[InfusionSummary],
    summary="A patient's infusion history, newest first",
    **secured(READERS, audited=True, responses={**LIST_CONTENT, 404: {"model": Problem}}),
)
@responds_directly
async def patient_infusions(
    request: Request,
    patient_ref: PatientRef,
    services: Svc,
    disclosure: Disclose,
    facility: Facility = None,
    active: bool | None = None,
    start: From = None,
    end: To = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[InfusionSummary] | Response:
    who = await patient_filter(services, disclosure, patient_ref, facility)
    where = episode_filters(facility=None, unit=None, status=None, medication=None, pump=None,
                            active=active, start=start, end=end)
    where.add(who.sql, *who.params)
    result = await fetch_page(
        services.pool, columns=SUMMARY_COLUMNS, source="infusion_state", where=where,
        keyset=EPISODE_ORDER, cursor=cursor, limit=limit, position_params=[PROJECTIONS],
    )
    await who.settle(services, disclosure, result.rows)
    items = [summary_json(row, disclosure) for row in result.rows]
    return render(request, result, items, InfusionSummary, fmt, disclosure.deidentified)


@router.post(
    "/patients/{patient_ref}/reidentify",
    response_model=Reidentification,
    summary="Break-glass: an auditor re-identifies one patient, with a stated reason",
    **secured([Role.AUDITOR], audited=True, responses={404: {"model": Problem}}),
)
async def reidentify(
    patient_ref: Annotated[str, Path(pattern=r"^pt_[0-9a-f]{32}$")],
    body: ReidentifyRequest,
    services: Svc,
    access: Access,
) -> Reidentification:
    pair = await services.pseudonyms.resolve(patient_ref)
    if pair is None:
        raise HTTPException(404, "unknown patient token")
    access.touch(*pair)
    access.purpose = body.reason
    return Reidentification(
        patient_ref=patient_ref, facility_id=pair[0], patient_id=pair[1], reason=body.reason,
        request_id=access.request_id,
    )
