"""``/v1/ders/compliance``: drug-library (DERS) use per care area × medication × period.

The ``ders_compliance`` view counts per UTC day; this route sums the days of a period
(day, week, month, quarter, year) and recomputes the shares from the sums, never by
averaging daily shares. Every row shows the ISMP target (library use ≥ 95 %) and whether
it is met. Aggregates hold no patient-level data: not audited, open to admins too.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, Security

from projections.api.deps import Svc
from projections.api.export import LIST_CONTENT, render
from projections.api.keys import Role
from projections.api.models import (
    Cursor,
    Day,
    DecimalStr,
    FormatParam,
    Limit,
    Out,
    Page,
    TextFilter,
    text_query,
)
from projections.api.queries import Keyset, Where, check_period, fetch_page
from projections.api.security import SecuredRoute, bearer, secured
from projections.ders.projection import LIBRARY_USE_TARGET

READERS = (Role.AUDITOR, Role.SAFETY_OFFICER, Role.ADMIN)
PROJECTIONS = ["ders"]
ORDER = Keyset((("period_start", "date"), ("care_area", "text"), ("medication_name", "text")))
Period = Literal["day", "week", "month", "quarter", "year"]
_LENGTH = {"day": "1 day", "week": "1 week", "month": "1 month", "quarter": "3 months",
           "year": "1 year"}
_FOUR = Decimal("0.0001")
_COUNTS = ("programs_started", "library_starts", "auto_programmed", "manual_edits_after_auto",
           "soft_alerts", "hard_alerts", "overrides", "overrides_under_2s", "reprogrammed",
           "cancelled")

router = APIRouter(prefix="/v1", tags=["ders"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])


class Compliance(Out):
    care_area: str
    medication_name: str
    period: Period
    period_start: date
    period_end: date
    programs_started: int
    library_starts: int
    library_use_share: DecimalStr | None
    library_use_target: DecimalStr
    meets_target: bool | None
    auto_programmed: int
    auto_programmed_share: DecimalStr | None
    manual_edits_after_auto: int
    soft_alerts: int
    hard_alerts: int
    overrides: int
    overrides_under_2s: int
    reprogrammed: int
    cancelled: int


def _source(inner: Where) -> str:
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in _COUNTS)
    return (
        "(SELECT care_area, medication_name, date_trunc(%s, day::timestamp)::date"
        " AS period_start, (date_trunc(%s, day::timestamp) + %s::interval)::date - 1"
        f" AS period_end, {sums} FROM ders_compliance WHERE {inner.sql}"
        " GROUP BY 1, 2, 3, 4) AS periods"
    )


def compliance_of(row: dict[str, Any], period: Period) -> Compliance:
    started, library, auto = (Decimal(row[c]) for c in
                              ("programs_started", "library_starts", "auto_programmed"))
    share = (library / started).quantize(_FOUR) if started else None
    return Compliance(
        **{c: row[c] for c in _COUNTS},
        care_area=row["care_area"], medication_name=row["medication_name"], period=period,
        period_start=row["period_start"], period_end=row["period_end"],
        library_use_share=share, library_use_target=LIBRARY_USE_TARGET,
        meets_target=(library / started >= LIBRARY_USE_TARGET) if started else None,
        auto_programmed_share=(auto / started).quantize(_FOUR) if started else None,
    )


@router.get(
    "/ders/compliance",
    response_model=Page[Compliance],
    summary="Drug-library use and limit alerts per care area, medication and period",
    **secured(READERS, audited=False, responses=LIST_CONTENT),
)
async def ders_compliance(
    request: Request,
    services: Svc,
    care_area: TextFilter = None,
    medication: Annotated[str | None, text_query(
                                            description="Medication name (case-insensitive)")
                          ] = None,
    period: Period = "month",
    start: Annotated[Day | None, Query(alias="from", description="First day (UTC)")] = None,
    end: Annotated[Day | None, Query(alias="to", description="Last day (UTC)")] = None,
    meets_target: bool | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[Compliance] | Response:
    check_period(start, end)
    inner = Where()
    inner.when(care_area, "care_area = %s")
    inner.when(medication, "lower(medication_name) = lower(%s)")
    inner.when(start, "day >= %s")
    inner.when(end, "day <= %s")
    outer = Where()
    if meets_target is not None:
        met = "library_starts::numeric / NULLIF(programs_started, 0) >= %s"
        outer.add(met if meets_target else f"NOT COALESCE({met}, false)", LIBRARY_USE_TARGET)
    result = await fetch_page(
        services.pool, columns="*", source=_source(inner), where=outer, keyset=ORDER,
        cursor=cursor, limit=limit, position_params=[PROJECTIONS],
        source_params=[period, period, _LENGTH[period], *inner.params],
    )
    items = [compliance_of(row, period) for row in result.rows]
    return render(request, result, items, Compliance, fmt, deidentified=True)

