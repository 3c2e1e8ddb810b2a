"""The documentation feed: the outbox log read by keyset on its position, and as a Bundle.

Items come in ``seq`` order (the outbox's commit order) and a page's ``next_after`` is the
cursor of its last item, so a consumer that stores the cursor after processing a page and
resumes from it after a restart gets every entry version exactly once: positions never
move (the outbox is append-only and outlives projection rebuilds) and never appear late
(outbox writers serialise, so a committed position has no uncommitted one below it).

Cursors are opaque, URL-safe strings (a version byte, the position and a check value,
base64url without padding); anything else is refused rather than misread. The response
bodies are assembled from the stored canonical JSON, so a resource is served byte for byte
as it was enqueued (and as the publisher sends it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from projections.documentation.fhir import canonical_json

MAX_LIMIT = 1000
_VERSION = 1
_SELECT = (
    "SELECT seq, entry_id, revision, first_revision, facility_id, patient_id, resource_id,"
    " entry, resource FROM documentation_outbox WHERE seq > %s{facility}"
    " ORDER BY seq LIMIT %s"
)


class InvalidCursor(ValueError):
    """The ``after`` value is not a cursor this feed issued."""


def encode_cursor(seq: int) -> str:
    payload = struct.pack(">BQ", _VERSION, seq)
    check = hashlib.blake2b(payload, digest_size=4).digest()
    return base64.urlsafe_b64encode(payload + check).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position after which to read; ``None`` (no cursor) means the beginning."""
    if cursor is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("not a cursor of this feed") from exc
    if len(raw) != 13 or hashlib.blake2b(raw[:9], digest_size=4).digest() != raw[9:]:
        raise InvalidCursor("not a cursor of this feed")
    version, seq = struct.unpack(">BQ", raw[:9])
    if version != _VERSION:
        raise InvalidCursor(f"cursor version {version} is not supported")
    if encode_cursor(seq) != cursor:  # base64 has spare bits: only our spelling is valid
        raise InvalidCursor("not a cursor of this feed")
    return int(seq)


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    after: int

    @property
    def next_after(self) -> str | None:
        """The cursor to resume from; ``None`` when the page is empty (keep yours)."""
        return encode_cursor(self.rows[-1]["seq"]) if self.rows else None


def query(after: int, limit: int, facility: str | None) -> tuple[bytes, list[Any]]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    params: list[Any] = [after]
    clause = ""
    if facility is not None:
        clause = " AND facility_id = %s"
        params.append(facility)
    params.append(limit)
    return _SELECT.format(facility=clause).encode(), params


async def read_page(conn: Any, after: int, limit: int, facility: str | None = None) -> Page:
    """One page from an async psycopg connection whose rows are dicts."""
    statement, params = query(after, limit, facility)
    cur = await conn.execute(statement, params)
    return Page(list(await cur.fetchall()), after)


def read_page_sync(conn: Any, after: int, limit: int, facility: str | None = None) -> Page:
    """The same page from a sync psycopg connection whose rows are dicts."""
    statement, params = query(after, limit, facility)
    return Page(list(conn.execute(statement, params).fetchall()), after)


def page_json(page: Page) -> bytes:
    """``{"items": [{"position", "entry", "resource"}], "next_after"}`` with stored bytes."""
    items = ",".join(
        f'{{"position":{row["seq"]},"entry":{row["entry"]},"resource":{row["resource"]}}}'
        for row in page.rows
    )
    return f'{{"items":[{items}],"next_after":{canonical_json(page.next_after)}}}'.encode()


def bundle_json(page: Page, self_url: str, next_url: str | None) -> bytes:
    """The page as a FHIR R4 ``history`` Bundle: each version with the interaction that
    applies it (create for an entry's first version, update after) — what a FHIR server's
    ``_history`` would return for the same changes."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    head = canonical_json({"resourceType": "Bundle", "type": "history", "link": links})
    if not page.rows:
        return head.encode()  # FHIR JSON has no empty arrays: no entries, no "entry"
    entries = ",".join(_bundle_entry(row) for row in page.rows)
    return f'{head[:-1]},"entry":[{entries}]}}'.encode()


def _bundle_entry(row: dict[str, Any]) -> str:
    request = {"method": "POST", "url": "MedicationAdministration"} if row["first_revision"] \
        else {"method": "PUT", "url": f"MedicationAdministration/{row['resource_id']}"}
    response = {"status": "201 Created" if row["first_revision"] else "200 OK",
                "etag": f'W/"{row["revision"]}"'}
    return (f'{{"fullUrl":{canonical_json("urn:uuid:" + str(row["entry_id"]))},'
            f'"resource":{row["resource"]},"request":{canonical_json(request)},'
            f'"response":{canonical_json(response)}}}')
