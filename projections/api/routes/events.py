"""``/v1/events``: the ledger's stored events, raw — positions, versions, clocks and hashes.

For identified roles only (safety officers: "raw messages", DOMAIN.md §8): a stored record
cannot be de-identified without breaking the hash that proves it. Each item carries
``record``, the exact stored bytes as text, so a reader can recompute
``hash = SHA-256(previous_hash || record)`` along a stream (docs/tamper-evidence.md).
With ``stream`` the page follows the stream's versions; without, the global order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Request, Response, Security
from pydantic import Field

from ledger.store.streams import stream_id
from projections.api.deid import Disclosure
from projections.api.deps import Disclose, Svc
from projections.api.export import LIST_CONTENT, render
from projections.api.keys import Role
from projections.api.models import Cursor, FormatParam, Limit, Out, Page, text_query
from projections.api.queries import LEDGER_HEAD, Keyset, Where, fetch_page
from projections.api.security import SecuredRoute, bearer, secured

READERS = (Role.SAFETY_OFFICER,)
BY_POSITION = Keyset((("notification_id", "bigint"),), descending=False)
BY_VERSION = Keyset((("originator_version", "bigint"),), descending=False)
_COLUMNS = (
    "notification_id, stream, originator_version, topic, event_id, occurred_at, received_at,"
    " recorded_at, hash, state"
)

router = APIRouter(prefix="/v1", tags=["events"], route_class=SecuredRoute,
                   dependencies=[Security(bearer)])


class RawEvent(Out):
    notification_id: int
    stream: str
    version: int
    type: str
    event_id: UUID
    occurred_at: datetime
    received_at: datetime | None
    recorded_at: datetime
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 chain link (hex)")
    record: str = Field(description="The stored record, exactly the bytes hashed")
    event: dict[str, Any]
    origin: dict[str, Any]


def raw_event_of(row: dict[str, Any], disclosure: Disclosure) -> RawEvent:
    record = bytes(row["state"])
    stored = orjson.loads(record)
    event = stored["event"]
    subject = event.get("subject") or {}
    facility = subject.get("facility_id") or "default"
    disclosure.patient(facility, subject.get("patient_id"))
    if event.get("type") == "access.recorded":
        for patient in event.get("data", {}).get("patient_ids", []):
            disclosure.patient(facility, patient)
    return RawEvent(
        notification_id=row["notification_id"], stream=row["stream"],
        version=row["originator_version"], type=row["topic"], event_id=row["event_id"],
        occurred_at=row["occurred_at"], received_at=row["received_at"],
        recorded_at=row["recorded_at"], hash=bytes(row["hash"]).hex(),
        record=record.decode(), event=event, origin=stored["origin"],
    )


@router.get(
    "/events",
    response_model=Page[RawEvent],
    summary="Stored events of one stream (or of the whole ledger) with positions and hashes",
    **secured(READERS, audited=True, responses=LIST_CONTENT),
)
async def list_events(
    request: Request,
    services: Svc,
    disclosure: Disclose,
    stream: Annotated[str | None, text_query(max_length=500,
                                        description="Stream key, e.g. channel:default:P-1:A")
                      ] = None,
    type_: Annotated[str | None, text_query(alias="type", max_length=100)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    fmt: FormatParam = "json",
) -> Page[RawEvent] | Response:
    where = Where()
    keyset = BY_POSITION
    if stream is not None:
        # The primary key (originator_id, originator_version) serves a stream in order.
        where.add("originator_id = %s", stream_id(stream))
        keyset = BY_VERSION
    where.when(type_, "topic = %s")
    result = await fetch_page(
        services.pool, columns=_COLUMNS, source="ledger_events", where=where, keyset=keyset,
        cursor=cursor, limit=limit, position_sql=LEDGER_HEAD,
    )
    items = [raw_event_of(row, disclosure) for row in result.rows]
    return render(request, result, items, RawEvent, fmt, disclosure.deidentified)
