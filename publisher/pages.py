"""The S1 pages of the discrepancy engine: reading ``discrepancy_outbox`` in order and
recording what a target made of each row in ``discrepancy_deliveries``.

The projection enqueues a row when a finding opens as S1 or is escalated to it, only from
its active generation and at most once per finding and severity (``outbox_id`` is a UUIDv5
of both, ``ON CONFLICT DO NOTHING``): a replay or a rebuild adds no row, so nothing here is
ever sent twice for it. Delivery is at least once per row: a crash after the target
confirmed and before the delivery row committed re-sends that row, with the same
idempotency key (the finding id), which the receiver deduplicates on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from publisher import feed
from publisher.kafka_sink import Message

TOPIC = "infusion.discrepancies.v1"
#: The ``type`` every page carries, so a receiver shared with other feeds can route it.
PAGE_TYPE = "discrepancy.page"


@dataclass(frozen=True)
class PageRow:
    """One S1 page as the projection enqueued it; ``payload`` is the finding's canonical
    JSON at that moment (rule, severity, subject, evidence, parameters used...)."""

    seq: int
    outbox_id: str
    finding_id: str
    rule_id: str
    severity: str
    facility_id: str
    patient_id: str | None
    unit: str | None
    opened_at: datetime
    payload: str

    @property
    def message(self) -> bytes:
        """The JSON object sent to every target: routing fields first, then the finding
        exactly as enqueued (spliced in, not re-serialised, so its bytes are the outbox's)."""
        head = {"type": PAGE_TYPE, "position": self.seq, "outbox_id": self.outbox_id,
                "finding_id": self.finding_id, "rule_id": self.rule_id,
                "severity": self.severity, "facility_id": self.facility_id,
                "patient_id": self.patient_id, "unit": self.unit,
                "opened_at": self.opened_at.isoformat()}
        encoded = json.dumps(head, separators=(",", ":"), ensure_ascii=False)
        return f'{encoded[:-1]},"finding":{self.payload}}}'.encode()


def kafka_message(row: PageRow) -> Message:
    """Keyed by patient (all pages of one patient in order on one partition), else by
    finding; the headers let a consumer dedupe and route without parsing the body."""
    key = row.patient_id or row.finding_id
    headers = [("content-type", b"application/json"),
               ("idempotency-key", row.finding_id.encode()),
               ("x-outbox-id", row.outbox_id.encode()),
               ("x-rule-id", row.rule_id.encode()),
               ("x-severity", row.severity.encode()),
               ("x-position", str(row.seq).encode())]
    return Message(key.encode(), row.message, headers)


class PagesFeed:
    """``discrepancy_outbox`` as a :class:`publisher.feed.Feed`."""

    name = "publish-findings"
    channel = "discrepancy_outbox"  # the projection NOTIFYs it when it enqueued a page

    def position(self, conn: psycopg.Connection[Any], target: str) -> int:
        return feed.delivered_position(conn, "discrepancy_deliveries", target)

    def pending(self, conn: psycopg.Connection[Any], after: int, limit: int) -> list[PageRow]:
        cur = conn.cursor(row_factory=dict_row)
        cur.execute(
            "SELECT seq, outbox_id::text AS outbox_id, finding_id::text AS finding_id,"
            " rule_id, severity, facility_id, patient_id, unit, opened_at, payload"
            " FROM discrepancy_outbox WHERE seq > %s ORDER BY seq LIMIT %s",
            (after, limit),
        )
        return [PageRow(**row) for row in cur.fetchall()]

    def record(self, conn: psycopg.Connection[Any], target: str,
               delivery: feed.Delivery[PageRow], attempts: int) -> None:
        """The delivery row (a row recorded twice keeps the first answer). The table keeps
        one detail column: the target's refusal, or where Kafka stored the message."""
        row = delivery.row
        conn.execute(
            "INSERT INTO discrepancy_deliveries (target, seq, outbox_id, outcome, status_code,"
            " detail, attempts) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (target, seq) DO NOTHING",
            (target, row.seq, row.outbox_id, delivery.outcome, delivery.status_code,
             delivery.detail or delivery.location, attempts),
        )

    def describe(self, row: PageRow) -> str:
        return f"{row.rule_id} {row.severity} finding {row.finding_id}"


PAGES = PagesFeed()
