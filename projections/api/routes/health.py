"""``/v1/health`` (the process is up) and ``/v1/ready`` (the database answers; how far behind
each projection is). Both are unauthenticated and disclose no patient data, so load
balancers and orchestrators can probe them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ledger.store.access_seals import SEAL_HOLDS_RECORD
from projections.api.deps import Svc
from projections.api.models import Out

router = APIRouter(prefix="/v1", tags=["health"])


class Health(Out):
    status: Literal["ok"]


class ProjectionLag(Out):
    projection: str
    status: str
    generation: int
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    error: str | None
    updated_at: datetime


class Readiness(Out):
    status: Literal["ready", "degraded", "unavailable"]
    database: Literal["ok", "unreachable"]
    projections: list[ProjectionLag]
    unsealed_access_records: int | None
    detail: str | None = None


@router.get("/health", response_model=Health, summary="The API process is alive")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Database reachable; projection positions and lag",
    responses={503: {"model": Readiness, "description": "The database cannot be reached"}},
)
async def ready(services: Svc) -> Readiness | JSONResponse:
    try:
        async with services.pool.connection(timeout=2) as conn:
            cur = await conn.execute(
                "SELECT projection, status, generation, position, head, lag_events, lag_seconds,"
                " error, updated_at FROM projection_status ORDER BY projection"
            )
            rows = await cur.fetchall()
            cur = await conn.execute(
                "SELECT count(*) AS n FROM api_access_log a"
                " WHERE a.id > (SELECT sealed_through FROM api_access_seal)"
                f" AND NOT EXISTS (SELECT 1 FROM api_access_seals s WHERE {SEAL_HOLDS_RECORD})"
            )
            pending = await cur.fetchone()
    except Exception as exc:  # any failure to reach the database means "not ready"
        body = Readiness(status="unavailable", database="unreachable", projections=[],
                         unsealed_access_records=None, detail=type(exc).__name__)
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    lags = [ProjectionLag(**row) for row in rows]
    limit = services.config.ready_max_lag_seconds
    degraded = [p.projection for p in lags if p.status == "failed" or p.lag_seconds > limit]
    return Readiness(
        status="degraded" if degraded else "ready", database="ok", projections=lags,
        unsealed_access_records=pending["n"] if pending else None,
        detail=f"stale or failed: {', '.join(degraded)}" if degraded else None,
    )
