"""``GET /v1/feed/documentation`` (and its FHIR Bundle form) for EHR interfaces.

A FastAPI router in the auditor API's conventions (``projections.api``): its
:class:`SecuredRoute` authenticates the bearer key, allows the ``integration`` and ``admin``
roles only, refuses unknown query parameters and writes the access record (the feed
discloses identified patient data: every patient on a page is recorded as touched) before
the response leaves. Mount it in the app factory with ``app.include_router(router)``;
it needs nothing but the app's services (the async connection pool).

Responses are the stored canonical JSON, served byte for byte; ``X-Ledger-Position`` says
which ledger position the documentation projection had reached.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, Security
from pydantic import BaseModel

from projections.api.deps import Access, Svc
from projections.api.keys import Role
from projections.api.models import CURSOR_PATTERN
from projections.api.queries import invalid_query
from projections.api.security import SecuredRoute, bearer, secured
from projections.documentation.feed import (
    MAX_LIMIT,
    InvalidCursor,
    Page,
    bundle_json,
    decode_cursor,
    page_json,
    read_page,
)

FEED_ROLES = (Role.INTEGRATION, Role.ADMIN)
FHIR_JSON = "application/fhir+json"
_POSITION = (
    "SELECT notification_id AS position FROM projection_generations"
    " WHERE projection = 'documentation' AND state = 'active'"
)

router = APIRouter(prefix="/v1/feed", tags=["documentation feed"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])

After = Annotated[str | None, Query(
    max_length=64, pattern=CURSOR_PATTERN,
    description="``next_after`` of the previous page (opaque); omit to start at the beginning",
)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (≤ {MAX_LIMIT})")]
Facility = Annotated[str | None, Query(min_length=1, max_length=200,
                                       description="Only this facility's entries")]


class FeedItem(BaseModel):
    position: int
    entry: dict[str, Any]
    resource: dict[str, Any]


class FeedPage(BaseModel):
    """Items in position order; store ``next_after`` once a page is processed."""

    items: list[FeedItem]
    next_after: str | None


async def _page(services: Any, access: Any, after: str | None, limit: int,
                facility: str | None) -> tuple[Page, int | None]:
    try:
        position = decode_cursor(after)
    except InvalidCursor as exc:
        raise invalid_query("after", str(exc), after) from exc
    async with services.pool.connection() as conn:
        page = await read_page(conn, position, limit, facility)
        cur = await conn.execute(_POSITION)
        found = await cur.fetchone()
    for row in page.rows:
        if row["patient_id"]:
            access.touch(row["facility_id"], row["patient_id"])
    return page, (found["position"] if found else None)


def _headers(position: int | None) -> dict[str, str]:
    return {"X-Ledger-Position": str(position)} if position is not None else {}


@router.get(
    "/documentation",
    summary="Chart-ready infusion documentation, each entry version once, in a stable order",
    response_model=None,
    **secured(FEED_ROLES, audited=True, responses={
        200: {"model": FeedPage, "description": "A page of the feed"}}),
)
async def documentation_feed(
    services: Svc, access: Access, after: After = None, limit: Limit = 100,
    facility: Facility = None,
) -> Response:
    page, position = await _page(services, access, after, limit, facility)
    return Response(page_json(page), media_type="application/json",
                    headers=_headers(position))


@router.get(
    "/documentation/bundle",
    summary="The same feed page as a FHIR R4 history Bundle of MedicationAdministration",
    response_model=None,
    **secured(FEED_ROLES, audited=True, responses={
        200: {"content": {FHIR_JSON: {}}, "description": "A Bundle (type history)"}}),
)
async def documentation_bundle(
    request: Request, services: Svc, access: Access, after: After = None,
    limit: Limit = 100, facility: Facility = None,
) -> Response:
    page, position = await _page(services, access, after, limit, facility)
    next_after = page.next_after
    next_url = str(request.url.include_query_params(after=next_after)) if next_after else None
    return Response(bundle_json(page, str(request.url), next_url), media_type=FHIR_JSON,
                    headers=_headers(position))
