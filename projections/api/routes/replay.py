"""``/v1/replay/...``: incident replay timelines for safety officers (issue #10).

Each operation selects like ``ledger replay`` (a patient, an episode, a pump with or
without a channel, an order; optionally ``from``/``to`` and an ``at`` instant) and returns
exactly the document ``ledger replay --format json`` prints for that selection: both are
built by :mod:`projections.replay.report`, and the bytes are returned as they were
rendered (no response model re-serialises them, which would reorder keys and reformat).

Safety officers only, every call audited: a replay discloses identified, event-level
data about every patient in the selected streams, and each of them is recorded as
touched in the access record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query, Response, Security
from starlette.concurrency import run_in_threadpool

from projections.api.deid import Disclosure
from projections.api.deps import Disclose, Svc
from projections.api.keys import Role
from projections.api.models import TEXT_PATTERN, From, Instant, Problem, To, text_query
from projections.api.queries import check_period
from projections.api.security import SecuredRoute, bearer, secured
from projections.replay.report import ReplayReport, ReplayRequest, build, document
from projections.replay.selection import SelectionError

READERS = (Role.SAFETY_OFFICER,)
_TIMELINE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The replay timeline, as `ledger replay --format json` prints it",
          "content": {"application/json": {"schema": {"type": "object", "required": [
              "selection", "events", "timeline"]}}}},
    404: {"model": Problem, "description": "The selection names nothing the ledger knows"},
}

router = APIRouter(prefix="/v1/replay", tags=["replay"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])

Id = Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
Facility = Annotated[str | None, text_query(description="Facility of the selection")]
At = Annotated[Instant | None, Query(
    description="Also show the state at this instant, as happened and as known (with offset)")]


def _replay(conninfo: str, timeout_ms: int, request: ReplayRequest
            ) -> tuple[ReplayReport, str]:
    # A session like the one `ledger replay` opens (not the pool's, which is set to UTC):
    # the timeline's recorded_at values are rendered in the session's time zone, so the
    # same settings give the same bytes. The API's statement timeout still bounds it.
    with psycopg.connect(conninfo, options=f"-c statement_timeout={timeout_ms}",
                         application_name="ledger-api-replay") as conn:
        report = build(conn, request)
    return report, document(report, "json")


async def _respond(services: Svc, disclosure: Disclosure, request: ReplayRequest) -> Response:
    check_period(request.start, request.end)
    try:
        # The replay is synchronous (the projections' folds): off the event loop.
        report, body = await run_in_threadpool(
            _replay, services.config.conninfo, services.config.statement_timeout_ms, request)
    except SelectionError as exc:
        raise HTTPException(404, str(exc)) from exc
    if request.patient:
        disclosure.access.touch(request.facility or "default", request.patient)
    for frame in report.frames:
        subject: dict[str, Any] = frame.subject
        if subject.get("patient_id"):
            disclosure.access.touch(subject.get("facility_id") or "default",
                                    subject["patient_id"])
    return Response(content=body.encode(), media_type="application/json")


def _request(start: datetime | None, end: datetime | None, at: datetime | None,
             facility: str | None, *, patient: str | None = None, episode: str | None = None,
             pump: str | None = None, channel: str | None = None, order: str | None = None,
             ) -> ReplayRequest:
    return ReplayRequest(patient=patient, episode=episode, pump=pump, channel=channel,
                         order=order, facility=facility, start=start, end=end, at=at)


@router.get("/patients/{patient_id}", summary="Replay one patient's streams",
            response_class=Response, **secured(READERS, audited=True, responses=_TIMELINE))
async def replay_patient(services: Svc, disclosure: Disclose, patient_id: Id,
                         facility: Facility = None, start: From = None, end: To = None,
                         at: At = None) -> Response:
    return await _respond(services, disclosure,
                          _request(start, end, at, facility, patient=patient_id))


@router.get("/episodes/{episode_id}", summary="Replay one infusion episode",
            response_class=Response, **secured(READERS, audited=True, responses=_TIMELINE))
async def replay_episode(services: Svc, disclosure: Disclose, episode_id: Id,
                         facility: Facility = None, start: From = None, end: To = None,
                         at: At = None) -> Response:
    return await _respond(services, disclosure,
                          _request(start, end, at, facility, episode=episode_id))


@router.get("/pumps/{pump_id}", summary="Replay every channel of one pump",
            response_class=Response, **secured(READERS, audited=True, responses=_TIMELINE))
async def replay_pump(services: Svc, disclosure: Disclose, pump_id: Id,
                      facility: Facility = None, start: From = None, end: To = None,
                      at: At = None) -> Response:
    return await _respond(services, disclosure, _request(start, end, at, facility, pump=pump_id))


@router.get("/pumps/{pump_id}/channels/{channel}", summary="Replay one pump channel",
            response_class=Response, **secured(READERS, audited=True, responses=_TIMELINE))
async def replay_channel(services: Svc, disclosure: Disclose, pump_id: Id, channel: Id,
                         facility: Facility = None, start: From = None, end: To = None,
                         at: At = None) -> Response:
    return await _respond(services, disclosure,
                          _request(start, end, at, facility, pump=pump_id, channel=channel))


@router.get("/orders/{order_id}", summary="Replay one order and the infusions that ran it",
            response_class=Response, **secured(READERS, audited=True, responses=_TIMELINE))
async def replay_order(services: Svc, disclosure: Disclose, order_id: Id,
                       facility: Facility = None, start: From = None, end: To = None,
                       at: At = None) -> Response:
    return await _respond(services, disclosure, _request(start, end, at, facility,
                                                         order=order_id))
